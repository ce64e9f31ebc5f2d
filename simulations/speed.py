"""Simulator speed: real SWIM cores for some virtual seconds, on one core

Target: 1000 hosts, 60 virtual seconds in <= 60 s of wall time.  `events`,
`datagrams`, `checks` (invariant checks) and `disagreeing` (hosts not
sharing the one view at the end) replay exactly from the seed; `build_wall_s`
and `run_wall_s` are wall-clock seconds, the point of this scenario, and
differ run to run.

    meshhost sim run simulations/speed.py -j 1
"""

import time

from meshhost.config import PROFILES
from meshhost.sim.cluster import build_cluster
from meshhost.sim.invariants import view_disagreements

PARAMS = {"n": [1000], "virtual_s": [60]}
SEEDS = 1


def run(seed, n=1000, virtual_s=60.0):
    t0 = time.perf_counter()
    sim, inv = build_cluster(seed, n, PROFILES["lan"]().membership)
    t1 = time.perf_counter()
    sim.run_for(virtual_s)
    return {"events": sim.steps, "datagrams": sim.datagrams_sent, "checks": inv.checks,
            "disagreeing": view_disagreements(sim), "build_wall_s": t1 - t0,
            "run_wall_s": time.perf_counter() - t1}
