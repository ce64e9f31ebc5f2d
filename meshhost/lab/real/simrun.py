"""The simulated counterpart of a lab scenario: same hosts, same cut, same clock marks.

The simulator runs real SWIM cores with the scenario's profile; host ``i``
is named as the real host ``i`` is (``h01`` ...), the minority is the same
last hosts, the cut starts after ``settle_s`` and lasts ``cut_s``, then the
run goes on until one view or ``horizon_s``.  Loss applies to every link for
the whole run, as nftables applies it to every real host's eth0.
"""

from __future__ import annotations

from typing import Any

from meshhost.lab.real.observe import Seen, observations
from meshhost.lab.real.spec import LabScenario

__all__ = ["simulate"]

KINDS = {
    "MemberJoined": "joined",
    "MemberAlive": "alive",
    "MemberSuspect": "suspect",
    "MemberDead": "dead",
    "MemberLeft": "left",
}


def simulate(scenario: LabScenario, seed: int) -> list[dict[str, Any]]:
    """One seeded simulated run: one observation row per host."""
    from meshhost.config import PROFILES
    from meshhost.sim import LinkModel, NetworkModel, build_cluster, cut_groups
    from meshhost.sim.invariants import view_disagreements

    config = PROFILES[scenario.profile]().membership
    network = (
        NetworkModel(LinkModel(loss=scenario.loss_percent / 100)) if scenario.loss_percent else None
    )
    sim, _ = build_cluster(seed, scenario.hosts, config, network=network)
    names = scenario.host_names()
    by_id = {h.node_id: names[h.index] for h in sim.hosts}
    seen: list[Seen] = []

    def observe(s: Any, host: Any, event: object) -> None:
        kind = KINDS.get(type(event).__name__)
        member = getattr(event, "member", None)
        if kind and member is not None and member.id in by_id:
            seen.append(Seen(s.now, names[host.index], kind, by_id[member.id]))

    sim.observers.append(observe)
    sim.run_for(scenario.settle_s)
    split = scenario.hosts - scenario.minority
    groups = [sim.hosts[split:], sim.hosts[:split]]  # minority first: its packets are cut
    cut_at = sim.now
    cut_groups(sim, groups, one_way=scenario.one_way)
    sim.run_for(scenario.cut_s)
    heal_at = sim.now
    sim.heal()
    sim.run_for(scenario.horizon_s, stop=lambda: view_disagreements(sim) == 0)
    base = {"scenario": scenario.name, "mode": "sim", "seed": seed, **scenario.params()}
    return observations(seen, names, scenario.minority_names(), cut_at, heal_at, sim.now, base)
