"""Scuttlebutt map of per-host state: (owner, key) -> (version, value).

Theory of operation (van Renesse et al., "Efficient reconciliation and flow
control for anti-entropy protocols", 2008).  Every host owns a small map of
facts about itself (its actors, providers, labels, load, address).  Only the
owner writes it: each change bumps the owner's version counter and stamps the
changed key with it, so for one owner versions are unique and a higher
version of a key is always newer.  Deleting a key writes a tombstone (value
``None``) at a new version, so the deletion spreads like any change.

Each owner's map also carries a *generation*: a number the owner picks when
it starts, greater than any generation it used before (the directory uses
its hybrid clock).  A higher generation replaces everything known about the
owner: a restarted host starts from nothing, and its old actors disappear
from every directory as soon as its new state arrives.  An owner also starts
a new generation to drop tombstones once too many pile up (compaction).

A receiver tracks, per owner, a *watermark*: every change with a version up
to it is known.  Piggybacked changes can arrive out of order, so the
watermark only advances over contiguous versions; a message's ``(since,
upto]`` range promise lets a full or digest-driven exchange advance it in one
step.  The digest ``{owner: (generation, watermark)}`` is all a peer needs to
compute the exact delta (:meth:`HostStateMap.delta`).

Merging is per key, by (generation, version): commutative, associative and
idempotent, so duplicated, reordered and repeated messages converge.

Forgetting.  When membership declares a host dead or gone,
:meth:`HostStateMap.forget` drops its entries and remembers the generation it
had, so stale gossip of that generation (still travelling between hosts
that have not noticed yet) cannot bring the entries back.  A newer
generation (the host restarted) is accepted; :meth:`HostStateMap.allow`
lifts the block when membership sees the same process alive again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from meshhost.directory.codec import HostEntry, HostSection, Value
from meshhost.errors import DirectoryValueError

__all__ = ["MAX_OWN_TOMBSTONES", "ApplyResult", "HostStateMap"]

MAX_OWN_TOMBSTONES = 256
"""Tombstones an owner keeps before it compacts by starting a new generation:
each stopped actor leaves one, and full state carries them all."""


@dataclass(slots=True)
class _Owner:
    generation: int
    watermark: int = 0
    entries: dict[str, HostEntry] = field(default_factory=dict)
    live: int = 0
    """Number of entries that are not tombstones."""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What a merge changed for one owner."""

    owner: str
    changed: tuple[HostEntry, ...] = ()
    """Entries that were new to us, at the version we now hold."""
    removed_keys: tuple[str, ...] = ()
    """Keys dropped because a newer generation replaced the owner's map."""
    new_generation: bool = False

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(e.key for e in self.changed) | frozenset(self.removed_keys)

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed_keys or self.new_generation)


