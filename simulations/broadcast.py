"""Broadcast dissemination: when does a metadata update reach 50 / 99 / 99.9 % of hosts?

One random host publishes new metadata (LAN profile: gossip to 3 hosts every
200 ms); the table gives the virtual seconds until that fraction of the
other hosts had it, "inf" if it did not within 10 s.
Serf's simulator, fanout 3 every 200 ms: 99.9 % of 100 / 1 000 / 10 000
nodes in 1.54 / 1.84 / 2.15 s (2.39 s at 10 % loss, 10 000 nodes).

Usage: python simulations/broadcast.py [--seeds N] [--sizes 100,1000] [--losses 0,10]
"""

import time
from functools import partial

from _common import parser, percents, report_wall, seed_range, table, whole_list

from meshhost.config import PROFILES
from meshhost.sim import run_seeded
from meshhost.sim.scenarios import broadcast_reach


def main() -> None:
    p = parser(__doc__, seeds=1)
    p.add_argument(
        "--sizes", type=whole_list(2), default=[100, 1000], help="hosts, comma-separated"
    )
    p.add_argument(
        "--losses", type=percents, default=[0.0, 0.10], help="datagram loss %%, comma-separated"
    )
    args = p.parse_args()
    started = time.perf_counter()
    lan = PROFILES["lan"]().membership
    rows = []
    for n in args.sizes:
        for loss in args.losses:
            for seed in seed_range(args):
                r = run_seeded(partial(broadcast_reach, n=n, config=lan, loss=loss), seed)
                rows.append(
                    [
                        n,
                        f"{loss:.0%}",
                        seed,
                        r.time_to_fraction(0.5),
                        r.time_to_fraction(0.99),
                        r.time_to_fraction(0.999),
                        f"{r.reached}/{n - 1}",
                    ]
                )
    print("Metadata update from one host, LAN profile (gossip 3 hosts / 200 ms)\n")
    print(table(["hosts", "loss", "seed", "50 % s", "99 % s", "99.9 % s", "reached"], rows))
    report_wall(started)


if __name__ == "__main__":
    main()
