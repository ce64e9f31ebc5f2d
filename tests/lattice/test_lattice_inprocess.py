"""Three real hosts in one process: actors started anywhere are callable everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from lattice_helpers import (
    alive,
    client,
    count_of,
    http_request,
    make_host,
    signed_example,
    wait_until,
)

from meshhost.control.api import ControlError
from meshhost.errors import ErrorCode


async def start_lattice(nursery: trio.Nursery, tmp_path: Path, n: int = 3):
    first = make_host(tmp_path, 0)
    addr = await nursery.start(first.serve)
    hosts = [first]
    for i in range(1, n):
        host = make_host(tmp_path, i, seeds=(f"{addr[0]}:{addr[1]}",))
        await nursery.start(host.serve)
        hosts.append(host)
    ids = {h.host_id for h in hosts}
    await wait_until(lambda: all(alive(h) == ids for h in hosts), "every host sees every host")
    return hosts


async def test_actor_on_a_is_callable_from_b_and_c_and_links_made_on_c_work_on_a(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a, b, c = await start_lattice(nursery, tmp_path)
        echo, echo_id = signed_example("echo")
        started = await client(a).request("start", module=echo, count=2)
        assert started["actor"] == echo_id and started["host"] == a.host_id
        await wait_until(lambda: bool(b.directory.hosts_running(echo_id))
                         and bool(c.directory.hosts_running(echo_id)), "b and c see the echo")
        for host in (b, c):
            answer = await client(host).request("call", actor=echo_id, operation="Echo",
                                                payload=b"hello", timeout_ms=5000)
            assert answer == {"payload": b"hello", "host": a.host_id}

        # kvcounter on A is denied key-value until a link exists; the link is made on C.
        kv, kv_id = signed_example("kvcounter")
        await client(a).request("start", module=kv)
        await wait_until(lambda: bool(b.directory.hosts_running(kv_id)), "b sees kvcounter")
        with pytest.raises(ControlError, match="link"):
            await client(b).request("call", actor=kv_id, operation="HttpServer.HandleRequest",
                                    payload=http_request(), timeout_ms=5000)
        await client(c).request("link_put", actor=kv_id, contract="wasmcloud:keyvalue",
                                link_name="default", provider="", values={})
        await wait_until(lambda: a.actors.dispatcher.links.get(kv_id, "wasmcloud:keyvalue",
                                                               "default") is not None,
                         "the link reached a")
        counts = []
        for host in (a, b, c):
            answer = await client(host).request(
                "call", actor=kv_id, operation="HttpServer.HandleRequest",
                payload=http_request(), timeout_ms=5000)
            counts.append(count_of(answer["payload"]))
        assert counts == [1, 2, 3]

        links = await client(b).request("link_list")
        assert [(ln["actor"], ln["contract"]) for ln in links] == [
            (kv_id, "wasmcloud:keyvalue")]
        inventory = await client(c).request("inventory", host=a.host_id[:10])
        assert {x["id"]: x["instances"] for x in inventory["actors"]} == {echo_id: 2, kv_id: 1}
        rows = await client(b).request("hosts")
        assert {r["id"]: r["actors"] for r in rows}[a.host_id] == 3
        nursery.cancel_scope.cancel()


async def test_calls_fail_over_and_a_lost_actor_is_a_clear_error(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a, b, c = await start_lattice(nursery, tmp_path)
        echo, echo_id = signed_example("echo")
        await client(b).request("start", module=echo, host=a.host_id)
        await client(c).request("start", module=echo)
        await wait_until(lambda: len(b.directory.hosts_running(echo_id)) == 2, "both placements")
        seen = set()
        for _ in range(20):
            answer = await client(b).request("call", actor=echo_id, operation="Echo",
                                             payload=b"x", timeout_ms=5000)
            seen.add(answer["host"])
        assert seen == {a.host_id, c.host_id}  # spread over both hosts

        await client(c).request("stop", actor=echo_id, host=c.host_id)
        await wait_until(lambda: len(b.directory.hosts_running(echo_id)) == 1, "c's stop seen")
        answer = await client(b).request("call", actor=echo_id, operation="Echo",
                                         payload=b"y", timeout_ms=5000)
        assert answer["host"] == a.host_id
        result = await client(b).request("stop", actor=echo_id)
        assert result["stopped"] == 1
        await wait_until(lambda: not b.directory.hosts_running(echo_id), "a's stop seen")
        with pytest.raises(ControlError, match="no host in lattice 'lab' runs actor") as info:
            await client(b).request("call", actor=echo_id, operation="Echo", payload=b"z",
                                    timeout_ms=5000)
        assert info.value.code == ErrorCode.NOT_FOUND
        nursery.cancel_scope.cancel()
