"""Partition heal: seconds from removing a cut until every host has one view.

Usage: python simulations/partition_heal.py [--seeds N] [--hosts N]
"""

import time

from _common import parser, table

from meshhost.config import PROFILES
from meshhost.sim.scenarios import partition_heal, restart_all


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--hosts", type=int, default=100)
    args = p.parse_args()
    n = args.hosts
    lan = PROFILES["lan"]().membership
    rows = []
    for minority in (n // 2, 1):
        for one_way in (False, True):
            heals = []
            start = time.perf_counter()
            for seed in range(args.seed_base, args.seed_base + args.seeds):
                r = partition_heal(seed, n, lan, minority, one_way, cut_s=60.0)
                heals.append(float("inf") if r.heal_s is None else r.heal_s)
            rows.append(
                [
                    f"{minority}/{n - minority}",
                    "one-way" if one_way else "symmetric",
                    min(heals),
                    max(heals),
                    time.perf_counter() - start,
                ]
            )
    print(f"{n} LAN hosts, cut for 60 s, then removed\n")
    print(table(["split", "cut", "best heal s", "worst heal s", "wall s"], rows))
    restarts = [
        restart_all(seed, n, lan) for seed in range(args.seed_base, args.seed_base + args.seeds)
    ]
    print(
        f"\nAll {n} hosts crashed and restarted at once: one view after "
        f"{', '.join('never' if r is None else f'{r:.2f} s' for r in restarts)}"
    )


if __name__ == "__main__":
    main()
