"""SWIM first detection after a crash, in protocol periods, vs N (LAN profile)

sync_rounds: the first round in which any host probes the crashed one, a
round being each prober's own k-th probe period after the crash (SWIM's
synchronous-round count).  first_suspect_periods: virtual time from the crash
to the first suspicion of it (our asynchronous rounds: the first probe of it
plus the probe period that ends in the suspicion), in probe intervals.
"""

import math

from meshhost.config import PROFILES
from meshhost.membership.events import MemberSuspect
from meshhost.sim import build_cluster

PARAMS = {"n": [10, 20, 50, 100]}
SEEDS = 400
X = "n"
METRICS = ["sync_rounds", "first_suspect_periods"]
SWIM = "Das, Gupta, Motivala, SWIM, DSN 2002, sec. 3.1: E = 1/(1-(1-1/N)^(N-1)) -> e/(e-1) = 1.58"
REFERENCE = {
    "sync_rounds": {
        "value": lambda p: 1 / (1 - (1 - 1 / p["n"]) ** (p["n"] - 1)),
        "label": "SWIM, synchronous rounds",
        "source": SWIM,
        "ylabel": "first probe of the dead host, rounds",
    },
    "first_suspect_periods": {
        "value": lambda p: 2.0,
        "label": "asynchronous rounds, 2.0",
        "source": "first probe ~1 period (min of N-1 random phases) "
        "+ the probe period ending in the suspicion",
        "ylabel": "crash to first suspicion, probe periods",
    },
}


def run(seed, n=10):
    cfg = PROFILES["lan"]().membership
    sim, _ = build_cluster(seed, n, cfg)
    sim.run_for(5.0)
    victim = sim.hosts[sim.rng.randrange(n)]
    base = {h.index: h.core.stats["probes"] for h in sim.hosts}
    crashed, got = sim.now, {}

    def probes(s, host):  # after every event: did this host just start a probe of the victim?
        k = host.core.stats["probes"] - base[host.index] if host.core else 0
        probe = host.core._probe if k > 0 else None
        if probe is not None and probe.target == victim.node_id and host is not victim:
            got["round"] = min(got.get("round", k), k)

    def suspect(s, host, event):
        if type(event) is MemberSuspect and event.member.id == victim.node_id:
            got.setdefault("suspect", s.now - crashed)

    sim.invariants.append(probes)
    sim.observers.append(suspect)
    sim.crash(victim)
    sim.run_for(30.0, stop=lambda: "suspect" in got and "round" in got)
    return {
        "sync_rounds": got.get("round"),
        "first_suspect_periods": got.get("suspect", math.inf) / cfg.probe_interval_s,
    }
