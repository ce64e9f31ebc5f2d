"""Failure detection: how long until every host declares a crashed host dead.

Compare: SWIM expects first detection after ~1.58 probe periods; memberlist's
suspicion timeout alone is mult * log10(n) * probe interval (8 s for 100
LAN hosts).  Usage: python simulations/failure_detection.py [--seeds N]
"""

import statistics
import time

from _common import parser, table

from meshhost.config import PROFILES
from meshhost.membership.suspicion import suspicion_timeout
from meshhost.sim.cluster import percentile
from meshhost.sim.scenarios import crash_detection

ROWS = [("lan", 10), ("lan", 50), ("lan", 100), ("lan", 200), ("local", 10), ("local", 50)]


def main() -> None:
    args = parser(__doc__).parse_args()
    rows = []
    for profile, n in ROWS:
        cfg = PROFILES[profile]().membership
        start = time.perf_counter()
        times: list[float] = []
        for seed in range(args.seed_base, args.seed_base + args.seeds):
            times += crash_detection(seed, n, cfg)
        wall = time.perf_counter() - start
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
                wall,
            ]
        )
    print("Crash detected by every other host (virtual seconds after the crash)\n")
    print(
        table(
            [
                "profile",
                "hosts",
                "min suspicion s",
                "median s",
                "p99 s",
                "max s",
                "observations",
                "wall s",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
