"""The membership scenarios of the acceptance figures, as pure functions of a seed.

Each function builds a lattice of real SWIM cores in the simulator, applies
its faults, and returns what it measured in *virtual* seconds.  Tests assert
on these figures; ``simulations/*.py`` print tables of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshhost.config import MembershipConfig
from meshhost.membership.events import MemberDead
from meshhost.sim.cluster import build_cluster, wait_for_one_view
from meshhost.sim.host import SimHost
from meshhost.sim.invariants import view_disagreements
from meshhost.sim.loop import Simulator
from meshhost.sim.network import LinkModel, NetworkModel
from meshhost.sim.partitions import cut_groups, random_groups

__all__ = [
    "BroadcastResult",
    "FalseDeadResult",
    "HealResult",
    "broadcast_reach",
    "crash_detection",
    "false_dead_under_loss_and_pauses",
    "partition_heal",
    "restart_all",
    "watch_meta",
]


def _need_hosts(n: int, minimum: int, why: str) -> None:
    if n < minimum:
        raise ValueError(f"{why} needs at least {minimum} hosts, got n={n}")


def crash_detection(
    seed: int, n: int, config: MembershipConfig, warmup_s: float = 5.0, horizon_s: float = 60.0
) -> list[float]:
    """Crash one random host; seconds until each other host declares it dead.

    ``inf`` for a host that did not within ``horizon_s``.  Needs ``n >= 2``.
    """
    _need_hosts(n, 2, "crash detection")
    sim, _ = build_cluster(seed, n, config)
    sim.run_for(warmup_s)
    victim = sim.hosts[sim.rng.randrange(n)]
    crashed_at = sim.now
    seen: dict[int, float] = {}

    def observe(s: Simulator, host: SimHost, event: object) -> None:
        if type(event) is MemberDead and event.member.id == victim.node_id:
            seen.setdefault(host.index, s.now - crashed_at)

    sim.observers.append(observe)
    sim.crash(victim)
    sim.run_for(horizon_s, stop=lambda: len(seen) >= n - 1)
    return [seen.get(h.index, float("inf")) for h in sim.hosts if h is not victim]


@dataclass(frozen=True, slots=True)
class FalseDeadResult:
    dead_declarations: int
    suspicions: int
    refutations: int
    pauses: int


def false_dead_under_loss_and_pauses(
    seed: int,
    n: int,
    config: MembershipConfig,
    duration_s: float = 600.0,
    loss: float = 0.10,
    pause_s: float = 5.0,
    pause_every_s: float = 30.0,
) -> FalseDeadResult:
    """Nobody crashes; every link loses ``loss``; one host stalls ``pause_s`` repeatedly.

    Counts dead declarations (all of them false).
    """
    from meshhost.membership.events import MemberSuspect

    sim, _ = build_cluster(seed, n, config, network=NetworkModel(LinkModel(loss=loss)))
    counts = {"dead": 0, "suspect": 0}

    def observe(s: Simulator, host: SimHost, event: object) -> None:
        if type(event) is MemberDead:
            counts["dead"] += 1
        elif type(event) is MemberSuspect:
            counts["suspect"] += 1

    sim.observers.append(observe)
    stalled = sim.hosts[0]
    pauses = 0
    t = 10.0
    while t + pause_s < duration_s:
        sim.at(t, sim.pause, stalled, pause_s)
        pauses += 1
        t += pause_every_s
    sim.run_until(duration_s)
    refutations = sum(h.core.stats["refutations"] for h in sim.hosts)
    return FalseDeadResult(counts["dead"], counts["suspect"], refutations, pauses)


@dataclass(frozen=True, slots=True)
class HealResult:
    split_views: bool
    """Whether the cut disturbed every view: when it was removed, no host held exactly
    the running hosts as alive (each suspected, or had declared dead, someone).  This is
    weaker than each side declaring the other dead
    (:func:`~meshhost.sim.partitions.views_split`): a lone cut-off host probes one
    peer per (Lifeguard-lengthened) probe interval, so it takes minutes to declare
    99 peers dead."""
    heal_s: float | None
    """Seconds from removing the cut to one view (None: not within the horizon)."""


def partition_heal(
    seed: int,
    n: int,
    config: MembershipConfig,
    minority: int,
    one_way: bool,
    cut_s: float = 90.0,
    horizon_s: float = 120.0,
) -> HealResult:
    """Cut ``minority`` hosts from the rest for ``cut_s``, then measure the heal.

    Needs ``1 <= minority < n``.
    """
    if not 1 <= minority < n:
        raise ValueError(f"minority must be 1 .. {n - 1} hosts for n={n}, got {minority}")
    sim, _ = build_cluster(seed, n, config)
    sim.run_for(5.0)
    groups = random_groups(sim, [minority, n - minority])
    cut_groups(sim, groups, one_way=one_way)
    sim.run_for(cut_s)
    split = view_disagreements(sim) == n
    sim.heal()
    return HealResult(split, wait_for_one_view(sim, horizon_s))


def restart_all(
    seed: int, n: int, config: MembershipConfig, down_s: float = 5.0, horizon_s: float = 120.0
) -> float | None:
    """Crash every host at once, restart them all (same keys), time until one view.

    Each restarted host joins three random others, as mDNS would propose.
    """
    sim, _ = build_cluster(seed, n, config)
    sim.run_for(5.0)
    for h in sim.hosts:
        sim.crash(h)
    sim.run_for(down_s)
    for h in sim.hosts:
        sim.restart(h)
    return wait_for_one_view(sim, horizon_s)


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    reached: int
    hosts: int
    times_s: list[float] = field(default_factory=list)

    def time_to_fraction(self, fraction: float) -> float:
        """Seconds until ``fraction`` of the other hosts had the update (inf if never)."""
        need = max(1, -(-int(fraction * (self.hosts - 1) * 1000) // 1000))
        if len(self.times_s) < need:
            return float("inf")
        return sorted(self.times_s)[need - 1]


def broadcast_reach(
    seed: int,
    n: int,
    config: MembershipConfig,
    warmup_s: float = 10.0,
    horizon_s: float = 10.0,
    loss: float = 0.0,
) -> BroadcastResult:
    """One host publishes new metadata; when does each other host see it?  Needs ``n >= 2``."""
    _need_hosts(n, 2, "a broadcast")
    network = NetworkModel(LinkModel(loss=loss)) if loss else None
    sim, _ = build_cluster(seed, n, config, network=network)
    sim.run_for(warmup_s)
    origin = sim.hosts[sim.rng.randrange(n)]
    new_meta = b"rev-2"
    started = sim.now
    seen = watch_meta(sim, origin, new_meta)
    origin.core.update_meta(new_meta, origin.local(sim.now))
    sim.pump(origin)
    sim.run_for(horizon_s, stop=lambda: len(seen) >= n - 1)
    return BroadcastResult(len(seen), n, sorted(t - started for t in seen.values()))


def watch_meta(sim: Simulator, origin: SimHost, meta: bytes) -> dict[int, float]:
    """Host index -> virtual time it first held ``origin`` with ``meta`` (filled as it runs).

    Any membership event carrying the new metadata counts: ``MemberUpdated``
    for a host held alive or suspect, but ``MemberJoined`` for one this host
    had declared dead (a false death under loss), which an earlier version
    of this measure missed, counting such hosts as never reached.
    """
    seen: dict[int, float] = {}

    def observe(s: Simulator, host: SimHost, event: object) -> None:
        m = getattr(event, "member", None)
        if m is not None and m.id == origin.node_id and m.meta == meta:
            seen.setdefault(host.index, s.now)

    sim.observers.append(observe)
    return seen
