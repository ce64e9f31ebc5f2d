"""Failure detection: how long until every host declares a crashed host dead.

One random host crashes after 5 s; each row pools, over its seeds, the
virtual seconds until each other host declared it dead ("inf": not within
60 s).  "min suspicion s" is the suspicion timeout with no confirmations,
mult * max(1, log10(n)) * probe interval: the floor under the median.
Compare: SWIM expects first detection after ~1.58 probe periods; memberlist's
suspicion timeout alone is 8 s for 100 LAN hosts.

Usage: python simulations/failure_detection.py [--seeds N] [--profiles lan,local] [--sizes 10,50]
(without --profiles/--sizes: lan 10/50/100/200 and local 10/50)
"""

import argparse
import statistics
import time
from functools import partial

from _common import parser, report_wall, seed_range, table, whole_list

from meshhost.config import PROFILES
from meshhost.membership.suspicion import suspicion_timeout
from meshhost.sim import run_seeded
from meshhost.sim.cluster import percentile
from meshhost.sim.scenarios import crash_detection

ROWS = [("lan", 10), ("lan", 50), ("lan", 100), ("lan", 200), ("local", 10), ("local", 50)]


def profiles(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in PROFILES:
            raise argparse.ArgumentTypeError(
                f"unknown profile {name!r}; choose from {', '.join(sorted(PROFILES))}"
            )
    return names


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--profiles", type=profiles, help="membership profiles, comma-separated")
    p.add_argument("--sizes", type=whole_list(2), help="hosts, comma-separated")
    args = p.parse_args()
    started = time.perf_counter()
    if args.profiles is None and args.sizes is None:
        grid = ROWS
    else:
        grid = [(pr, n) for pr in args.profiles or ["lan"] for n in args.sizes or [10, 50]]
    rows = []
    for profile, n in grid:
        cfg = PROFILES[profile]().membership
        times: list[float] = []
        for seed in seed_range(args):
            times += run_seeded(partial(crash_detection, n=n, config=cfg), seed)
        floor = suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval_s)
        rows.append(
            [
                profile,
                n,
                floor,
                statistics.median(times),
                percentile(times, 0.99),
                max(times),
                len(times),
            ]
        )
    print("Crash detected by every other host (virtual seconds after the crash)\n")
    headers = ["profile", "hosts", "min suspicion s", "median s", "p99 s", "max s", "observations"]
    print(table(headers, rows))
    report_wall(started)


if __name__ == "__main__":
    main()
