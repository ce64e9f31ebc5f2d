"""Partition heal: seconds from removing a cut until every host has one view.

After 5 s, a random half (then a single host) is cut from the rest for
--cut seconds, symmetrically or one-way (the minority's datagrams to the
majority are dropped, the other direction still works).  "views disturbed"
counts the runs in which, when the cut was removed, every host suspected or
had declared dead someone across it (a cut much shorter than the suspicion
timeout disturbs only some views).  The heal columns are
the best and worst over the seeds, "inf" if no single view within 120 s.
The last line restarts every host at once (same keys; each joins three
random others) and times the return to one view.

Usage: python simulations/partition_heal.py [--seeds N] [--hosts N] [--cut S]
"""

import time
from functools import partial

from _common import parser, report_wall, seconds, seed_range, table, whole

from meshhost.config import PROFILES
from meshhost.sim import run_seeded
from meshhost.sim.scenarios import partition_heal, restart_all


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--hosts", type=whole(2), default=100, help="hosts (default 100)")
    p.add_argument("--cut", type=seconds, default=60.0, help="seconds the cut stays (default 60)")
    args = p.parse_args()
    started = time.perf_counter()
    n = args.hosts
    lan = PROFILES["lan"]().membership
    rows = []
    for minority in sorted({n // 2, 1}, reverse=True):
        for one_way in (False, True):
            heals = []
            splits = 0
            for seed in seed_range(args):
                r = run_seeded(
                    partial(
                        partition_heal,
                        n=n,
                        config=lan,
                        minority=minority,
                        one_way=one_way,
                        cut_s=args.cut,
                    ),
                    seed,
                )
                heals.append(float("inf") if r.heal_s is None else r.heal_s)
                splits += r.split_views
            rows.append(
                [
                    f"{minority}/{n - minority}",
                    "one-way" if one_way else "symmetric",
                    f"{splits}/{args.seeds}",
                    min(heals),
                    max(heals),
                ]
            )
    print(f"{n} LAN hosts, cut for {args.cut:g} s, then removed\n")
    print(table(["sides", "cut", "views disturbed", "best heal s", "worst heal s"], rows))
    restart = partial(restart_all, n=n, config=lan)
    restarts = [run_seeded(restart, seed) for seed in seed_range(args)]
    print(
        f"\nAll {n} hosts crashed and restarted at once: one view after "
        f"{', '.join('never' if r is None else f'{r:.2f} s' for r in restarts)}"
    )
    report_wall(started)


if __name__ == "__main__":
    main()
