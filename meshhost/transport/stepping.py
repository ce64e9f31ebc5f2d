"""Run a request handler's first step in the reading task; finish it there later.

The one place meshhost relies on trio behaviour that trio does not document
(listed in docs/architecture.md, "Private APIs we use"; pinned by
``tests/transport/test_trio_stepping.py``, which fails on a trio upgrade
that changes it).

Why: most requests (a warm actor call, a push-pull, an echo) are answered
without ever waiting.  Running the handler right in the task that read the
request saves a task switch per request (a park and a reschedule, about as
much as the rest of the callee's transport work; see the measurements in
docs/architecture.md).  Only when the handler does wait must another task
take over reading, and that is known only once the handler has yielded.

How: ``first_step`` calls ``coro.send(None)``: the handler runs until it
returns (done: no task switch at all) or until it yields to trio.  What it
yields is trio's *trap* (an internal object telling the run loop why the
task suspends); ``resume`` yields that same trap from the same task, which
is exactly what ``await coro`` would have done, and then forwards every
later step both ways.  It relies on:

* a trap may be yielded to trio later than it was produced, after other
  synchronous trio calls in the same task (``nursery.start_soon``,
  ``trio.lowlevel.reschedule`` of another task), as long as no checkpoint
  runs in between;
* trio ties cancel scopes and ``current_task()`` to the task, not to the
  coroutine object it awaits, so scopes a handler enters in its first step
  keep working, and a cancel scope around ``resume`` reaches the handler;
* trio sends into the task's outermost coroutine whatever resumes it
  (values and exceptions, ``Cancelled`` included), which ``resume`` passes
  on unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType
from typing import Any

__all__ = ["CHECKED_TRIO", "first_step", "resume"]

CHECKED_TRIO = "0.35.0"
"""The trio whose undocumented behaviour (above) this module was checked against."""


async def _as_coroutine(awaitable: Awaitable[bytes]) -> bytes:
    return await awaitable


def first_step(
    started: Awaitable[bytes],
) -> tuple[bytes, None] | tuple[Any, Coroutine[Any, Any, bytes]]:
    """Run ``started`` (a handler's coroutine or awaitable) up to its first yield.

    Returns ``(reply, None)`` when it finished without yielding, or
    ``(trap, coro)`` when it yielded to trio: then pass both to ``resume`` in
    this same task, with no checkpoint in between.  Exceptions the handler
    raises in its first step propagate.
    """
    coro = started if type(started) is CoroutineType else _as_coroutine(started)
    try:
        trap = coro.send(None)
    except StopIteration as stop:
        value: bytes = stop.value
        return value, None
    return trap, coro


def resume(coro: Coroutine[Any, Any, bytes], trap: Any) -> Awaitable[bytes]:
    """Await the rest of ``coro`` whose first step ``first_step`` ran in this task."""
    return _Resume(coro, trap)


class _Resume:
    """``await coro`` whose first step already ran; ``trap`` is what it yielded."""

    __slots__ = ("coro", "trap")

    def __init__(self, coro: Coroutine[Any, Any, bytes], trap: Any) -> None:
        self.coro = coro
        self.trap = trap

    def __await__(self) -> Generator[Any, Any, bytes]:
        coro, trap = self.coro, self.trap
        while True:
            try:
                sent = yield trap
            except BaseException as exc:  # delivered into the handler, which decides
                try:
                    trap = coro.throw(exc)
                except StopIteration as stop:
                    value: bytes = stop.value
                    return value
            else:
                try:
                    trap = coro.send(sent)
                except StopIteration as stop:
                    value = stop.value
                    return value
