"""Invariants of the membership protocol, checked after every simulated event.

Safety (checked on every event, cheap):

* **own-alive**: a host never holds itself as anything but alive (until it
  leaves);
* **no invented incarnations**: no host ever reports an incarnation for a
  host above the highest that host itself ever used;
* **no forged metadata**: metadata a host reports for another is metadata
  that host really published (signed alives);
* **honest peers never misbehave**: in a simulation nobody forges or
  garbles, so a ``PeerMisbehaved`` event is a codec bug;
* **no false dead**: a host is only declared dead if it, or the observer,
  was down, paused, cut off or on a lossy link within the last
  ``window_s`` (longer than any suspicion timeout): a host reachable by all
  is never killed.

Liveness (checked when a scenario asks, after faults are healed):
:func:`one_view` — every running host sees exactly the running hosts alive.
"""

from __future__ import annotations

from typing import Any

from meshhost.errors import SimulationError
from meshhost.membership.events import MemberDead, PeerMisbehaved
from meshhost.membership.state import MemberState
from meshhost.sim.host import SimHost
from meshhost.sim.loop import Simulator

__all__ = ["SwimInvariants", "one_view", "view_disagreements"]


class SwimInvariants:
    """Install with :meth:`install`; raises ``SimulationError`` naming the seed."""

    def __init__(self, window_s: float, *, allow_misbehaved: bool = False) -> None:
        self.window_s = window_s
        self.allow_misbehaved = allow_misbehaved
        self.max_incarnation: dict[str, int] = {}
        self.metas: dict[str, set[bytes]] = {}
        self.by_id: dict[str, SimHost] = {}
        self.false_dead = 0
        self.checks = 0

    def install(self, sim: Simulator) -> SwimInvariants:
        sim.invariants.append(self.check_host)
        sim.observers.append(self.check_event)
        return self

    def _fail(self, sim: Simulator, what: str) -> None:
        raise SimulationError(f"SEED={sim.seed} t={sim.now:.3f}: invariant broken: {what}")

    def check_host(self, sim: Simulator, host: SimHost) -> None:
        core = host.core
        if core is None:
            return
        self.checks += 1
        node = core.id
        self.by_id[node] = host
        inc = core.incarnation
        if inc > self.max_incarnation.get(node, -1):
            self.max_incarnation[node] = inc
        metas = self.metas.get(node)
        if metas is None:
            metas = self.metas[node] = set()
        metas.add(core.meta)
        if not core.left:
            me = core.member(node)
            if me is None or me.state is not MemberState.ALIVE:
                self._fail(sim, f"host {host.index} holds itself as {me}")

    def check_event(self, sim: Simulator, host: SimHost, event: Any) -> None:
        if type(event) is PeerMisbehaved:
            if not self.allow_misbehaved:
                self._fail(sim, f"host {host.index} reports an honest peer misbehaved: {event}")
            return
        m = event.member
        top = self.max_incarnation.get(m.id)
        if top is None or m.incarnation > top:
            self._fail(
                sim,
                f"host {host.index} reports incarnation {m.incarnation} for a host "
                f"that never used above {top}: {event}",
            )
        if m.meta not in self.metas.get(m.id, ()):
            self._fail(
                sim, f"host {host.index} reports metadata its owner never published: {event}"
            )
        if type(event) is MemberDead:
            subject = self.by_id.get(m.id)
            since = sim.now - self.window_s
            if subject is None or subject.node_id != m.id:
                return  # that identity is gone (restarted without its disk)
            if not sim.disturbed_since(subject, since) and not sim.disturbed_since(host, since):
                self.false_dead += 1
                self._fail(
                    sim,
                    f"host {host.index} declared host {subject.index} dead, though both "
                    f"were up and reachable for the last {self.window_s:.0f} s",
                )


def view_disagreements(sim: Simulator) -> int:
    """How many running hosts do not see exactly the running hosts as alive.

    Paused hosts count as running (they are slow, not gone).
    """
    running = [h for h in sim.hosts if h.up and not h.core.left]
    truth = {h.core.id for h in running}
    return sum(1 for h in running if h.core.alive_ids() != truth)


def one_view(sim: Simulator) -> bool:
    """True if every running host sees exactly the running hosts alive."""
    return view_disagreements(sim) == 0
