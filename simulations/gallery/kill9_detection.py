"""kill -9, 100 LAN hosts: seconds until each other host declares it dead

One random host crashes after 5 s of a formed lattice; each observation is
one other host's declare-dead time.  Compared with the medians published for
memberlist (9.8 s) and kinship (9.7 s) with memberlist's LAN defaults.
"""

from meshhost.config import PROFILES
from meshhost.sim.scenarios import crash_detection

PARAMS = {"n": [100]}
SEEDS = 12
METRICS = ["detect_s"]
REFERENCE = {
    "detect_s": {
        "value": lambda p: 9.75,
        "stat": "median",
        "ylabel": "declare-dead s after kill -9 (median)",
        "label": "memberlist 9.8 s / kinship 9.7 s",
        "source": "median declare-dead of 100 nodes, memberlist LAN defaults "
        "(1 s probe, suspicion 4 x log10 N = 8 s), as measured by kinship's benchmark",
    }
}


def run(seed, n=100):
    return [{"detect_s": t} for t in crash_detection(seed, n, PROFILES["lan"]().membership)]
