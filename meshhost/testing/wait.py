"""Waiting for a condition in a test, with a deadline and a failure that says what.

Both functions poll: the condition is any cheap callable reading state (a
host's member view, a process's status file). They never assert on how long
the wait took; they return it, so a test can print it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

DEFAULT_TIMEOUT_S = 20.0
"""Generous on purpose: tests run on loaded CI machines; a pass is usually far quicker."""


async def wait_until(
    predicate: Callable[[], bool],
    what: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    interval_s: float = 0.05,
) -> float:
    """Poll ``predicate`` every ``interval_s`` seconds on trio's clock until it is true.

    Returns the seconds it took (about 0 when already true). When ``timeout_s``
    passes first, raises ``AssertionError("timed out after … s waiting until
    {what}")``, so ``what`` should read as the end of that sentence ("both
    hosts see each other"). Runs inside a trio task; under a virtual clock
    (``trio.testing.MockClock``) it waits virtual time.
    """
    start = trio.current_time()
    with trio.move_on_after(timeout_s):
        while not predicate():
            await trio.sleep(interval_s)
        return trio.current_time() - start
    raise AssertionError(f"timed out after {timeout_s} s waiting until {what}")


def poll_until(
    predicate: Callable[[], bool],
    what: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    interval_s: float = 0.1,
    describe: Callable[[], str] | None = None,
) -> float:
    """Blocking :func:`wait_until`, for tests that drive processes from plain code.

    Polls ``predicate`` every ``interval_s`` seconds of wall-clock time (the
    predicate itself may take a while, e.g. run a CLI command) and returns the
    seconds it took. On timeout raises ``AssertionError`` naming ``what``,
    followed by ``describe()`` when given (e.g. what every host sees), which is
    called only then.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval_s)
    message = f"timed out after {timeout_s} s waiting until {what}"
    if describe is not None:
        message += "\n" + describe()
    raise AssertionError(message)
