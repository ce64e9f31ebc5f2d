"""False positives: dead declarations when nobody died (loss + a stalling host).

Nobody crashes.  Every link drops the given share of datagrams, and host 0
stalls for 5 s every 30 s (from t = 10 s), like a long GC pause.  Every dead
declaration is therefore false.  Columns are totals over the row's seeds:
"pauses" is how many stalls fitted in the run, "suspicion events" how many
times some host suspected another, "refutations" how many times a suspected
host proved itself alive.
Lifeguard reports > 50x fewer false positives than plain SWIM under CPU
stalls and loss.

Usage: python simulations/false_positives.py [--seeds N] [--minutes M] [--sizes 20,50]
       [--losses 0,5,10,20]
"""

import time
from functools import partial

from _common import parser, percents, report_wall, seconds, seed_range, table, whole_list

from meshhost.config import PROFILES
from meshhost.sim import run_seeded
from meshhost.sim.scenarios import false_dead_under_loss_and_pauses


def main() -> None:
    p = parser(__doc__, seeds=2)
    p.add_argument(
        "--minutes", type=seconds, default=10.0, help="simulated minutes per run (default 10)"
    )
    p.add_argument("--sizes", type=whole_list(2), default=[20, 50], help="hosts, comma-separated")
    p.add_argument(
        "--losses",
        type=percents,
        default=[0.0, 0.05, 0.10, 0.20],
        help="datagram loss %%, comma-separated",
    )
    args = p.parse_args()
    started = time.perf_counter()
    lan = PROFILES["lan"]().membership
    rows = []
    for n in args.sizes:
        for loss in args.losses:
            dead = sus = ref = pauses = 0
            for seed in seed_range(args):
                r = run_seeded(
                    partial(
                        false_dead_under_loss_and_pauses,
                        n=n,
                        config=lan,
                        duration_s=args.minutes * 60,
                        loss=loss,
                    ),
                    seed,
                )
                dead += r.dead_declarations
                sus += r.suspicions
                ref += r.refutations
                pauses += r.pauses
            rows.append([n, f"{loss:.0%}", args.seeds, pauses, dead, sus, ref])
    print(f"{args.minutes:g} simulated minutes, LAN profile, host 0 paused 5 s every 30 s\n")
    headers = ["hosts", "loss", "runs", "pauses", "false dead", "suspicion events", "refutations"]
    print(table(headers, rows))
    report_wall(started)


if __name__ == "__main__":
    main()
