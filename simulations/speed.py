"""Simulator speed: 1000 real SWIM cores for 60 virtual seconds on one core.

Target: <= 60 s wall for the 60 virtual seconds.  The event, datagram and
check counts on stdout replay exactly from --seed-base; the wall-clock
figures (the point of this script) go to stderr.

Usage: python simulations/speed.py [--hosts N] [--virtual S] [--seed-base S]
"""

import sys
import time

from _common import parser, seconds, whole

from meshhost.config import PROFILES
from meshhost.sim.cluster import build_cluster
from meshhost.sim.invariants import view_disagreements


def main() -> None:
    p = parser(__doc__, seeds=None)
    p.add_argument("--hosts", type=whole(1), default=1000, help="hosts (default 1000)")
    p.add_argument(
        "--virtual", type=seconds, default=60.0, help="virtual seconds to run (default 60)"
    )
    args = p.parse_args()
    lan = PROFILES["lan"]().membership
    t0 = time.perf_counter()
    sim, inv = build_cluster(args.seed_base, args.hosts, lan)
    t1 = time.perf_counter()
    sim.run_for(args.virtual)
    t2 = time.perf_counter()
    print(f"{args.hosts} hosts, LAN profile, seed {args.seed_base}, invariants on every event")
    print(
        f"  {args.virtual:g} s virtual: {sim.steps} events, {sim.datagrams_sent} datagrams, "
        f"{inv.checks if inv else 0} invariant checks"
    )
    print(f"  hosts not sharing the one view at the end: {view_disagreements(sim)}")
    run_s = max(t2 - t1, 1e-9)
    print(
        f"wall: bootstrap (every host learns every other, push-pull merges) {t1 - t0:.1f} s; "
        f"{args.virtual:g} s virtual in {t2 - t1:.1f} s ({args.virtual / run_s:.2f}x real time)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
