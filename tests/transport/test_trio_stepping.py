"""Pins the trio behaviour ``meshhost/transport/stepping.py`` relies on.

A handler's first step runs in the reading task by hand (``coro.send``) and
the rest is awaited later from the same task by re-yielding trio's trap.
That is undocumented trio behaviour: if a trio upgrade changes any of it,
one of these fails (and the pin check names the version to re-verify).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import meshhost
from meshhost.transport.stepping import CHECKED_TRIO, first_step, resume

MESHHOST = Path(meshhost.__file__).parent
PYPROJECT = MESHHOST.parent / "pyproject.toml"


def test_the_trio_release_is_the_one_these_tests_checked() -> None:
    installed = trio.__version__
    assert installed == CHECKED_TRIO, (
        f"trio {installed} is installed but meshhost/transport/stepping.py was checked "
        f"against {CHECKED_TRIO}: re-run this file, then raise CHECKED_TRIO with the pin "
        "in pyproject.toml"
    )
    assert f'"trio=={CHECKED_TRIO}"' in PYPROJECT.read_text()


def test_only_stepping_drives_a_coroutine_by_hand() -> None:
    for path in sorted(MESHHOST.rglob("*.py")):
        if path.name == "stepping.py":
            continue
        text = path.read_text()
        for pattern in (".send(None)", "coro.send(", "coro.throw("):
            assert pattern not in text, f"{path.relative_to(MESHHOST.parent)} uses {pattern}"


async def test_a_handler_that_never_waits_finishes_in_its_first_step() -> None:
    ran_in: list[Any] = []

    async def handler() -> bytes:
        ran_in.append(trio.lowlevel.current_task())
        return b"at once"

    reply, coro = first_step(handler())
    assert (reply, coro) == (b"at once", None)
    assert ran_in == [trio.lowlevel.current_task()]


async def test_a_trap_yielded_later_resumes_the_handler_in_the_same_task() -> None:
    seen: list[Any] = []

    async def handler() -> bytes:
        seen.append(trio.lowlevel.current_task())
        await trio.lowlevel.checkpoint()
        seen.append(trio.lowlevel.current_task())
        await trio.sleep(0.01)
        seen.append(trio.lowlevel.current_task())
        return b"later"

    async with trio.open_nursery() as nursery:
        trap, coro = first_step(handler())
        assert coro is not None
        # What the reader does between the two: synchronous trio calls only.
        nursery.start_soon(trio.sleep, 0)
        assert await resume(coro, trap) == b"later"
    assert seen == [trio.lowlevel.current_task()] * 3


async def test_a_handler_waiting_on_an_event_set_by_another_task_gets_its_value() -> None:
    event = trio.Event()

    async def handler() -> bytes:
        await event.wait()
        return b"woken"

    async def set_it() -> None:
        event.set()

    async with trio.open_nursery() as nursery:
        trap, coro = first_step(handler())
        assert coro is not None
        nursery.start_soon(set_it)
        assert await resume(coro, trap) == b"woken"


async def test_a_cancel_scope_entered_in_the_first_step_still_fires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler() -> bytes:
        with trio.move_on_after(1) as scope:
            await trio.sleep(10)
        return b"gave up" if scope.cancelled_caught else b"slept"

    start = trio.current_time()
    trap, coro = first_step(handler())
    assert coro is not None
    assert await resume(coro, trap) == b"gave up"
    assert trio.current_time() - start == pytest.approx(1)


async def test_a_deadline_set_around_the_resume_after_the_first_step_cancels_the_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleaned = []

    async def handler() -> bytes:
        try:
            await trio.sleep(100)
        finally:
            cleaned.append(trio.current_time())
        return b"never"

    start = trio.current_time()
    with trio.CancelScope() as scope:
        trap, coro = first_step(handler())
        assert coro is not None
        scope.deadline = trio.current_time() + 2  # as the reader does once a handler waits
        await resume(coro, trap)
    assert scope.cancelled_caught
    assert cleaned == [pytest.approx(start + 2)]


async def test_errors_raised_after_a_wait_reach_the_resumer() -> None:
    async def handler() -> bytes:
        await trio.lowlevel.checkpoint()
        raise ValueError("after the wait")

    trap, coro = first_step(handler())
    assert coro is not None
    with pytest.raises(ValueError, match="after the wait"):
        await resume(coro, trap)


async def test_errors_in_the_first_step_propagate_from_first_step() -> None:
    async def handler() -> bytes:
        raise KeyError("at once")

    with pytest.raises(KeyError):
        first_step(handler())
