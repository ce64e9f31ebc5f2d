"""Request handlers run in the reading task until they block; blocking never stalls a session."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from meshhost.config import TransportConfig
from meshhost.errors import ErrorCode, MeshError, RemoteError
from meshhost.transport.pool import Transport
from tests.transport.transport_pair import PSK, host_key, seeded_random_bytes

LATTICE = "handlers-test"


class Refused(MeshError):
    code = ErrorCode.DENIED


def make(seed: int, handler: object) -> Transport:
    return Transport(
        host_key(seed),
        LATTICE,
        PSK,
        TransportConfig(),
        handler,  # type: ignore[arg-type]
        random_bytes=seeded_random_bytes(seed),
    )


async def nothing(peer_id: str, channel: int, payload: bytes) -> bytes:
    return b""


async def test_a_blocked_handler_does_not_hold_up_later_requests_on_the_session() -> None:
    release = trio.Event()
    order: list[str] = []

    async def handler(peer_id: str, channel: int, payload: bytes) -> bytes:
        if channel == 3:
            return b""
        if channel == 1:  # blocks until a later request on the same session frees it
            order.append("blocked")
            await release.wait()
            order.append("released")
            return b"waited"
        release.set()
        order.append("freed")
        return b"freed"

    a, b = make(1, nothing), make(2, handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve, "127.0.0.1", 0)
        addr_b = await nursery.start(b.serve, "127.0.0.1", 0)
        results: dict[int, bytes] = {}

        async def call(channel: int) -> None:
            results[channel] = await a.request(addr_b, channel, b"", timeout_s=10)

        await a.request(addr_b, 3, b"", timeout_s=10)  # open the session first
        async with trio.open_nursery() as calls:
            calls.start_soon(call, 1)
            await trio.testing.wait_all_tasks_blocked()
            calls.start_soon(call, 2)
        assert results == {1: b"waited", 2: b"freed"}
        assert order == ["blocked", "freed", "released"]
        assert a.stats["sessions_open"] == 1
        await a.aclose()
        await b.aclose()


async def test_many_blocking_and_instant_handlers_each_answer_once() -> None:
    gate = trio.Event()

    async def handler(peer_id: str, channel: int, payload: bytes) -> bytes:
        n = int(payload)
        kind = n % 6
        if kind == 0:
            return payload  # instant
        if kind == 1:
            await gate.wait()  # blocks until the last request arrives
            return payload
        if kind == 2:
            await trio.lowlevel.checkpoint()
            raise Refused(f"no {n}")  # refuses after blocking
        if kind == 3:
            raise Refused(f"no {n}")  # refuses at once
        if kind == 4:
            await trio.sleep(0)
            return bytearray(payload)  # bytes-like replies are accepted
        if n == 29:
            gate.set()
        return memoryview(payload)  # type: ignore[return-value]

    a, b = make(1, nothing), make(2, handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve, "127.0.0.1", 0)
        addr_b = await nursery.start(b.serve, "127.0.0.1", 0)
        results: dict[int, bytes | str] = {}

        async def call(n: int) -> None:
            try:
                results[n] = await a.request(addr_b, 1, b"%d" % n, timeout_s=10)
            except RemoteError as exc:
                assert exc.code == ErrorCode.DENIED
                results[n] = str(exc)

        async with trio.open_nursery() as calls:
            for n in range(30):
                calls.start_soon(call, n)
        for n in range(30):
            if n % 6 in (2, 3):
                assert f"no {n}" in str(results[n])
            else:
                assert results[n] == b"%d" % n
        assert b.stats["requests_received"] == 30 and b.stats["sessions_open"] == 1
        (conn,) = b._conns
        assert not conn.handlers and not conn.inbox
        await a.aclose()
        await b.aclose()


async def test_a_handler_returning_no_bytes_is_an_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(peer_id: str, channel: int, payload: bytes) -> bytes:
        if channel == 2:
            await trio.lowlevel.checkpoint()
        return "text"  # type: ignore[return-value]

    a, b = make(1, nothing), make(2, handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve, "127.0.0.1", 0)
        addr_b = await nursery.start(b.serve, "127.0.0.1", 0)
        for channel in (1, 2):
            with pytest.raises(RemoteError) as info:
                await a.request(addr_b, channel, b"", timeout_s=10)
            assert info.value.code == ErrorCode.UNAVAILABLE
        assert "returned str, not bytes" in caplog.text
        assert await b.request(("127.0.0.1", a._listen_port), 1, b"x", timeout_s=5) == b""
        await a.aclose()
        await b.aclose()


async def test_a_session_ending_cancels_handlers_blocked_in_any_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started = trio.Event()
    cancelled: list[int] = []

    async def handler(peer_id: str, channel: int, payload: bytes) -> bytes:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(channel)
        raise AssertionError("unreachable")  # pragma: no cover

    a, b = make(1, nothing), make(2, handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve, "127.0.0.1", 0)
        addr_b = await nursery.start(b.serve, "127.0.0.1", 0)

        async def call(channel: int) -> None:
            with pytest.raises(MeshError):
                await a.request(addr_b, channel, b"", timeout_s=1000)

        async with trio.open_nursery() as calls:
            for channel in (1, 2, 3):
                calls.start_soon(call, channel)
            await started.wait()
            await trio.sleep(1)
            await a.aclose()  # the session ends while three handlers block on b
        await trio.sleep(1)
        assert sorted(cancelled) == [1, 2, 3]
        assert not b._conns
        await b.aclose()


async def test_a_handler_that_is_no_coroutine_function_is_served_too() -> None:
    class Ready:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield from trio.lowlevel.checkpoint().__await__()
            return b"awaitable"

    def handler(peer_id: str, channel: int, payload: bytes) -> object:
        if channel == 1:
            raise RuntimeError("broken before returning an awaitable")
        return Ready()  # an awaitable that is not a coroutine

    a, b = make(1, nothing), make(2, handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve, "127.0.0.1", 0)
        addr_b = await nursery.start(b.serve, "127.0.0.1", 0)
        with pytest.raises(RemoteError) as info:
            await a.request(addr_b, 1, b"", timeout_s=10)
        assert info.value.code == ErrorCode.UNAVAILABLE
        assert await a.request(addr_b, 2, b"", timeout_s=10) == b"awaitable"
        await a.aclose()
        await b.aclose()


async def test_replies_to_a_peer_that_reads_late_wait_for_room_then_all_arrive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from meshhost.transport.session import ResponseReceived
    from tests.transport.transport_pair import make_session

    reply = bytes(range(256)) * 234  # 59904 B: one frame each

    async def handler(peer_id: str, channel: int, payload: bytes) -> bytes:
        return reply

    config = TransportConfig(send_buffer_frames=4)
    host = Transport(
        host_key(1), LATTICE, PSK, config, handler, random_bytes=seeded_random_bytes(1)
    )
    async with trio.open_nursery() as nursery:
        addr = await nursery.start(host.serve, "127.0.0.1", 0)
        stream = await trio.open_tcp_stream(*addr)
        peer = make_session(True, 7, lattice=LATTICE)
        peer.start()
        while not peer.is_open:
            if out := bytes(peer.data_to_send()):
                await stream.send_all(out)
            data = await stream.receive_some(65536)
            assert data
            peer.receive_data(data, 0.0)
        while peer.next_event() is not None:
            pass
        count = 200  # 12 MB of replies: far more than the socket buffers hold
        rids = {peer.send_request(1, b"%d" % n) for n in range(count)}
        await stream.send_all(bytes(peer.data_to_send()))
        await trio.sleep(1)  # we do not read: the host's writer backs up
        (conn,) = host._conns
        # Backpressure: one batch with the writer, at most send_buffer_frames
        # more queued; the other requests wait in worker tasks for room.
        assert conn.leftover is not None and conn.is_full
        held = len(conn.leftover) + len(conn.session._out)
        assert held <= 2 * config.send_buffer_frames * (len(reply) + 64)
        assert len(conn.handlers) > count // 2
        got: set[int] = set()
        while len(got) < count:
            data = await stream.receive_some(1 << 20)
            assert data
            peer.receive_data(data, 0.0)
            if out := bytes(peer.data_to_send()):
                await stream.send_all(out)
            while (event := peer.next_event()) is not None:
                assert isinstance(event, ResponseReceived) and event.payload == reply
                got.add(event.request_id)
        assert got == rids
        assert host.stats["protocol_errors"] == 0 and not conn.handlers
        await stream.aclose()
        await host.aclose()
