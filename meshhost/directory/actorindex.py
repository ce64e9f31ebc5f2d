"""Which hosts run which actor: an index over the per-host state, for the router.

Every host's actors live in its per-host state (:mod:`hoststate`) as
``actor/<id>`` keys; the router asks, per call, which hosts run an actor and
at what load. :class:`ActorIndex` keeps the answer indexed by actor (and by
call alias) and caches it until the owner's actors, load or address change;
:class:`~meshhost.directory.state.Directory` tells it when they do.
"""

from __future__ import annotations

from meshhost.directory import records as rec
from meshhost.directory.hoststate import HostStateMap
from meshhost.directory.records import ActorLocation, ActorSummary

__all__ = ["ActorIndex"]


class ActorIndex:
    """Actors by host and hosts by actor, read from ``hosts`` (a :class:`HostStateMap`)."""

    def __init__(self, hosts: HostStateMap) -> None:
        self._hosts = hosts
        self._actor_hosts: dict[str, set[str]] = {}
        self._owner_actors: dict[str, dict[str, tuple[ActorSummary, int]]] = {}
        # alias -> actor id -> number of hosts claiming it
        self._aliases: dict[str, dict[str, int]] = {}
        # caches of hosts_running() and actor(), dropped when actors change
        self._locations: dict[str, tuple[ActorLocation, ...]] = {}
        self._summaries: dict[str, ActorSummary | None] = {}

    def hosts_running(self, actor_id: str) -> list[ActorLocation]:
        """Hosts that run ``actor_id`` (this one included), sorted by host id."""
        return list(self.locations(actor_id))

    def locations(self, actor_id: str) -> tuple[ActorLocation, ...]:
        """:meth:`hosts_running` without the copy, for the router's hot path.

        Answered from a per-actor cache that a change of a host's actors,
        load or address invalidates: the same tuple object until then, so a
        caller may keep what it derives from it while ``locations(actor_id)
        is`` the tuple it derived it from.
        """
        cached = self._locations.get(actor_id)
        if cached is None:
            if actor_id not in self._actor_hosts:
                # Not cached: callers may ask about any id (a typo, a peer's
                # bogus target), and each would stay in the cache until the
                # directory changes. () is one object, so callers may still
                # keep what they derive from it.
                return ()
            found = []
            for host_id in sorted(self._actor_hosts.get(actor_id, ())):
                _, instances = self._owner_actors[host_id][actor_id]
                load = rec.load_of(self._hosts.get(host_id, rec.LOAD_KEY))
                addr = self._hosts.get(host_id, rec.ADDR_KEY)
                found.append(
                    ActorLocation(host_id, instances, load, addr if isinstance(addr, str) else "")
                )
            cached = self._locations[actor_id] = tuple(found)
        return cached

    def actor(self, actor_id: str) -> ActorSummary | None:
        """The claims summary of an actor some host runs (from the smallest host id), or None."""
        if actor_id not in self._summaries:
            hosts = self._actor_hosts.get(actor_id)
            if not hosts:
                return None  # not cached, as in locations()
            self._summaries[actor_id] = self._owner_actors[min(hosts)][actor_id][0]
        return self._summaries[actor_id]

    def actor_by_alias(self, alias: str) -> ActorSummary | None:
        """The actor whose ``call_alias`` is ``alias`` (smallest id if several), or None."""
        ids = self._aliases.get(alias) if alias else None
        if not ids:
            return None
        actor_id = min(ids)
        summary = self.actor(actor_id)
        if summary is not None and summary.call_alias == alias:
            return summary
        for host_id in sorted(self._actor_hosts.get(actor_id, ())):  # hosts disagree on claims
            summary = self._owner_actors[host_id][actor_id][0]
            if summary.call_alias == alias:
                return summary
        return None

    def forget_locations(self, owner: str) -> None:
        """Drop cached hosts_running answers for the actors ``owner`` runs."""
        for actor_id in self._owner_actors.get(owner, ()):
            self._locations.pop(actor_id, None)

    def reindex(self, owner: str) -> None:
        """Read the actors ``owner`` runs again from its host state (it changed)."""
        self.forget_locations(owner)
        self._summaries.clear()
        for actor_id, (summary, _) in self._owner_actors.pop(owner, {}).items():
            hosts = self._actor_hosts.get(actor_id)
            if hosts is not None:
                hosts.discard(owner)
                if not hosts:
                    del self._actor_hosts[actor_id]
            self._count_alias(summary, -1)
        actors: dict[str, tuple[ActorSummary, int]] = {}
        for key, value in self._hosts.items(owner):
            if key.startswith(rec.ACTOR_PREFIX):
                parsed = ActorSummary.from_value(value)
                if parsed is not None and parsed[1] > 0 and key == rec.ACTOR_PREFIX + parsed[0].id:
                    actors[parsed[0].id] = parsed
        if actors:
            self._owner_actors[owner] = actors
            for actor_id, (summary, _) in actors.items():
                self._actor_hosts.setdefault(actor_id, set()).add(owner)
                self._locations.pop(actor_id, None)
                self._count_alias(summary, +1)

    def _count_alias(self, summary: ActorSummary, delta: int) -> None:
        if not summary.call_alias:
            return
        ids = self._aliases.setdefault(summary.call_alias, {})
        ids[summary.id] = ids.get(summary.id, 0) + delta
        if ids[summary.id] <= 0:
            del ids[summary.id]
            if not ids:
                del self._aliases[summary.call_alias]
