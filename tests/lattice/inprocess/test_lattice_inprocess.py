"""Three real hosts in one process: actors started anywhere are callable everywhere."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgpack
import pytest
import trio

from meshhost.capabilities import INVOCATION
from meshhost.control.api import ControlError
from meshhost.errors import ErrorCode, HostUnreachable
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.rpc.envelope import decode_result
from meshhost.runtime import wat_to_wasm
from meshhost.testing import ISSUER, alive, client, make_host, signed_example, wait_until
from tests.capabilities.caps_actor import CAPS_WAT
from tests.lattice.inprocess.lattice_helpers import count_of, http_request


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
        await wait_until(
            lambda: (
                bool(b.directory.hosts_running(echo_id))
                and bool(c.directory.hosts_running(echo_id))
            ),
            "b and c see the echo",
        )
        for host in (b, c):
            answer = await client(host).request(
                "call", actor=echo_id, operation="Echo", payload=b"hello", timeout_ms=5000
            )
            assert (answer["payload"], answer["host"]) == (b"hello", a.host_id)

        # kvcounter on A is denied key-value until a link exists; the link is made on C.
        kv, kv_id = signed_example("kvcounter")
        await client(a).request("start", module=kv)
        await wait_until(lambda: bool(b.directory.hosts_running(kv_id)), "b sees kvcounter")
        with pytest.raises(ControlError, match="link"):
            await client(b).request(
                "call",
                actor=kv_id,
                operation="HttpServer.HandleRequest",
                payload=http_request(),
                timeout_ms=5000,
            )
        await client(c).request(
            "link_put",
            actor=kv_id,
            contract="wasmcloud:keyvalue",
            link_name="default",
            provider="",
            values={},
        )
        await wait_until(
            lambda: (
                a.actors.dispatcher.links.get(kv_id, "wasmcloud:keyvalue", "default") is not None
            ),
            "the link reached a",
        )
        counts = []
        for host in (a, b, c):
            answer = await client(host).request(
                "call",
                actor=kv_id,
                operation="HttpServer.HandleRequest",
                payload=http_request(),
                timeout_ms=5000,
            )
            counts.append(count_of(answer["payload"]))
        assert counts == [1, 2, 3]

        links = await client(b).request("link_list")
        assert [(ln["actor"], ln["contract"]) for ln in links] == [(kv_id, "wasmcloud:keyvalue")]
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
            answer = await client(b).request(
                "call", actor=echo_id, operation="Echo", payload=b"x", timeout_ms=5000
            )
            seen.add(answer["host"])
        assert seen == {a.host_id, c.host_id}  # spread over both hosts

        await client(c).request("stop", actor=echo_id, host=c.host_id)
        await wait_until(lambda: len(b.directory.hosts_running(echo_id)) == 1, "c's stop seen")
        answer = await client(b).request(
            "call", actor=echo_id, operation="Echo", payload=b"y", timeout_ms=5000
        )
        assert answer["host"] == a.host_id
        result = await client(b).request("stop", actor=echo_id)
        assert result["stopped"] == 1
        await wait_until(lambda: not b.directory.hosts_running(echo_id), "a's stop seen")
        with pytest.raises(ControlError, match="no host in lattice 'lab' runs actor") as info:
            await client(b).request(
                "call", actor=echo_id, operation="Echo", payload=b"z", timeout_ms=5000
            )
        assert info.value.code == ErrorCode.NOT_FOUND
        nursery.cancel_scope.cancel()


async def test_a_retried_invocation_shows_the_actor_the_same_id_on_both_hosts(
    tmp_path: Path,
) -> None:
    """At-least-once: a call whose answer is lost runs again elsewhere, with the same id."""
    async with trio.open_nursery() as nursery:
        a, b, c = await start_lattice(nursery, tmp_path)
        module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
        wasm = sign_module(
            wat_to_wasm(CAPS_WAT.read_text()),
            issuer=ISSUER,
            subject=module,
            name="dedup",
            now=time.time(),
        )
        actor = module.public_key
        await client(b).request("start", module=wasm)
        await client(c).request("start", module=wasm)
        await wait_until(lambda: len(a.directory.hosts_running(actor)) == 2, "a sees both")

        send = a.actors.invoker._send
        lost: list[tuple[str, bytes]] = []

        async def lose_first_answer(host_id: str, data: bytes, timeout_s: float) -> bytes:
            answer = await send(host_id, data, timeout_s)  # the call ran and committed
            if lost:
                return answer
            lost.append((host_id, decode_result(answer).payload))
            raise HostUnreachable(f"connection to {host_id[:8]} lost before the answer")

        a.actors.invoker._send = lose_first_answer
        ask = bytes([0, len(INVOCATION)]) + INVOCATION.encode()
        ask += bytes([len("Invocation.GetId")]) + b"Invocation.GetId"
        answer = await client(a).request(
            "call", actor=actor, operation="call", payload=ask, timeout_ms=10000
        )
        ((first_host, first_payload),) = lost
        assert {first_host, answer["host"]} == {b.host_id, c.host_id}  # ran on both
        seen = msgpack.unpackb(answer["payload"])
        assert seen == msgpack.unpackb(first_payload) and len(seen) == 32
        again = await client(a).request(
            "call", actor=actor, operation="call", payload=ask, timeout_ms=10000
        )
        assert msgpack.unpackb(again["payload"]) != seen  # another invocation, another id
        nursery.cancel_scope.cancel()


async def test_an_actor_called_by_another_on_the_same_host_sees_its_own_invocation_id(
    tmp_path: Path,
) -> None:
    """A nested call is an invocation of its own: the callee must not see its caller's id."""
    async with trio.open_nursery() as nursery:
        host = make_host(tmp_path, 0)
        await nursery.start(host.serve)
        ids = {}
        for alias in ("t/a", "t/b"):
            module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
            wasm = sign_module(
                wat_to_wasm(CAPS_WAT.read_text()),
                issuer=ISSUER,
                subject=module,
                name=alias,
                call_alias=alias,
                now=time.time(),
            )
            await client(host).request("start", module=wasm)
            ids[alias] = module.public_key
        await client(host).request("link_put", actor=ids["t/a"], contract="t/b")
        outer: list[bytes] = []
        run_local = host.actors.invoker._run_local

        async def record(inv):
            outer.append(inv.id)
            return await run_local(inv)

        host.actors.invoker._run_local = record

        def frame(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
            out = b""
            for part in (binding, namespace, operation):
                out += bytes([len(part)]) + part.encode()
            return out + payload

        get_id = frame("", INVOCATION, "Invocation.GetId", b"")
        own = await client(host).request(
            "call", actor=ids["t/a"], operation="call", payload=get_id, timeout_ms=5000
        )
        nested = await client(host).request(
            "call",
            actor=ids["t/a"],
            operation="call",
            payload=frame("", "t/b", "call", get_id),
            timeout_ms=5000,
        )
        own_id, nested_id = (bytes.fromhex(msgpack.unpackb(x["payload"])) for x in (own, nested))
        assert own_id == outer[0] and len(outer) == 2
        assert nested_id not in outer  # not the caller's (outer[1]) nor anyone else's
        assert nested_id[:8] == outer[1][:8]  # drawn by the same host
        nursery.cancel_scope.cancel()
