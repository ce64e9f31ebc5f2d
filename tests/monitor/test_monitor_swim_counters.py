"""The SWIM core's monitoring counters, on the simulator (virtual time, seeded).

A host paused past the suspicion timeout is declared dead and comes back:
its peers count the suspicion and the flap, it counts the false death it
refuted.  A host paused briefly is only suspected: the suspicion is refuted.
"""

from __future__ import annotations

from meshhost.config import PROFILES
from meshhost.sim.cluster import build_cluster, wait_for_one_view

LOCAL = PROFILES["local"]().membership


def totals(sim, name: str, skip=None) -> int:  # type: ignore[no-untyped-def]
    return sum(h.core.stats[name] for h in sim.hosts if h is not skip)


def test_a_host_declared_dead_that_comes_back_is_counted_as_a_flap_and_a_false_death() -> None:
    sim, _ = build_cluster(7, 4, LOCAL, invariants=False)
    victim = sim.hosts[0]
    assert totals(sim, "suspicions") == totals(sim, "flaps") == 0
    sim.pause(victim, 30.0)  # far past the suspicion timeout of the local profile
    sim.run_for(31.0)
    assert wait_for_one_view(sim, 60.0) is not None
    assert totals(sim, "suspicions", skip=victim) >= 1
    assert totals(sim, "flaps", skip=victim) >= 1
    assert victim.core.stats["dead_refuted"] >= 1
    assert victim.core.stats["refutations"] >= 1


def test_a_briefly_stalled_host_is_suspected_then_the_suspicion_is_refuted() -> None:
    sim, _ = build_cluster(3, 4, LOCAL, invariants=False)
    victim = sim.hosts[1]
    # Two probe rounds: long enough to miss a probe, well inside the suspicion timeout.
    sim.pause(victim, LOCAL.probe_interval_s * 2)
    sim.run_for(LOCAL.probe_interval_s * 2 + 5.0)
    assert totals(sim, "suspicions", skip=victim) >= 1
    assert totals(sim, "suspicions_refuted", skip=victim) >= 1
    assert totals(sim, "flaps") == 0 and victim.core.stats["dead_refuted"] == 0
