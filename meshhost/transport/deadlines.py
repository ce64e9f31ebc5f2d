"""Deadlines fired by one trio task: cheaper than a cancel scope per request.

Entering and leaving a ``trio.CancelScope`` with a deadline costs about as
much as a task switch; a request/response round trip needs one on each side.
Instead, each request registers ``(deadline, callback)`` here (a heap push)
and one task sleeps until the earliest deadline and runs the callbacks that
are due.  Finished requests cancel their entry (lazily removed).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import trio

__all__ = ["Deadlines"]

_COMPACT_MIN = 256
"""Rebuild the heap when at least this many cancelled entries pile up..."""


class Deadlines:
    """A heap of ``[when, seq, callback]`` entries and the task that fires them."""

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []
        self._seq = 0
        self._cancelled = 0
        self._scope: trio.CancelScope | None = None
        self._wake_at = math.inf

    def add(self, when: float, callback: Callable[[], None]) -> list[Any]:
        """Run ``callback()`` at trio time ``when`` unless cancelled; return the entry."""
        self._seq += 1
        entry = [when, self._seq, callback]
        heapq.heappush(self._heap, entry)
        if when < self._wake_at:
            self._wake_at = when
            if self._scope is not None:
                self._scope.deadline = when
        return entry

    def cancel(self, entry: list[Any]) -> None:
        """Forget ``entry``; idempotent."""
        if entry[2] is not None:
            entry[2] = None
            self._cancelled += 1
            if self._cancelled >= _COMPACT_MIN and self._cancelled * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[2] is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled

    async def run(self) -> None:
        """Fire due callbacks forever; run it in the transport's nursery."""
        heap = self._heap
        while True:
            now = trio.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                entry = heapq.heappop(heap)
                callback = entry[2]
                if callback is None:
                    self._cancelled -= 1
                    continue
                entry[2] = None
                callback()
            self._wake_at = heap[0][0] if heap else math.inf
            with trio.CancelScope(deadline=self._wake_at) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
