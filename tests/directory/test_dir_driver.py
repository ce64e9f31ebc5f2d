"""The directory driver keeps the host's directory working when a change or a tick fails."""

from __future__ import annotations

import random
from typing import Any

import trio

from meshhost.capabilities.links import LinkDefinition
from meshhost.directory import Directory
from meshhost.directory.driver import DirectoryDriver

from .conftest import ManualClock, host_id


class FlakyLinks:
    """A link sink whose first put_link fails with a bug (not a MeshError)."""

    def __init__(self) -> None:
        self.put: list[str] = []
        self.applied = 0
        self.fail_next = True

    async def put_link(self, link: Any) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("provider bug")
        self.put.append(link.contract_id)

    async def del_link(self, actor_id: str, contract_id: str, link_name: str) -> None:
        pass

    async def apply_links(self, links: list[Any]) -> None:
        self.applied += 1
        raise RuntimeError("provider bug while re-applying")


async def test_failing_link_changes_and_ticks_do_not_stop_the_driver() -> None:
    me = host_id(1)
    directory = Directory(me, clock=ManualClock())
    links = FlakyLinks()
    emitted: list[dict[str, Any]] = []

    async def send(host: str, channel: int, payload: bytes, timeout_s: float) -> bytes:
        raise AssertionError("no peers here")

    driver = DirectoryDriver(
        directory,
        links=links,
        send=send,
        emit=emitted.append,
        load=lambda: 0.0,
        forget_host=lambda _id: None,
        live_ids=lambda: {me},
        rng=random.Random(1),
    )
    actor = "M" + "A" * 55
    tick, ticks = directory.tick, []

    def tick_with_a_bug_once() -> None:
        ticks.append(1)
        if len(ticks) == 1:
            raise RuntimeError("directory bug")
        tick()

    directory.tick = tick_with_a_bug_once  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.serve)
        directory.put_link(LinkDefinition(actor, "wasmcloud:keyvalue"))
        directory.put_link(LinkDefinition(actor, "wasmcloud:httpserver"))
        with trio.fail_after(5):
            while links.put != ["wasmcloud:httpserver"] or links.applied < 2 or len(ticks) < 2:
                await trio.sleep(0.05)
        # the driver is still draining events after both failures
        directory.put_link(LinkDefinition(actor, "wasmcloud:messaging"))
        with trio.fail_after(5):
            while "wasmcloud:messaging" not in links.put:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert [e["contract"] for e in emitted if e["kind"] == "link_put"] == [
        "wasmcloud:httpserver",
        "wasmcloud:messaging",
    ]