class HostStateMap:
    """Every host's own state as this host knows it; ``local_id`` writes its own."""

    def __init__(self, local_id: str, generation: int) -> None:
        self.local_id = local_id
        self._owners: dict[str, _Owner] = {local_id: _Owner(generation)}
        self._forgotten: dict[str, int] = {}

    # --- the local owner ---------------------------------------------------

    @property
    def generation(self) -> int:
        """The local owner's current generation."""
        return self._owners[self.local_id].generation

    @property
    def version(self) -> int:
        """The local owner's latest version."""
        return self._owners[self.local_id].watermark

    def set(self, key: str, value: Value) -> HostSection | None:
        """Write (``value`` not None) or delete (None) one of our own keys.

        Returns the single-key delta section to spread, or None when nothing
        changed (same value, or deleting a key we do not have).
        """
        if not isinstance(key, str) or not key:
            raise DirectoryValueError("host state keys must be non-empty strings")
        me = self._owners[self.local_id]
        current = me.entries.get(key)
        current_value = None if current is None else current.value
        if current_value == value and type(current_value) is type(value):
            return None
        me.watermark += 1
        entry = HostEntry(key, me.watermark, value)
        self._store(me, entry)
        return HostSection(self.local_id, me.generation, entry.version - 1, entry.version, (entry,))

    def needs_compaction(self) -> bool:
        """True when our own tombstones exceed MAX_OWN_TOMBSTONES."""
        me = self._owners[self.local_id]
        return len(me.entries) - me.live > MAX_OWN_TOMBSTONES

    def new_generation(self, at_least: int) -> list[HostSection]:
        """Start a new local generation (> the current one and >= ``at_least``).

        Drops our tombstones and renumbers live keys from 1.  Returns one
        single-key section per live key, to spread.
        """
        me = self._owners[self.local_id]
        fresh = _Owner(max(me.generation + 1, at_least))
        for key in sorted(me.entries):
            old = me.entries[key]
            if old.value is not None:
                fresh.watermark += 1
                self._store(fresh, HostEntry(key, fresh.watermark, old.value))
        self._owners[self.local_id] = fresh
        return self.own_sections()

    def own_sections(self) -> list[HostSection]:
        """One single-key section per live local key (for re-announcing)."""
        me = self._owners[self.local_id]
        return [
            HostSection(self.local_id, me.generation, e.version - 1, e.version, (e,))
            for e in sorted(me.entries.values(), key=lambda e: e.version)
            if e.value is not None
        ]

    # --- reads ---------------------------------------------------------------

    def owners(self) -> list[str]:
        """Ids of every host whose state we hold (ourselves included), sorted."""
        return sorted(self._owners)

    def __contains__(self, owner: object) -> bool:
        return owner in self._owners

    def __len__(self) -> int:
        return len(self._owners)

    def get(self, owner: str, key: str) -> Value:
        """The live value of ``key`` in ``owner``'s state, or None."""
        o = self._owners.get(owner)
        entry = None if o is None else o.entries.get(key)
        return None if entry is None else entry.value

    def items(self, owner: str) -> Iterator[tuple[str, Value]]:
        """Live (key, value) pairs of one owner, in no particular order."""
        o = self._owners.get(owner)
        if o is not None:
            for key, entry in o.entries.items():
                if entry.value is not None:
                    yield key, entry.value

    def generation_of(self, owner: str) -> int | None:
        o = self._owners.get(owner)
        return None if o is None else o.generation

    def snapshot(self) -> dict[str, tuple[int, dict[str, tuple[int, Value]]]]:
        """A comparable copy of everything: owner -> (generation, key -> (version, value))."""
        return {
            owner: (o.generation, {k: (e.version, e.value) for k, e in o.entries.items()})
            for owner, o in self._owners.items()
        }

    # --- anti-entropy ------------------------------------------------------

    def digest(self) -> dict[str, tuple[int, int]]:
        """``{owner: (generation, watermark)}``: what we know, in a few bytes per host."""
        return {owner: (o.generation, o.watermark) for owner, o in self._owners.items()}

    def delta(self, digest: Mapping[str, tuple[int, int]]) -> list[HostSection]:
        """Sections a peer with ``digest`` lacks.  An empty digest gives the full state."""
        out = []
        for owner in sorted(self._owners):
            o = self._owners[owner]
            peer_generation, peer_watermark = digest.get(owner, (-1, 0))
            if peer_generation > o.generation:
                continue  # the peer knows a newer life of this host than we do
            since = peer_watermark if peer_generation == o.generation else 0
            entries = tuple(
                sorted(
                    (e for e in o.entries.values() if e.version > since),
                    key=lambda e: e.version,
                )
            )
            if entries or peer_generation != o.generation:
                upto = max(since, o.watermark)
                out.append(HostSection(owner, o.generation, since, upto, entries))
        return out

    def full(self) -> list[HostSection]:
        """Every owner's entries, tombstones included (the push-pull payload)."""
        return self.delta({})

    def apply(
        self, section: HostSection, is_live: Callable[[str], bool] | None = None
    ) -> ApplyResult:
        """Merge a section from a peer.  Returns what changed (falsy: nothing).

        ``is_live(owner)``, when given, is membership's word that the owner
        is alive now; it lifts a forget block (the host was falsely declared
        dead, or came back), so its state is accepted again at once.
        """
        owner = section.owner
        if owner == self.local_id:
            return ApplyResult(owner)  # only we write our state; see Directory for conflicts
        blocked = self._forgotten.get(owner)
        if blocked is not None:
            if section.generation <= blocked and (is_live is None or not is_live(owner)):
                return ApplyResult(owner)
            del self._forgotten[owner]
        o = self._owners.get(owner)
        removed: tuple[str, ...] = ()
        new_generation = False
        if o is None or section.generation > o.generation:
            if o is not None:
                removed = tuple(k for k, e in o.entries.items() if e.value is not None)
            o = self._owners[owner] = _Owner(section.generation)
            new_generation = True
        elif section.generation < o.generation:
            return ApplyResult(owner)
        changed = []
        for entry in section.entries:
            current = o.entries.get(entry.key)
            if current is None or entry.version > current.version:
                self._store(o, entry)
                changed.append(entry)
        advanced = False
        if o.watermark >= section.since and section.upto > o.watermark:
            o.watermark = section.upto
            advanced = True
        if changed or advanced:
            versions = {e.version for e in o.entries.values()}
            while o.watermark + 1 in versions:
                o.watermark += 1
        new_keys = {e.key for e in changed}
        return ApplyResult(
            owner,
            tuple(changed),
            tuple(k for k in removed if k not in new_keys),
            new_generation,
        )

    def newer_self(self, section: HostSection) -> bool:
        """True when a peer holds our own state from a life we do not remember.

        That happens when this host restarted with a generation that is not
        greater than its previous one (its clock went back); the directory
        then starts a newer generation so peers accept our writes again.
        """
        if section.owner != self.local_id:
            return False
        me = self._owners[self.local_id]
        if section.generation != me.generation:
            return section.generation > me.generation
        return any(e.version > me.watermark for e in section.entries)

    # --- membership --------------------------------------------------------

    def forget(self, owner: str, *, block_below: int = 0) -> tuple[str, ...]:
        """Drop ``owner``'s entries; returns the live keys it had.

        Gossip about ``owner`` with a generation up to the one it had (or
        ``block_below`` when we never knew it) is ignored from now on.
        Forgetting ourselves is a no-op.
        """
        if owner == self.local_id:
            return ()
        o = self._owners.pop(owner, None)
        generation = block_below if o is None else o.generation
        self._forgotten[owner] = max(self._forgotten.get(owner, 0), generation)
        if o is None:
            return ()
        return tuple(k for k, e in o.entries.items() if e.value is not None)

    def allow(self, owner: str) -> None:
        """Lift a forget block: membership says ``owner`` is alive again."""
        self._forgotten.pop(owner, None)

    def is_forgotten(self, owner: str) -> bool:
        return owner in self._forgotten

    @staticmethod
    def _store(o: _Owner, entry: HostEntry) -> None:
        previous = o.entries.get(entry.key)
        if previous is not None and previous.value is not None:
            o.live -= 1
        if entry.value is not None:
            o.live += 1
        o.entries[entry.key] = entry
