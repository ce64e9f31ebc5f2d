"""Simulator speed: real SWIM cores for some virtual seconds, on one core

Target: 1000 hosts, 60 virtual seconds in <= 60 s of wall time.  `events`,
`datagrams`, `checks` (invariant checks) and `disagreeing` (hosts not
sharing the one view at the end) replay exactly from the seed; `build_wall_s`
and `run_wall_s` are wall-clock seconds, the point of this scenario, and
differ run to run, as do `events_per_s`, `peak_rss_mib` and `kib_per_host`
(resident memory grown over build and run, per host).  The lattice starts
converged over one shared view (O(n) build); `bench/sim_speed.py` is the
standalone version, with a profiler switch.

    meshhost sim run simulations/speed.py -j 1
"""

import resource
import time

from meshhost.config import PROFILES
from meshhost.sim.cluster import build_cluster
from meshhost.sim.invariants import view_disagreements

PARAMS = {"n": [1000], "virtual_s": [60]}
SEEDS = 1


def _rss_kib():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(seed, n=1000, virtual_s=60.0):
    m0 = _rss_kib()
    t0 = time.perf_counter()
    sim, inv = build_cluster(seed, n, PROFILES["lan"]().membership)
    t1 = time.perf_counter()
    sim.run_for(virtual_s)
    t2 = time.perf_counter()
    kib_per_host = (_rss_kib() - m0) / n
    return {
        "events": sim.steps,
        "datagrams": sim.datagrams_sent,
        "checks": inv.checks,
        "disagreeing": view_disagreements(sim),
        "build_wall_s": t1 - t0,
        "run_wall_s": t2 - t1,
        "events_per_s": sim.steps / max(t2 - t1, 1e-9),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "kib_per_host": kib_per_host,
    }
