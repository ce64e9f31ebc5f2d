"""Lattice-wide last-writer-wins map with hybrid-clock stamps and tombstones.

Theory of operation.  Every entry is ``(namespace, key) -> (stamp, value)``;
a delete writes a tombstone (value ``None``) with a fresh stamp.  Merging
keeps, per key, the entry with the greatest ``(stamp, is_tombstone,
encoded value)``: the stamp decides (a later write wins, the writer's host id
breaks ties); the last two parts only matter if two entries ever carried the
same stamp, and make even that case deterministic.  A tombstone therefore
wins over every put with an older stamp and loses to every newer one.

The merge is a join on a total order, hence commutative, associative and
idempotent: deltas applied in any order, duplicated or repeated, and full
states exchanged in either direction, converge to the same map.

Tombstones are kept ``horizon`` long (see :meth:`LwwMap.collect`), so a put
that is still travelling when the delete happens cannot resurrect the key.
A host cut off for longer than the horizon may bring back a put deleted
meanwhile (as with Cassandra's ``gc_grace_seconds``).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshhost.directory.codec import LwwEntry, Value, encode_value

__all__ = ["LwwMap", "wins"]


def _rank(entry: LwwEntry) -> tuple[object, ...]:
    return (entry.stamp, entry.value is None)


def wins(new: LwwEntry, current: LwwEntry | None) -> bool:
    """True when ``new`` replaces ``current`` under the LWW order."""
    if current is None:
        return True
    a, b = _rank(new), _rank(current)
    if a != b:
        return a > b
    if new.value is None:
        return False  # the same tombstone
    return encode_value(new.value) > encode_value(current.value)


class LwwMap:
    """The merged lattice-wide entries, tombstones included, indexed by namespace."""

    def __init__(self) -> None:
        self._spaces: dict[str, dict[str, LwwEntry]] = {}
        self._count = 0
        self._changes: dict[str, int] = {}

    def __len__(self) -> int:
        return self._count

    def namespaces(self) -> list[str]:
        """Namespaces holding at least one entry (tombstones count), sorted."""
        return sorted(ns for ns, space in self._spaces.items() if space)

    def entry(self, ns: str, key: str) -> LwwEntry | None:
        """The winning entry for (ns, key), tombstone included, or None."""
        space = self._spaces.get(ns)
        return None if space is None else space.get(key)

    def get(self, ns: str, key: str) -> Value:
        """The live value of (ns, key), or None when absent or deleted."""
        entry = self.entry(ns, key)
        return None if entry is None else entry.value

    def items(self, ns: str) -> list[tuple[str, Value]]:
        """Live (key, value) pairs of one namespace, sorted by key."""
        space = self._spaces.get(ns, {})
        return [(k, space[k].value) for k in sorted(space) if space[k].value is not None]

    def entries(self) -> Iterator[LwwEntry]:
        """Every entry, tombstones included, namespace by namespace."""
        for space in self._spaces.values():
            yield from space.values()

    def merge(self, entry: LwwEntry) -> bool:
        """Fold one entry in.  Returns True when it replaced what we had."""
        space = self._spaces.setdefault(entry.ns, {})
        current = space.get(entry.key)
        if wins(entry, current):
            space[entry.key] = entry
            self._count += current is None
            self._changes[entry.ns] = self._changes.get(entry.ns, 0) + 1
            return True
        return False

    def remove(self, ns: str, key: str) -> LwwEntry | None:
        """Forget (ns, key) entirely (no tombstone): an entry that must not be held."""
        entry = self._spaces.get(ns, {}).pop(key, None)
        if entry is not None:
            self._count -= 1
            self._changes[ns] = self._changes.get(ns, 0) + 1
        return entry

    def changes(self, ns: str) -> int:
        """How many times entries of ``ns`` changed (a cache key for derived data)."""
        return self._changes.get(ns, 0)

    def collect(self, before_wall_ms: int) -> list[LwwEntry]:
        """Drop tombstones stamped before ``before_wall_ms``; returns them."""
        dead = [e for e in self.entries() if e.value is None and e.stamp.wall_ms < before_wall_ms]
        for e in dead:
            del self._spaces[e.ns][e.key]
        self._count -= len(dead)
        return dead

    def snapshot(self) -> dict[tuple[str, str], tuple[int, str, Value]]:
        """A comparable copy: (ns, key) -> (packed stamp, writer, value)."""
        return {(e.ns, e.key): (e.stamp.packed(), e.stamp.node, e.value) for e in self.entries()}
