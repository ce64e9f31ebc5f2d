"""Simulator speed and memory: N real SWIM cores for some virtual seconds on one core.

Targets: 1000 hosts x 60 virtual s in <= 60 s wall; 10 000 hosts x 60 s in
<= 15 min wall.  The lattice starts converged over one shared view (O(N)
build, see meshhost/sim/cluster.py); --bootstrap merged builds it the old
O(N^2) way for comparison.  The event, datagram and check counts on stdout
replay exactly from --seed-base; the wall-clock and memory figures (the
point of this script) go to stderr: events/s, peak RSS, and memory per
simulated host (RSS growth over the build divided by N, and at the end).

Usage: python bench/sim_speed.py [--hosts N] [--virtual S] [--seed-base S]
       [--bootstrap converged|merged] [--profile FILE]

The machine may be shared: quote the wall figures with its load (uptime).
"""

import argparse
import cProfile
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshhost.config import PROFILES
from meshhost.sim.cluster import build_cluster
from meshhost.sim.invariants import view_disagreements


def rss_mib() -> float:
    """Resident memory now (Linux /proc), else the peak so far."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_mib()


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--hosts", type=int, default=1000, help="hosts (default 1000)")
    p.add_argument("--virtual", type=float, default=60.0, help="virtual seconds (default 60)")
    p.add_argument("--seed-base", type=int, default=1, help="seed (default 1)")
    p.add_argument("--profile", metavar="FILE", help="cProfile the run; stats to FILE")
    p.add_argument(
        "--bootstrap",
        choices=["converged", "merged"],
        default="converged",
        help="converged: one shared view, O(N) (default); merged: push-pull merges, O(N^2)",
    )
    args = p.parse_args()
    if args.hosts < 1 or not args.virtual > 0:
        p.error("--hosts must be >= 1 and --virtual > 0")
    lan = PROFILES["lan"]().membership
    m0 = rss_mib()
    t0 = time.perf_counter()
    sim, inv = build_cluster(args.seed_base, args.hosts, lan, bootstrap=args.bootstrap)
    t1 = time.perf_counter()
    m1 = rss_mib()
    prof = cProfile.Profile() if args.profile else None
    if prof is not None:
        prof.enable()
    sim.run_for(args.virtual)
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(20)
    t2 = time.perf_counter()
    m2 = rss_mib()
    owned = sum(h.core.owned_records for h in sim.hosts)
    print(
        f"{args.hosts} hosts, LAN profile, seed {args.seed_base}, {args.bootstrap} build, "
        "invariants on every event"
    )
    print(
        f"  {args.virtual:g} s virtual: {sim.steps} events, {sim.datagrams_sent} datagrams, "
        f"{inv.checks if inv else 0} invariant checks"
    )
    print(f"  member records held per host at the end: {owned / args.hosts:.1f} (of {args.hosts})")
    t3 = time.perf_counter()
    print(f"  hosts not sharing the one view at the end: {view_disagreements(sim)}")
    t4 = time.perf_counter()
    run_s = max(t2 - t1, 1e-9)
    n = args.hosts
    print(
        f"wall: build {t1 - t0:.1f} s; {args.virtual:g} s virtual in {t2 - t1:.1f} s "
        f"({args.virtual / run_s:.2f}x real time, {sim.steps / run_s:,.0f} events/s); "
        f"view check {t4 - t3:.1f} s\n"
        f"memory: peak RSS {peak_mib():,.0f} MiB; per host {1024 * (m1 - m0) / n:,.1f} KiB "
        f"after the build, {1024 * (m2 - m0) / n:,.1f} KiB after the run",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
