"""Per-member load: datagrams each host sends per second vs N, no faults (LAN profile)

A formed lattice runs 5 s, then every datagram sent in the next 30 s is
counted (push-pull runs over TCP and is counted apart, per host per second).
"""

from meshhost.config import PROFILES
from meshhost.sim import build_cluster

PARAMS = {"n": [10, 30, 100, 300, 1000]}
SEEDS = 2
X = "n"
METRICS = ["datagrams_per_s", "push_pulls_per_s"]
REFERENCE = {
    "datagrams_per_s": {
        "value": lambda p: 2 / PROFILES["lan"]().membership.probe_interval_s,
        "label": "SWIM: 1 ping + 1 ack per period, constant in N",
        "source": "Das, Gupta, Motivala, SWIM, DSN 2002, sec. 3.1 (expected message load "
        "per member is constant in group size); 1 s probe period",
        "ylabel": "datagrams sent per host per second",
        "y_from_zero": True,
    }
}


def run(seed, n=10, seconds=30.0):
    sim, _ = build_cluster(seed, n, PROFILES["lan"]().membership)
    sim.run_for(5.0)
    sent, pp = sim.datagrams_sent, sim.push_pulls
    sim.run_for(seconds)
    return {
        "datagrams_per_s": (sim.datagrams_sent - sent) / n / seconds,
        "push_pulls_per_s": (sim.push_pulls - pp) / n / seconds,
    }
