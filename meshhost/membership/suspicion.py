"""Lifeguard suspicion: a timeout that shrinks as independent confirmations arrive.

When a host is suspected, every observer starts a timer.  It starts at
``max_timeout`` and, each time a *different* host independently reports the
same suspicion, shrinks on a log scale towards ``min_timeout``, reaching it
after ``k`` confirmations (memberlist ``suspicion.go``; Lifeguard paper,
"Local Health Aware Suspicion")::

    min_timeout = mult * max(1, log10(max(1, n))) * probe_interval
    max_timeout = max_mult * min_timeout
    k           = mult - 2      (0 if fewer than k other hosts could confirm)
    timeout(c)  = max(min, max - log(c + 1) / log(k + 1) * (max - min))

So a real failure, seen by many, is declared after about ``min_timeout``,
while a lone, possibly mistaken accuser (a slow host, a lossy link) waits
``max_timeout``, leaving the suspect time to refute.  Everything here is pure
arithmetic on times the caller passes in.
"""

from __future__ import annotations

import math

__all__ = [
    "Suspicion",
    "expected_confirmations",
    "remaining_suspicion_time",
    "retransmit_limit",
    "suspicion_bounds",
    "suspicion_timeout",
]


def suspicion_timeout(mult: int, n: int, probe_interval_s: float) -> float:
    """Minimum suspicion timeout for a lattice of ``n`` hosts, in seconds."""
    node_scale = max(1.0, math.log10(max(1.0, float(n))))
    # memberlist keeps millisecond precision the same way.
    return mult * math.floor(node_scale * 1000) * probe_interval_s / 1000


def expected_confirmations(mult: int, n: int) -> int:
    """k: confirmations that shrink the timeout to its minimum.

    ``n - 2`` hosts (all but us and the suspect) could confirm; if fewer than
    ``mult - 2`` exist we expect none and use the minimum from the start.
    """
    k = mult - 2
    return 0 if n - 2 < k or k < 1 else k


def remaining_suspicion_time(
    confirmations: int, k: int, elapsed_s: float, min_s: float, max_s: float
) -> float:
    """Time left before the suspect is declared dead (may be negative: overdue)."""
    if k < 1:
        return min_s - elapsed_s
    frac = math.log(confirmations + 1.0) / math.log(k + 1.0)
    raw = max_s - frac * (max_s - min_s)
    timeout = math.floor(1000.0 * raw) / 1000.0
    return max(timeout, min_s) - elapsed_s


def suspicion_bounds(
    mult: int, max_mult: int, n: int, probe_interval_s: float, dynamic: bool = True
) -> tuple[int, float, float]:
    """``(k, min_s, max_s)`` of a new suspicion in a lattice of ``n`` hosts.

    ``dynamic=False`` (``lifeguard_suspicion`` off) is SWIM's fixed timeout:
    ``k = 0`` and ``max_s = min_s``, so confirmations change nothing.
    """
    min_s = suspicion_timeout(mult, n, probe_interval_s)
    if not dynamic:
        return 0, min_s, min_s
    return expected_confirmations(mult, n), min_s, max_mult * min_s


def retransmit_limit(mult: int, n: int) -> int:
    """How many times a broadcast is sent: mult * ceil(log10(n + 1))."""
    return mult * math.ceil(math.log10(n + 1))


class Suspicion:
    """The suspicion timer of one suspected host, as one observer holds it.

    ``accuser`` (the host whose report started it) never counts as a
    confirmation; each other host counts once, up to ``k``.
    """

    __slots__ = ("_confirmed", "k", "last_chance_sent", "max_s", "min_s", "n", "start")

    def __init__(self, accuser: str, k: int, min_s: float, max_s: float, start: float) -> None:
        self.k = k
        self.min_s = min_s
        self.max_s = max_s
        self.start = start
        self.n = 0
        self._confirmed = {accuser}
        self.last_chance_sent = False
        """The observer's one direct reminder to the suspect (see ``swim.py``)."""

    @property
    def deadline(self) -> float:
        """Absolute time at which the suspect is declared dead."""
        return self.start + remaining_suspicion_time(self.n, self.k, 0.0, self.min_s, self.max_s)

    def confirm(self, sender: str) -> bool:
        """Count ``sender``'s independent report; True if it was new (deadline moved)."""
        if self.n >= self.k or sender in self._confirmed:
            return False
        self._confirmed.add(sender)
        self.n += 1
        return True
