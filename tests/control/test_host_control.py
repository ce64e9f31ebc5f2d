"""A running host answers the CLI on its control socket: hosts, events, bad ops, host stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from meshhost.control.api import ControlClient, ControlError
from meshhost.datadir import CONTROL_SOCKET
from meshhost.errors import ErrorCode
from meshhost.testing import alive, make_host, wait_until


async def test_running_host_answers_hosts_events_and_stop(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        a_addr = await nursery.start(a.serve)
        client = ControlClient(a.data_dir / CONTROL_SOCKET)
        events: list[dict[str, object]] = []

        async def follow() -> None:
            async for event in client.stream("events"):
                events.append(event)

        nursery.start_soon(follow)
        await trio.sleep(0.1)  # let the stream subscribe before the join
        b = make_host(tmp_path, 1, seeds=(f"{a_addr[0]}:{a_addr[1]}",))
        await nursery.start(b.serve)
        ids = {a.host_id, b.host_id}
        await wait_until(lambda: alive(a) == ids, "a sees both")

        rows = await client.request("hosts")
        assert {r["id"]: r["state"] for r in rows} == {a.host_id: "alive", b.host_id: "alive"}
        assert {r["id"]: r["local"] for r in rows} == {a.host_id: True, b.host_id: False}
        await wait_until(lambda: bool(events), "an event streamed")
        assert events[0]["kind"] == "host_joined" and events[0]["host"] == b.host_id

        with pytest.raises(ControlError, match="'module' must be the actor's signed") as info:
            await client.request("start", module=b"")
        assert info.value.code == ErrorCode.INVALID
        with pytest.raises(ControlError, match="unknown control op 'frobnicate'") as info:
            await client.request("frobnicate")
        assert info.value.code == ErrorCode.UNSUPPORTED

        await ControlClient(b.data_dir / CONTROL_SOCKET).request("host_stop")
        await wait_until(
            lambda: any(m.id == b.host_id and m.state.name == "LEFT" for m in a.members()),
            "a sees b leave",
        )
        nursery.cancel_scope.cancel()
