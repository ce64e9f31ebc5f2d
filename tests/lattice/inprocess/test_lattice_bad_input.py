"""Garbage at every input surface of a real host: typed errors, and the host answers on."""

from __future__ import annotations

import os
import re
import struct
import time
from pathlib import Path

import msgpack
import pytest
import trio

from meshhost.control.api import ControlError, decode_reply
from meshhost.control.api import _read_message as read_message
from meshhost.datadir import CONTROL_SOCKET
from meshhost.errors import ErrorCode, RemoteError, RemoteInvocationError
from meshhost.rpc import peer
from meshhost.rpc.envelope import INVOKE_HEADER, MAX_HOPS, decode_result
from meshhost.testing import alive, client, make_host, signed_example, wait_until
from meshhost.transport import channels

GARBAGE = [
    b"",
    b"\xc1",
    os.urandom(300),
    msgpack.packb([1] * 20),
    msgpack.packb({"op": "start", "args": {"module": b"\0asm"}}),
    msgpack.packb([3, [["link", "a/b/c", 2**64 - 1, "N" * 56, None]]]),
]


async def raw_exchange(addr: tuple[str, int], data: bytes, read_s: float = 5.0) -> bytes:
    """Send ``data`` on a new TCP connection; what comes back until close or ``read_s``."""
    stream = await trio.open_tcp_stream(*addr)
    reply = b""
    async with stream:
        try:
            await stream.send_all(data)
            with trio.move_on_after(read_s):
                while chunk := await stream.receive_some(65536):
                    reply += chunk
                    if re.match(rb"HTTP/1\.1 \d+ ", reply) and b"\r\n\r\n" in reply:
                        break
        except trio.BrokenResourceError:
            pass  # the host hung up on us: also an answer
    return reply


async def test_garbage_on_every_surface_gets_typed_errors_and_the_host_answers_on(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        a_addr = await nursery.start(a.serve)
        b = make_host(tmp_path, 1, seeds=(f"{a_addr[0]}:{a_addr[1]}",))
        await nursery.start(b.serve)
        ids = {a.host_id, b.host_id}
        await wait_until(lambda: alive(a) == ids and alive(b) == ids, "both see both")
        echo, echo_id = signed_example("echo")
        await client(a).request("start", module=echo)
        kv, kv_id = signed_example("kvcounter")
        await client(a).request("start", module=kv)
        await client(a).request("link_put", actor=kv_id, contract="wasmcloud:keyvalue")
        await client(a).request(
            "link_put",
            actor=kv_id,
            contract="wasmcloud:httpserver",
            values={"ADDRESS": "127.0.0.1:0", "TIMEOUT_MS": "300"},
        )
        link = a.actors.dispatcher.links.get(kv_id, "wasmcloud:httpserver", "default")
        await wait_until(lambda: a.actors.httpserver.bound_address(link) is not None, "listens")
        http_addr = a.actors.httpserver.bound_address(link)
        await wait_until(lambda: bool(b.directory.hosts_running(echo_id)), "b sees the echo")

        async def answers_normally() -> None:
            reply = await client(b).request(
                "call", actor=echo_id, operation="Echo", payload=b"hi", timeout_ms=5000
            )
            assert (reply["payload"], reply["host"]) == (b"hi", a.host_id)
            page = await raw_exchange(http_addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert page.startswith(b"HTTP/1.1 200 ")

        await answers_normally()

        # Lattice channels from a peer: invocations, push-pull, control, sync, unknown.
        for data in GARBAGE:
            for channel in (1, 2, 4, 9):
                with pytest.raises(RemoteInvocationError) as info:
                    await b.send_to_host(a.host_id, channel, data, 5.0)
                assert info.value.code in (ErrorCode.PROTOCOL, ErrorCode.UNSUPPORTED)
                assert str(info.value)
            with pytest.raises(ControlError) as refused:
                decode_reply(await b.send_to_host(a.host_id, 3, data, 5.0))
            assert str(refused.value)
            with pytest.raises(RemoteError) as peer_refused:  # peer ops (channel 5)
                peer.decode_reply(await b.send_to_host(a.host_id, channels.PEER, data, 5.0))
            assert peer_refused.value.code in (ErrorCode.PROTOCOL, ErrorCode.UNSUPPORTED)
        await answers_normally()

        # Well-formed protocol-3 headers with extreme values, from a secret holder.
        def invoke(deadline_ms: int, hops: int) -> bytes:
            names = (b.host_id.encode(), b"", echo_id.encode(), b"Echo")
            head = INVOKE_HEADER.pack(
                os.urandom(16), os.urandom(16), bytes(8), deadline_ms, hops, 0, *map(len, names)
            )
            return head + b"".join(names) + b"hi"

        now_ms = int(time.time() * 1000)
        for deadline_ms, hops, code, payload in [
            (0, 0, ErrorCode.TIMEOUT, b""),  # long past: refused unrun
            (2**64 - 1, 0, ErrorCode.OK, b"hi"),  # far future: the actor's limits bound it
            (now_ms + 10_000, MAX_HOPS, ErrorCode.OK, b"hi"),  # the last hop still runs
        ]:
            result = decode_result(await b.send_to_host(a.host_id, 1, invoke(deadline_ms, hops), 5))
            assert (result.code, result.payload, result.host) == (code, payload, a.host_id)
        with pytest.raises(RemoteInvocationError) as loop:
            await b.send_to_host(a.host_id, 1, invoke(now_ms + 10_000, MAX_HOPS + 1), 5.0)
        assert loop.value.code == ErrorCode.PROTOCOL and "hops" in str(loop.value)
        await answers_normally()

        # The transport and membership ports, unauthenticated.
        for data in (b"\x00" * 10, os.urandom(100), b"\xff\xff" + os.urandom(70_000)):
            assert await raw_exchange(a_addr, data, read_s=1.0) == b""
        udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with udp:
            for data in (b"", os.urandom(50), os.urandom(1400)):
                await udp.sendto(data, a_addr)
        await answers_normally()

        # The local control socket.
        for data in (b"\xff\xff\xff\xff", struct.pack(">I", 2) + b"\xc1\xc1"):
            stream = await trio.open_unix_socket(str(a.data_dir / CONTROL_SOCKET))
            async with stream:
                await stream.send_all(data)
                with trio.fail_after(5):
                    reply = await read_message(stream)
            assert reply is not None
            with pytest.raises(ControlError):
                decode_reply(reply)
        await answers_normally()

        # The HTTP link: malformed, oversized, stalled, tunnelling.
        for request, status in [
            (b"\x00\xff\r\n\r\n", b"400"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 100_000 + b"\r\n\r\n", b"431"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc", b"408"),
            (b"CONNECT x:1 HTTP/1.1\r\nHost: x:1\r\n\r\n", b"405"),
        ]:
            reply = await raw_exchange(http_addr, request)
            assert reply.startswith(b"HTTP/1.1 " + status), (request[:30], reply[:60])
        await answers_normally()
        nursery.cancel_scope.cancel()
