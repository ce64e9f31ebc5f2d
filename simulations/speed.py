"""Simulator speed: 1000 real SWIM cores for 60 virtual seconds on one core.

Target: <= 60 s wall for the 60 virtual seconds.  Prints the figure.
Usage: python simulations/speed.py [--hosts N] [--virtual S]
"""

import time

from _common import parser

from meshhost.config import PROFILES
from meshhost.sim.cluster import build_cluster
from meshhost.sim.invariants import view_disagreements


def main() -> None:
    p = parser(__doc__, seeds=1)
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--virtual", type=float, default=60.0)
    args = p.parse_args()
    lan = PROFILES["lan"]().membership
    t0 = time.perf_counter()
    sim, inv = build_cluster(args.seed_base, args.hosts, lan)
    t1 = time.perf_counter()
    sim.run_for(args.virtual)
    t2 = time.perf_counter()
    print(f"{args.hosts} hosts, LAN profile, invariants on every event")
    print(f"  bootstrap (every host learns every other, push-pull merges): {t1 - t0:.1f} s wall")
    print(
        f"  {args.virtual:g} s virtual: {t2 - t1:.1f} s wall "
        f"({args.virtual / (t2 - t1):.2f}x real time), {sim.steps} events, "
        f"{sim.datagrams_sent} datagrams, {inv.checks if inv else 0} invariant checks"
    )
    print(f"  hosts not sharing the one view at the end: {view_disagreements(sim)}")


if __name__ == "__main__":
    main()
