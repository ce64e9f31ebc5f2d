"""Transmit-limited broadcast queue for piggybacked directory messages.

Each queued message is sent at most ``transmit_limit`` times (memberlist's
``retransmit_mult * ceil(log10(N + 1))``), messages sent fewest times first so
new information overtakes old.  A message has an identity (for example the
key it updates); queuing a message with the identity of a queued one
replaces it, so only the newest value of a key waits to be sent.  The queue
is bounded: during a long partition it drops the messages sent most often
(push-pull repairs whatever is dropped).

Not the membership queue (``meshhost.membership.broadcast``, which says
why at length): its keys are bounded by the lattice size and never dropped,
these are not, and it is read on every ping while this is read once per
gossip round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["MAX_QUEUED_BROADCASTS", "BroadcastQueue", "transmit_limit"]

MAX_QUEUED_BROADCASTS = 4096
"""Messages waiting to be piggybacked.  A full re-announcement after a
partition heal is a few per host; beyond this, push-pull is cheaper."""


def transmit_limit(retransmit_mult: int, members: int) -> int:
    """How many times one message is piggybacked in a lattice of ``members`` hosts."""
    return retransmit_mult * max(1, math.ceil(math.log10(max(members, 1) + 1)))


@dataclass(slots=True)
class _Item:
    payload: bytes
    transmits: int
    seq: int


class BroadcastQueue:
    """Pending piggyback payloads with per-message transmit counts."""

    def __init__(self, max_items: int = MAX_QUEUED_BROADCASTS) -> None:
        """Keep at most about ``max_items`` messages (up to 25 % more between trims)."""
        self._items: dict[Hashable, _Item] = {}
        self._max_items = max_items
        self._seq = 0
        self.dropped = 0
        """Messages evicted because the queue was full (a counter for metrics)."""

    def __len__(self) -> int:
        return len(self._items)

    def push(self, ident: Hashable, payload: bytes) -> None:
        """Queue ``payload``; it replaces a queued message with the same ``ident``."""
        self._seq += 1
        self._items.pop(ident, None)
        self._items[ident] = _Item(payload, 0, self._seq)
        if len(self._items) > self._max_items + self._max_items // 4:
            # Trim in batches so a burst of pushes costs O(n log n), not O(n^2).
            order = sorted(
                self._items, key=lambda k: (self._items[k].transmits, -self._items[k].seq)
            )
            for worst in order[self._max_items :]:
                del self._items[worst]
                self.dropped += 1

    def discard(self, predicate: Callable[[Hashable], bool]) -> None:
        """Drop every queued message whose identity satisfies ``predicate``."""
        for ident in [i for i in self._items if predicate(i)]:
            del self._items[ident]

    def take(self, limit_bytes: int, transmit_limit: int, overhead_bytes: int = 0) -> list[bytes]:
        """Payloads that fit in ``limit_bytes`` (each costing ``overhead_bytes`` extra).

        Least-sent first, newest first among equals.  Each returned message's
        count goes up by one; messages that reach ``transmit_limit`` leave.
        """
        if not self._items or limit_bytes <= 0:
            return []
        order = sorted(self._items.items(), key=lambda kv: (kv[1].transmits, -kv[1].seq))
        out: list[bytes] = []
        room = limit_bytes
        for ident, item in order:
            cost = len(item.payload) + overhead_bytes
            if cost > room:
                continue
            room -= cost
            out.append(item.payload)
            item.transmits += 1
            if item.transmits >= transmit_limit:
                del self._items[ident]
            if room <= overhead_bytes:
                break
        return out
