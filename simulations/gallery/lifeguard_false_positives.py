"""Lifeguard: false dead declarations with slow members, each part on or off

30 LAN hosts, none fails; 6 are slow: every datagram they receive is handled
after an extra exponential delay (mean `slow_s`, a message-processing model:
their timers still fire on time).  Counted over 120 s: dead declarations of
healthy (not slow) hosts, and of any host.  `parts`: which Lifeguard parts
are on (none = SWIM with suspicion; all = memberlist; meshhost adds its own two).
`RATIOS` turns the runs into the paper's figure: plain SWIM's false deaths
over each setting's, with a bootstrap 95 % interval (seeds resampled), and
where a setting had none, the bound its zero allows.
"""

from dataclasses import replace

from meshhost.config import PROFILES, membership_model
from meshhost.membership.events import MemberDead
from meshhost.sim import LinkModel, build_cluster, exponential_latency

PARTS = ["lifeguard_awareness", "lifeguard_suspicion", "lifeguard_buddy", "lifeguard_nacks"]
PARAMS = {
    "parts": ["none", "awareness", "suspicion", "buddy", "nacks", "all", "meshhost"],
    "slow_s": [2.0],
}
SEEDS = 120
X = "parts"
METRICS = ["false_dead_healthy", "false_dead"]


def config(parts):
    lan = PROFILES["lan"]().membership
    if parts == "meshhost":
        return membership_model("meshhost", lan)
    base = membership_model("swim", lan)
    on = PARTS if parts == "all" else [f"lifeguard_{parts}"] if parts != "none" else []
    return replace(base, **{p: True for p in on})


def run(seed, parts="none", slow_s=2.0, n=30, slow=6, seconds=120.0):
    sim, _ = build_cluster(seed, n, config(parts), invariants=False)
    slow_hosts = sim.hosts[:slow]
    for dst in slow_hosts:
        for src in sim.hosts:
            if src is not dst:
                sim.set_link(src, dst, LinkModel(exponential_latency(0.0002, slow_s)))
    slow_ids = {h.node_id for h in slow_hosts}
    dead = {"all": 0, "healthy": 0}

    def observe(s, host, event):
        if type(event) is MemberDead:
            dead["all"] += 1
            dead["healthy"] += event.member.id not in slow_ids

    sim.observers.append(observe)
    sim.run_for(seconds)
    return {"false_dead_healthy": dead["healthy"], "false_dead": dead["all"]}


POISSON_ZERO_95 = 2.995732273553991
"""-ln(0.05): with no event in n runs, the rate is below this / n with 95 % confidence."""


def RATIOS(cells, resamples=10_000, seed=1):
    """Per setting and metric: total false deaths, runs, and plain SWIM's rate over
    this setting's (``ratio``), with a bootstrap 95 % interval resampling each
    setting's seeds; a setting with no false death gets ``ratio_at_least``:
    SWIM's lower bound over the zero's one-sided 95 % upper bound."""
    import numpy as np

    rng = np.random.default_rng(seed)
    counts = {}
    for c in cells:
        for obs in c.observations:
            for m in METRICS:
                key = (c.params["parts"], c.params["slow_s"], m)
                counts.setdefault(key, []).append(obs[m])
    rows = []
    for (parts, slow_s, m), values in sorted(counts.items()):
        base = np.asarray(counts[("none", slow_s, m)], dtype=float)
        mine = np.asarray(values, dtype=float)
        b = base[rng.integers(0, len(base), (resamples, len(base)))].mean(axis=1)
        o = mine[rng.integers(0, len(mine), (resamples, len(mine)))].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(o > 0, b / np.where(o > 0, o, 1), np.inf)
        total = int(mine.sum())
        row = {
            "parts": parts,
            "slow_s": slow_s,
            "metric": m,
            "runs": len(mine),
            "false_deaths": total,
            "swim_false_deaths": int(base.sum()),
            "swim_runs": len(base),
            "ratio": float(base.mean() / mine.mean()) if total else None,
            "ratio_lo": float(np.percentile(r, 2.5)) if total else None,
            "ratio_hi": float(np.percentile(r, 97.5)) if total else None,
            "ratio_at_least": (
                None if total else float(np.percentile(b, 2.5)) / (POISSON_ZERO_95 / len(mine))
            ),
        }
        rows.append(row)
    return rows


def _swim_over_50(row, summary):
    plain = [
        r
        for r in summary
        if r["parts"] == "none" and r["metric"] == row["metric"] and r["slow_s"] == row["slow_s"]
    ]
    return (plain[0].get("mean") or 0.0) / 50


REFERENCE = {
    m: {
        "value": _swim_over_50,
        "cross": True,
        "bound": "upper",
        "log_y": True,
        "label": "Lifeguard: > 50x fewer than SWIM (none / 50)",
        "source": "Dadgar, Phillips, Currey, Lifeguard: SWIM-ing with Situational "
        "Awareness, arXiv 1707.00788 (2018), all parts on vs plain SWIM",
        "ylabel": f"{m.replace('_', ' ')} per 120 s",
    }
    for m in METRICS
}
