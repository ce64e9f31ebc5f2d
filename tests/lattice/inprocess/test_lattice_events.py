"""Event subscribers: one that goes away or falls behind never harms the host."""

from __future__ import annotations

from pathlib import Path

import trio

from meshhost.host import SUBSCRIBER_BUFFER
from meshhost.testing import client, make_host, signed_example, wait_until


async def test_an_events_client_that_goes_away_leaves_scale_and_events_working(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        await nursery.start(a.serve)
        echo, echo_id = signed_example("echo")
        seen: list[dict[str, object]] = []

        async def follow(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with trio.CancelScope() as scope:
                task_status.started(scope)
                async for event in client(a).stream("events"):
                    seen.append(event)

        # `meshhost events`, then Ctrl-C once it has printed something.
        follower = await nursery.start(follow)
        await wait_until(lambda: len(a._subscribers) == 1, "the events client subscribed")
        await client(a).request("start", module=echo)
        await wait_until(lambda: bool(seen), "the events client saw the start")
        follower.cancel()

        # Every later event used to raise in publish_event: scale answered
        # "internal error" though it had worked.
        for count in (2, 3, 1, 4, 2):
            answer = await client(a).request("scale", actor=echo_id, count=count)
            assert answer["count"] == count
        await wait_until(lambda: not a._subscribers, "the gone client is no longer a subscriber")

        # A new events client still gets events.
        again: list[dict[str, object]] = []

        async def follow_again() -> None:
            async for event in client(a).stream("events"):
                again.append(event)

        nursery.start_soon(follow_again)
        await wait_until(lambda: len(a._subscribers) == 1, "the second client subscribed")
        await client(a).request("scale", actor=echo_id, count=1)
        await wait_until(lambda: bool(again), "the second client saw the scale")
        nursery.cancel_scope.cancel()


async def test_a_subscriber_that_never_reads_loses_events_counted_not_the_host(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        await nursery.start(a.serve)
        stuck = a.subscribe()  # never read
        before = a.events_dropped
        for i in range(SUBSCRIBER_BUFFER + 25):
            a.publish_event({"kind": "test", "n": i})
        assert a.events_dropped - before >= 25
        echo, echo_id = signed_example("echo")
        await client(a).request("start", module=echo)
        answer = await client(a).request("scale", actor=echo_id, count=2)
        assert answer["count"] == 2
        assert a.stats()["host.events_dropped"] >= 25
        stuck.close()
        nursery.cancel_scope.cancel()
