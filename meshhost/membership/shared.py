"""Copy-on-read member tables over one shared converged view (for big simulations).

A lattice of ``n`` hosts holds ``n`` member records on every host: ``n**2``
in all, which a simulator of 10 000 hosts cannot build or hold.  A
:class:`SharedView` is the state of a converged lattice (every host alive at
its signed alive) built once; every core started over it
(``Swim(..., shared=view)``) reads it until it changes or first touches a
record, when the record becomes its own (copy on read).  A core therefore
holds only the records it used; the rest stays shared and read-only.

The containers here mirror the plain ones the core uses otherwise (a
``dict`` of records, a ``dict`` of addresses, an id list with random choice,
a shuffled probe order) with the same operations, so the protocol code is
the same for both; only random draws differ (rejection sampling and a lazy
Fisher-Yates shuffle instead of a list), which production never uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from meshhost.membership.messages import Alive

__all__ = ["LazyMembers", "LazyShuffle", "SharedAddrs", "SharedIdList", "SharedView"]

Addr = tuple[str, int]


class SharedView:
    """A converged lattice: each host's signed alive, in host order.

    Raises ``ValueError`` if two alives name the same host or address.
    """

    __slots__ = ("alives", "by_addr", "ids", "index", "pristine")

    def __init__(self, alives: Sequence[Alive]) -> None:
        self.alives: dict[str, Alive] = {a.node: a for a in alives}
        self.ids: tuple[str, ...] = tuple(a.node for a in alives)
        self.index: dict[str, int] = {node: i for i, node in enumerate(self.ids)}
        self.by_addr: dict[Addr, str] = {a.addr: a.node for a in alives}
        if len(self.alives) != len(alives) or len(self.by_addr) != len(alives):
            raise ValueError("a shared view needs one alive per host and address")
        self.pristine: dict[str, Any] = {}
        """Read-only records of untouched hosts, shared by every core (built lazily)."""

    def __len__(self) -> int:
        return len(self.ids)


class LazyMembers:
    """``node -> record``: the core's own records first, then the shared view's.

    ``get`` and ``[]`` make a shared record the core's own (the caller may
    change it); iteration yields untouched hosts' shared records, which
    callers only read.
    """

    __slots__ = ("_gone", "_make", "_own", "_view")

    def __init__(self, view: SharedView, make: Callable[[Alive], Any]) -> None:
        self._view = view
        self._make = make
        self._own: dict[str, Any] = {}
        self._gone: set[str] = set()

    def get(self, node: str, default: Any = None) -> Any:
        e = self._own.get(node)
        if e is not None:
            return e
        alive = self._view.alives.get(node)
        if alive is None or node in self._gone:
            return default
        e = self._own[node] = self._make(alive)
        return e

    def peek(self, node: str) -> Any:
        """The record of ``node`` (None if unknown) without making it our own: read only."""
        e = self._own.get(node)
        if e is not None:
            return e
        alive = self._view.alives.get(node)
        if alive is None or node in self._gone:
            return None
        pristine = self._view.pristine
        e = pristine.get(node)
        if e is None:
            e = pristine[node] = self._make(alive)
        return e

    def __getitem__(self, node: str) -> Any:
        e = self.get(node)
        if e is None:
            raise KeyError(node)
        return e

    def __setitem__(self, node: str, e: Any) -> None:
        self._own[node] = e
        self._gone.discard(node)

    def __contains__(self, node: str) -> bool:
        return node in self._own or (node in self._view.alives and node not in self._gone)

    def __len__(self) -> int:
        shared = sum(1 for node in self._view.ids if node not in self._own)
        return len(self._own) + shared - len(self._gone - self._own.keys())

    def pop(self, node: str) -> Any:
        e = self.get(node)
        if e is None:
            raise KeyError(node)
        del self._own[node]
        if node in self._view.alives:
            self._gone.add(node)
        return e

    def own_items(self) -> Iterable[tuple[str, Any]]:
        """Only the records this core holds itself (every non-alive one is)."""
        return list(self._own.items())

    def items(self) -> Iterator[tuple[str, Any]]:
        yield from list(self._own.items())
        own = self._own
        for node in self._view.ids:
            if node not in own:
                e = self.peek(node)
                if e is not None:
                    yield node, e

    def values(self) -> Iterator[Any]:
        for _, e in self.items():
            yield e

    @property
    def owned(self) -> int:
        """How many records this core holds itself (memory measure)."""
        return len(self._own)


class SharedAddrs:
    """``addr -> node``: the core's own changes over the shared view's addresses."""

    __slots__ = ("_deleted", "_own", "_view")

    def __init__(self, view: SharedView) -> None:
        self._view = view
        self._own: dict[Addr, str] = {}
        self._deleted: set[Addr] = set()

    def get(self, addr: Addr, default: str | None = None) -> str | None:
        node = self._own.get(addr)
        if node is not None:
            return node
        if addr in self._deleted:
            return default
        return self._view.by_addr.get(addr, default)

    def __contains__(self, addr: Addr) -> bool:
        return self.get(addr) is not None

    def __setitem__(self, addr: Addr, node: str) -> None:
        self._own[addr] = node
        self._deleted.discard(addr)

    def __delitem__(self, addr: Addr) -> None:
        if self.get(addr) is None:
            raise KeyError(addr)
        self._own.pop(addr, None)
        if addr in self._view.by_addr:
            self._deleted.add(addr)


class SharedIdList:
    """The live-id set over the shared view: its ids minus removed plus added.

    Same operations as the core's id list; :meth:`choice` draws by rejection
    (removed ids are redrawn), so it stays O(1) while few are removed.
    """

    __slots__ = ("_added", "_added_index", "_base", "_index", "_removed")

    def __init__(self, view: SharedView, without: Iterable[str] = ()) -> None:
        self._base = view.ids
        self._index = view.index
        self._removed: set[str] = {node for node in without if node in view.index}
        self._added: list[str] = []
        self._added_index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._base) - len(self._removed) + len(self._added)

    def __contains__(self, node: str) -> bool:
        if node in self._added_index:
            return True
        return node in self._index and node not in self._removed

    def __iter__(self) -> Iterator[str]:
        removed = self._removed
        for node in self._base:
            if node not in removed:
                yield node
        yield from list(self._added)

    def to_set(self) -> set[str]:
        """The ids as a set (built with set operations, not a Python loop)."""
        ids = set(self._base)
        ids.difference_update(self._removed)
        ids.update(self._added)
        return ids

    def add(self, node: str) -> None:
        if node in self:
            return
        if node in self._index:
            self._removed.discard(node)
            return
        self._added_index[node] = len(self._added)
        self._added.append(node)

    def discard(self, node: str) -> None:
        i = self._added_index.pop(node, None)
        if i is not None:
            last = self._added.pop()
            if i < len(self._added):
                self._added[i] = last
                self._added_index[last] = i
            return
        if node in self._index:
            self._removed.add(node)

    def choice(self, rng: random.Random) -> str:
        """A uniformly random id (the list must not be empty)."""
        base = self._base
        removed = self._removed
        total = len(base) + len(self._added)
        while True:
            i = rng.randrange(total)
            if i >= len(base):
                return self._added[i - len(base)]
            node = base[i]
            if node not in removed:
                return node

    def snapshot(self) -> tuple[Sequence[str], list[str]]:
        """The ids now, as (shared base, own additions); the base may hold removed ids."""
        return self._base, list(self._added)


class LazyShuffle:
    """A random order of a snapshot, drawn one id at a time (sparse Fisher-Yates).

    Costs O(ids drawn) memory instead of a shuffled copy of every id; ids
    added later are inserted at a uniformly random place among those not
    yet drawn.  Ids that were removed are still drawn: the core skips what
    is no longer live, as it does with its list.
    """

    __slots__ = ("_base", "_extra", "_i", "_n", "_swaps")

    def __init__(self, base: Sequence[str] = (), extra: list[str] | None = None) -> None:
        self._base = base
        self._extra = extra if extra is not None else []
        self._n = len(base) + len(self._extra)
        self._i = 0
        self._swaps: dict[int, int] = {}

    def _at(self, k: int) -> str:
        nb = len(self._base)
        return self._base[k] if k < nb else self._extra[k - nb]

    def next(self, rng: random.Random) -> str | None:
        """The next id, or None when every id was drawn."""
        i = self._i
        if i >= self._n:
            return None
        j = rng.randrange(i, self._n)
        swaps = self._swaps
        vi = swaps.pop(i, i)
        vj = swaps.get(j, j) if j != i else vi
        if j != i:
            swaps[j] = vi
        self._i = i + 1
        return self._at(vj)

    def insert(self, node: str) -> None:
        """Add ``node`` among the ids still to draw."""
        self._extra.append(node)
        self._n += 1

    def __len__(self) -> int:
        return self._n - self._i
