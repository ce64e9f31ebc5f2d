"""Transmit-limited broadcast queue: what rides piggyback on every packet.

Every state change (alive, suspect, dead) is queued once and then sent on the
next packets that have room, at most ``retransmit_mult * ceil(log10(n + 1))``
times, after which epidemic spread has, with high probability, reached every
host (memberlist ``queue.go``).  Items sent fewer times go first, and among
those the newest first, so fresh news overtakes old news.  A newer item with
the same key replaces the older one.  The SWIM core keys a host's alive and
the latest accusation about it (suspect, dead) apart, so the queue holds at
most two items per host plus keyless (user) items: it cannot grow without
bound during a partition.

Why the directory has its own queue (``meshhost.directory.broadcast``)
rather than this one: the two differ where it matters to each.  This queue
sits on every ping and ack, so taking items costs only the items taken
(buckets by transmit count, no sort), a packet also caps the *number* of
parts (a compound holds at most 255), and keyed items are never dropped for
room (a dropped alive or dead is a lost state change; their number is
bounded by the lattice size anyway).  The directory's keys are unbounded
(every link and config key), so its queue is bounded as a whole and drops
the messages sent most often when full, and it discards by predicate (a
namespace's messages at once); it is read once per gossip round, where its
sort costs little.  One class with both policies would carry options each
user has to get right; two small ones, each stating its policy, are kept.
"""

from __future__ import annotations

from collections.abc import Callable

from meshhost.membership.suspicion import retransmit_limit

__all__ = ["MAX_KEYLESS_ITEMS", "TransmitLimitedQueue"]

MAX_KEYLESS_ITEMS = 1024
"""Keyless items beyond this drop the oldest first: a bound on memory when
nothing gets out (a partition, a burst of user broadcasts)."""


class _Item:
    __slots__ = ("key", "order", "payload", "transmits")

    def __init__(self, key: str | None, payload: bytes, order: int) -> None:
        self.key = key
        self.payload = payload
        self.order = order
        self.transmits = 0


class TransmitLimitedQueue:
    """Queue of encoded broadcasts, each sent a bounded number of times.

    ``num_nodes()`` is read whenever packets are filled, so the limit follows
    the lattice size as it changes.
    """

    def __init__(self, retransmit_mult: int, num_nodes: Callable[[], int]) -> None:
        self.retransmit_mult = retransmit_mult
        self._num_nodes = num_nodes
        self._order = 0
        self._by_key: dict[str, _Item] = {}
        # _buckets[t] holds items sent t times, keyed by insertion order.
        self._buckets: list[dict[int, _Item]] = [{}]
        self._keyless: dict[int, _Item] = {}

    def __bool__(self) -> bool:
        return bool(self._by_key) or bool(self._keyless)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets)

    def queue(self, payload: bytes, key: str | None = None) -> None:
        """Queue ``payload``; an older item with the same ``key`` is dropped."""
        if key is not None:
            self.drop(key)
        self._order += 1
        item = _Item(key, payload, self._order)
        self._buckets[0][item.order] = item
        if key is not None:
            self._by_key[key] = item
        else:
            self._keyless[item.order] = item
            if len(self._keyless) > MAX_KEYLESS_ITEMS:
                oldest = next(iter(self._keyless))
                dropped = self._keyless.pop(oldest)
                self._buckets[dropped.transmits].pop(oldest, None)

    def get(self, overhead: int, limit: int, max_items: int = 255) -> list[bytes]:
        """Take items whose sizes plus ``overhead`` each fit in ``limit`` bytes.

        Each taken item counts one transmit; items that reached the retransmit
        limit leave the queue.
        """
        if limit <= overhead:
            return []
        cap = retransmit_limit(self.retransmit_mult, self._num_nodes())
        taken: list[_Item] = []
        used = 0
        smallest = overhead + 1
        for bucket in self._buckets:
            if not bucket:
                continue
            for item in reversed(bucket.values()):
                size = overhead + len(item.payload)
                if used + size <= limit:
                    taken.append(item)
                    used += size
                    if len(taken) >= max_items or limit - used < smallest:
                        break
            if len(taken) >= max_items or limit - used < smallest:
                break
        out = []
        for item in taken:
            out.append(item.payload)
            self._buckets[item.transmits].pop(item.order)
            item.transmits += 1
            if item.transmits >= cap:
                self._forget(item)
                continue
            if item.transmits >= len(self._buckets):
                self._buckets.append({})
            self._buckets[item.transmits][item.order] = item
        return out

    def drop(self, key: str) -> None:
        """Drop the item queued under ``key``, if any."""
        old = self._by_key.pop(key, None)
        if old is not None:
            self._buckets[old.transmits].pop(old.order, None)

    def _forget(self, item: _Item) -> None:
        if item.key is not None:
            if self._by_key.get(item.key) is item:
                del self._by_key[item.key]
        else:
            self._keyless.pop(item.order, None)

    def clear(self) -> None:
        """Drop everything queued."""
        self._by_key.clear()
        self._keyless.clear()
        self._buckets = [{}]
