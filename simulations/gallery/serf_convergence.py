"""Gossip convergence: fraction of hosts holding an update vs time, ours vs Serf's model

One host publishes new metadata in a formed lattice (LAN profile: gossip
every 0.2 s to 3 hosts, as Serf's defaults); each link loses `loss`.
"""

import math

from meshhost.config import PROFILES
from meshhost.sim.scenarios import broadcast_reach

PARAMS = {"n": [100, 1000], "loss": [0.0, 0.2]}
SEEDS = 2
X = "n"
METRICS = ["t50_s", "t99_s"]
SERF = (
    "hashicorp/serf website/source/assets/javascripts/_simulator.js, convergenceAtRound: "
    "f = 1/(1+(N+1)e^(-1.5(1-loss)r)), r = t/0.2 s (fanout 3)"
)


def serf(n, loss, t):
    return 1 / (1 + (n + 1) * math.exp(-(3 / n) * (1 - loss) * 0.5 * n * t / 0.2))


def serf_time(n, loss, q):
    return 0.2 * math.log((n + 1) * q / (1 - q)) / (1.5 * (1 - loss))


REFERENCE = {
    m: {
        "value": lambda p, q=q: serf_time(p["n"], p["loss"], q),
        "label": "Serf model",
        "source": SERF,
        "ylabel": f"seconds to {q:.0%} of hosts",
    }
    for m, q in (("t50_s", 0.5), ("t99_s", 0.99))
}
CURVE = {
    "x": "t",
    "y": "fraction",
    "label": "Serf model",
    "source": SERF,
    "reference": lambda p, t: serf(p["n"], p["loss"], t),
    "xlabel": "seconds after publish",
    "ylabel": "fraction of hosts with the update",
}


def run(seed, n=100, loss=0.0):
    r = broadcast_reach(seed, n, PROFILES["lan"]().membership, warmup_s=3.0, loss=loss)
    times = sorted(r.times_s)
    curve = [
        {"t": k / 10, "fraction": sum(x <= k / 10 for x in times) / (n - 1)} for k in range(41)
    ]
    return [{"t50_s": r.time_to_fraction(0.5), "t99_s": r.time_to_fraction(0.99)}, *curve]
