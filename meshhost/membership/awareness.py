"""Lifeguard local health awareness: slow down when we, not our peers, are sick.

A host that is overloaded, paused or behind a bad link sees probes fail and
would accuse healthy peers.  Lifeguard lets it notice its own trouble and
become more patient instead (memberlist ``awareness.go``):

* a probe answered in time: score - 1;
* a failed probe: score + (nacks expected - nacks received) when relays were
  asked (a missing nack means *our* packets are not getting through), else
  score + 1;
* we had to refute a suspicion about ourselves: score + 1.

The score stays in ``0 .. max_multiplier - 1``; probe intervals and timeouts
are multiplied by ``score + 1``.
"""

from __future__ import annotations

__all__ = ["Awareness", "probe_failure_delta"]


def probe_failure_delta(expected_nacks: int, nacks: int) -> int:
    """Score change for a failed probe: the missing nacks, or 1 if none were asked.

    A relay that nacks shows our packets get out, so the failure is the
    target's; each missing nack hints the trouble is ours (memberlist
    ``probeNode``).  With nacks switched off (``lifeguard_nacks``) callers
    pass ``expected_nacks=0``.
    """
    if expected_nacks > 0:
        return max(0, expected_nacks - nacks)
    return 1


class Awareness:
    """Local health score (0 = healthy)."""

    __slots__ = ("max_multiplier", "score")

    def __init__(self, max_multiplier: int) -> None:
        if max_multiplier < 1:
            raise ValueError("awareness max multiplier must be >= 1")
        self.max_multiplier = max_multiplier
        self.score = 0

    def apply_delta(self, delta: int) -> int:
        """Add ``delta`` to the score, clamped; returns the new score."""
        self.score = min(max(self.score + delta, 0), self.max_multiplier - 1)
        return self.score

    def scale(self, timeout_s: float) -> float:
        """``timeout_s`` stretched by the current score."""
        return timeout_s * (self.score + 1)
