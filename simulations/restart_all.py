"""Restart every host at once: seconds until one view

Every host crashes at once, stays down 5 s and restarts with its disk (the
same host key); each joins three random others, as mDNS would propose.
`one_view_s`: seconds from the restart until every host sees every other
alive (missing: not within 120 s).

    meshhost sim run simulations/restart_all.py --seeds 20
"""

from meshhost.config import PROFILES
from meshhost.sim.scenarios import restart_all

PARAMS = {"n": [10, 50, 100]}
SEEDS = 5


def run(seed, n=20, profile="lan"):
    return {"one_view_s": restart_all(seed, n, PROFILES[profile]().membership)}
