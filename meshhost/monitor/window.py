"""Recent figures per actor: rates and percentiles over the last few seconds (sans-IO).

``meshhost top`` and the dashboard want "calls/s, p50, p99, errors/s" per
actor *now*.  Keeping every call for that would cost on every call, so
:class:`RecentCalls` works from the cumulative tallies the host keeps
anyway (count, errors and histogram buckets per actor): each time it is
asked it remembers the tallies, and answers with the difference to the
oldest remembered ones within ``window_s`` (or the newest older ones; at
the first question: to zero at ``start``, i.e. since the host started).
Percentiles are interpolated within histogram buckets, as Prometheus'
``histogram_quantile`` does.
``now`` is always given by the caller (any monotonic clock, seconds).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ActorTally", "RecentCalls", "bucket_quantile"]

WINDOW_S = 10.0
"""Rates and percentiles cover about this much of the recent past."""
MIN_GAP_S = 0.5
"""Remembered tallies are at least this far apart (bounds the memory at window/gap)."""


@dataclass(frozen=True, slots=True)
class ActorTally:
    """Cumulative figures of one actor: calls, failed calls, calls per histogram bucket."""

    calls: int
    errors: int
    buckets: tuple[int, ...]
    """Calls per bucket (not cumulative); the last is above every bound."""


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float:
    """The ``q`` quantile (0..1) of calls counted per bucket, interpolated linearly inside
    its bucket; 0.0 without calls; the last finite bound for calls above every bound."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(bounds):
                return bounds[-1]
            low = bounds[i - 1] if i else 0.0
            return low + (bounds[i] - low) * max(0.0, rank - seen) / n
        seen += n
    return bounds[-1]


class RecentCalls:
    """See the module docstring."""

    __slots__ = ("_history", "bounds", "start", "window_s")

    def __init__(self, bounds: Sequence[float], start: float, window_s: float = WINDOW_S) -> None:
        self.bounds = tuple(bounds)
        self.start = start
        self.window_s = window_s
        self._history: deque[tuple[float, Mapping[str, ActorTally]]] = deque()

    def summary(self, now: float, tallies: Mapping[str, ActorTally]) -> dict[str, dict[str, Any]]:
        """Per actor: ``calls_total``, ``errors_total`` (since start) and, over the recent
        past, ``calls_per_s``, ``errors_per_s``, ``p50_s``, ``p99_s``."""
        history = self._history
        # Forget tallies older than the window, but keep the newest of them when
        # nothing newer is left: after a quiet while the rate is then 0, not
        # the average since start.
        while len(history) > 1 and now - history[1][0] >= self.window_s:
            history.popleft()
        since, before = history[0] if history else (self.start, {})
        span = max(now - since, 1e-3)
        out: dict[str, dict[str, Any]] = {}
        for actor, tally in tallies.items():
            old = before.get(actor)
            calls, errors, buckets = tally.calls, tally.errors, list(tally.buckets)
            if old is not None:
                calls, errors = calls - old.calls, errors - old.errors
                buckets = [a - b for a, b in zip(buckets, old.buckets, strict=True)]
            out[actor] = {
                "calls_total": tally.calls,
                "errors_total": tally.errors,
                "calls_per_s": calls / span,
                "errors_per_s": errors / span,
                "p50_s": bucket_quantile(0.50, self.bounds, buckets),
                "p99_s": bucket_quantile(0.99, self.bounds, buckets),
            }
        if not history or now - history[-1][0] >= MIN_GAP_S:
            history.append((now, dict(tallies)))
        return out
