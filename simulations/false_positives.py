"""False positives: dead declarations when nobody died (loss + a stalling host).

Lifeguard reports > 50x fewer false positives than plain SWIM under CPU
stalls and loss.  Every dead declaration here is false.
Usage: python simulations/false_positives.py [--seeds N] [--minutes M]
"""

import time

from _common import parser, table

from meshhost.config import PROFILES
from meshhost.sim.scenarios import false_dead_under_loss_and_pauses


def main() -> None:
    p = parser(__doc__, seeds=2)
    p.add_argument("--minutes", type=float, default=10.0)
    args = p.parse_args()
    lan = PROFILES["lan"]().membership
    rows = []
    for n in (20, 50):
        for loss in (0.0, 0.05, 0.10, 0.20):
            dead = sus = ref = 0
            start = time.perf_counter()
            for seed in range(args.seed_base, args.seed_base + args.seeds):
                r = false_dead_under_loss_and_pauses(
                    seed, n, lan, duration_s=args.minutes * 60, loss=loss
                )
                dead += r.dead_declarations
                sus += r.suspicions
                ref += r.refutations
            rows.append([n, f"{loss:.0%}", args.seeds, dead, sus, ref, time.perf_counter() - start])
    print(f"{args.minutes:g} simulated minutes, LAN profile, host 0 paused 5 s every 30 s\n")
    print(
        table(
            ["hosts", "loss", "runs", "false dead", "suspicion events", "refutations", "wall s"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
