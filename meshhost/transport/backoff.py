"""Reconnect delays: exponential backoff with jitter, as a pure function."""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(failures: int, initial_s: float, maximum_s: float, rng: random.Random) -> float:
    """Delay before the next attempt after ``failures`` consecutive failures.

    The ceiling doubles per failure from ``initial_s`` up to ``maximum_s``;
    the delay is drawn uniformly from the upper half of it ("equal jitter"),
    so hosts that failed together do not retry together, yet the wait never
    drops below half the ceiling.  ``failures <= 0`` means no delay.
    """
    if failures <= 0:
        return 0.0
    ceiling = min(maximum_s, initial_s * (2.0 ** min(failures - 1, 62)))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)
