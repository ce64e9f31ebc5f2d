"""Broadcast: seconds until a metadata update reaches 50 / 99 / 99.9 % of hosts

One random host publishes new metadata (LAN profile: gossip to 3 hosts every
200 ms); missing: that share of the other hosts did not have it within 10 s.
Serf's simulator, fanout 3 every 200 ms: 99.9 % of 100 / 1 000 / 10 000
nodes in 1.54 / 1.84 / 2.15 s (2.39 s at 10 % loss, 10 000 nodes).

    meshhost sim run simulations/broadcast.py --seeds 5
"""

from meshhost.config import PROFILES
from meshhost.sim.scenarios import broadcast_reach

PARAMS = {"n": [100, 1000], "loss": [0.0, 0.1]}
SEEDS = 1
X = "n"


def run(seed, n=100, loss=0.0, profile="lan"):
    r = broadcast_reach(seed, n, PROFILES[profile]().membership, loss=loss)
    return {
        "reach50_s": r.time_to_fraction(0.5),
        "reach99_s": r.time_to_fraction(0.99),
        "reach999_s": r.time_to_fraction(0.999),
        "reached": r.reached,
    }
