"""False positives: dead declarations when nobody died (loss + a stalling host)

Nobody crashes.  Every link drops `loss` of the datagrams and host 0 stalls
for 5 s every 30 s (from t = 10 s), like a long GC pause, so every dead
declaration is false.  One observation per run: `false_dead`, `suspicions`
(a host suspected another), `refutations` (a suspected host proved itself
alive), `pauses` (stalls that fitted in the run).  `model`: plain `swim`,
`memberlist` or `meshhost` (config.MEMBERSHIP_MODELS: which Lifeguard parts
are on).  Lifeguard reports > 50x fewer false positives than plain SWIM
under CPU stalls and loss.

    meshhost sim run simulations/false_positives.py --param minutes=1
"""

from meshhost.config import PROFILES, membership_model
from meshhost.sim.scenarios import false_dead_under_loss_and_pauses

PARAMS = {
    "n": [20, 50],
    "loss": [0.0, 0.05, 0.1, 0.2],
    "model": ["swim", "meshhost"],
    "minutes": [10],
}
SEEDS = 3
X = "loss"


def run(seed, n=20, loss=0.1, model="meshhost", minutes=10, profile="lan"):
    cfg = membership_model(model, PROFILES[profile]().membership)
    r = false_dead_under_loss_and_pauses(seed, n, cfg, duration_s=minutes * 60, loss=loss)
    return {
        "false_dead": r.dead_declarations,
        "suspicions": r.suspicions,
        "refutations": r.refutations,
        "pauses": r.pauses,
    }
