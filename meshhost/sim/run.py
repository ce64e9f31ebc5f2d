"""Running scenarios reproducibly: a run is a pure function of (scenario, seed).

:func:`run_seeded` calls ``scenario(seed)`` and, if it raises, prints
``SEED=<seed>`` and re-raises with the seed in the message, so a failure in
CI can be replayed exactly with ``MESHHOST_SIM_SEED=<seed>``.
:func:`seeds` yields the seeds a test should try: the one from that
environment variable if set, else a fixed list.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import TypeVar

from meshhost.errors import SimulationError

__all__ = ["SEED_ENV", "run_seeded", "seeds"]

SEED_ENV = "MESHHOST_SIM_SEED"
T = TypeVar("T")


def seeds(default: list[int]) -> Iterator[int]:
    """The seed from ``MESHHOST_SIM_SEED`` if set, else ``default``."""
    forced = os.environ.get(SEED_ENV)
    if forced:
        yield int(forced)
        return
    yield from default


def run_seeded(scenario: Callable[[int], T], seed: int) -> T:
    """Run ``scenario(seed)``; on failure print ``SEED=...`` and re-raise with it."""
    try:
        return scenario(seed)
    except SimulationError:
        print(f"SEED={seed}", file=sys.stderr)
        raise
    except AssertionError as exc:
        print(f"SEED={seed}", file=sys.stderr)
        raise AssertionError(f"SEED={seed}: {exc}") from exc
    except Exception as exc:
        print(f"SEED={seed}", file=sys.stderr)
        raise SimulationError(f"SEED={seed}: scenario crashed: {exc!r}") from exc
