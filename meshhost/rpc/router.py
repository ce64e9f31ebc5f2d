"""Choosing the host that runs an invocation.

Theory of operation.  The directory tells us which hosts run an actor and
with how many instances; membership tells us which of them are alive.  The
router turns that into an ordered list of hosts to try:

1. the local host, when it runs the actor (no network, no encryption);
2. otherwise the remote hosts, spread by load with "power of two choices":
   draw two candidates at random and take the one with fewer calls in flight
   per instance (plus the load it gossips).  This avoids the herd behaviour
   of always picking the least-loaded host from a stale view, and needs no
   coordination;
3. the rest follow as failover candidates, least loaded first.

A host whose last call failed with a connection loss or timeout is put on
probation for a short, growing while and goes to the back of the list, so
one dead host does not cost every caller a time-out while membership
catches up.

Pure and deterministic: time comes in as ``now``, randomness from the
injected ``rng``; the simulator drives this same class.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Candidate", "Router"]

PROBATION_INITIAL_S = 5.0
"""First probation after a failure: outlasts a typical call deadline, so a hung
host costs each caller at most one time-out until membership declares it."""
PROBATION_MAX_S = 30.0
"""Membership declares a dead host within ~20 s on a LAN; no need to wait longer."""


class Candidate(NamedTuple):
    """One host that runs the target actor, as the directory and membership see it
    (a NamedTuple: one is built per host per call, see ``envelope.Invocation``)."""

    host_id: str
    instances: int
    load: float = 0.0
    """Gossiped load of that host (calls in flight per core); 0 when unknown."""
    alive: bool = True


@dataclass(slots=True)
class _Health:
    in_flight: int = 0
    failures: int = 0
    probation_until: float = 0.0


class Router:
    """Orders candidate hosts for an invocation; tracks calls in flight and failures."""

    def __init__(self, local_host: str, rng: random.Random) -> None:
        self.local_host = local_host
        self._rng = rng
        self._health: dict[str, _Health] = {}

    def candidates(self, placements: list[Candidate], now: float) -> list[str]:
        """Return host ids to try, in order; empty when no live host runs the actor."""
        if len(placements) == 1:  # the common case, on every call's hot path
            only = placements[0]
            return [only.host_id] if only.alive and only.instances > 0 else []
        live = [p for p in placements if p.alive and p.instances > 0]
        if not live:
            return []
        ordered: list[str] = []
        local = [p for p in live if p.host_id == self.local_host]
        remote = [p for p in live if p.host_id != self.local_host]
        healthy = [p for p in remote if not self._on_probation(p.host_id, now)]
        benched = [p for p in remote if self._on_probation(p.host_id, now)]
        if local:
            ordered.append(self.local_host)
        if healthy:
            first = self._two_choices(healthy)
            ordered.append(first.host_id)
            rest = sorted(
                (p for p in healthy if p.host_id != first.host_id),
                key=lambda p: (self._cost(p), p.host_id),
            )
            ordered.extend(p.host_id for p in rest)
        benched.sort(key=lambda p: (self._health[p.host_id].probation_until, p.host_id))
        ordered.extend(p.host_id for p in benched)
        return ordered

    def started(self, host_id: str) -> None:
        """A call to ``host_id`` is now in flight."""
        health = self._health.get(host_id)  # not setdefault: no _Health built per call
        if health is None:
            health = self._health[host_id] = _Health()
        health.in_flight += 1

    def finished(self, host_id: str, *, reachable: bool, now: float) -> None:
        """A call to ``host_id`` ended. ``reachable`` is False on connection loss or time-out."""
        health = self._health.get(host_id)
        if health is None:
            health = self._health[host_id] = _Health()
        health.in_flight = max(0, health.in_flight - 1)
        if reachable:
            if health.failures:
                health.failures = 0
                health.probation_until = 0.0
            return
        health.failures += 1
        delay = min(PROBATION_MAX_S, PROBATION_INITIAL_S * 2 ** (health.failures - 1))
        health.probation_until = now + delay

    def forget(self, host_id: str) -> None:
        """Drop what we know of a host that left the lattice."""
        self._health.pop(host_id, None)

    def in_flight(self, host_id: str) -> int:
        health = self._health.get(host_id)
        return health.in_flight if health else 0

    def _on_probation(self, host_id: str, now: float) -> bool:
        health = self._health.get(host_id)
        return health is not None and health.probation_until > now

    def _cost(self, p: Candidate) -> float:
        return (self.in_flight(p.host_id) + 1) / p.instances + p.load

    def _two_choices(self, placements: list[Candidate]) -> Candidate:
        if len(placements) == 1:
            return placements[0]
        a, b = self._rng.sample(placements, 2)
        ca, cb = self._cost(a), self._cost(b)
        if ca != cb:
            return a if ca < cb else b
        return a  # a tie: the random draw decides, so sequential callers spread too
