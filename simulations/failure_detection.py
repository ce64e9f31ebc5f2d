"""Failure detection: seconds until each other host declares a crashed host dead

One random host crashes after 5 s; each observation is one other host's
detection time (missing: not within 60 s).  `floor_s` is the suspicion
timeout with no confirmations, mult * max(1, log10(n)) * probe interval: the
floor under the median.  `model`: `swim`, `memberlist` or `meshhost`
(which Lifeguard parts are on).  Compare: SWIM expects first detection after ~1.58
probe periods; memberlist's suspicion timeout alone is 8 s for 100 LAN hosts.

    meshhost sim run simulations/failure_detection.py --seeds 20
"""

from meshhost.config import PROFILES, membership_model
from meshhost.membership.suspicion import suspicion_timeout
from meshhost.sim.scenarios import crash_detection

PARAMS = {"profile": ["lan", "local"], "n": [10, 50, 100]}
SEEDS = 5
X = "n"


def run(seed, profile="lan", n=10, model="meshhost"):
    cfg = membership_model(model, PROFILES[profile]().membership)
    floor = suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval_s)
    return [{"detect_s": t, "floor_s": floor} for t in crash_detection(seed, n, cfg)]
