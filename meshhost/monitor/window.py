"""Recent calls per actor: rates and percentiles over the last few seconds (sans-IO).

``meshhost top`` and the dashboard want "calls/s, p50, p99, errors/s" per
actor *now*, which a Prometheus histogram cannot answer without two scrapes
and a rate over them.  :class:`RecentCalls` keeps the last calls of each
actor (bounded: at most ``max_calls`` per actor, none older than
``window_s``) and summarizes them on demand.  ``now`` is always given by
the caller (any monotonic clock, seconds).
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["RecentCalls", "percentile"]

WINDOW_S = 10.0
"""Calls older than this no longer count in the figures."""
MAX_CALLS = 2048
"""Per actor; a busier actor's rate is then measured over a shorter span."""


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of an ascending list by nearest rank; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, int(q * len(sorted_values) + 0.999999) - 1))
    return sorted_values[rank]


class RecentCalls:
    """The last calls of each actor: ``(at, seconds, ok)``; see the module docstring."""

    __slots__ = ("_calls", "_totals", "max_calls", "window_s")

    def __init__(self, window_s: float = WINDOW_S, max_calls: int = MAX_CALLS) -> None:
        self.window_s = window_s
        self.max_calls = max_calls
        self._calls: dict[str, deque[tuple[float, float, bool]]] = {}
        self._totals: dict[str, list[int]] = {}

    def add(self, actor: str, now: float, seconds: float, ok: bool) -> None:
        """Note one finished call of ``actor``."""
        calls = self._calls.get(actor)
        if calls is None:
            calls = self._calls[actor] = deque(maxlen=self.max_calls)
            self._totals[actor] = [0, 0]
        calls.append((now, seconds, ok))
        totals = self._totals[actor]
        totals[0] += 1
        if not ok:
            totals[1] += 1

    def summary(self, now: float) -> dict[str, dict[str, Any]]:
        """Per actor: ``calls_total``, ``errors_total`` (since start) and, over the
        window, ``calls_per_s``, ``errors_per_s``, ``p50_s``, ``p99_s``."""
        out: dict[str, dict[str, Any]] = {}
        since = now - self.window_s
        for actor, calls in self._calls.items():
            while calls and calls[0][0] < since:
                calls.popleft()
            recent = list(calls)
            # A full deque covers less than the window: divide by the span it covers.
            span = self.window_s
            if len(recent) == self.max_calls:
                span = max(1e-3, now - recent[0][0])
            latencies = sorted(seconds for _, seconds, _ in recent)
            errors = sum(1 for _, _, ok in recent if not ok)
            total, failed = self._totals[actor]
            out[actor] = {
                "calls_total": total,
                "errors_total": failed,
                "calls_per_s": len(recent) / span,
                "errors_per_s": errors / span,
                "p50_s": percentile(latencies, 0.50),
                "p99_s": percentile(latencies, 0.99),
            }
        return out

    def forget(self, actor: str) -> None:
        """Drop an actor's figures (it no longer runs here)."""
        self._calls.pop(actor, None)
        self._totals.pop(actor, None)
