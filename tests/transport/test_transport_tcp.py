"""The trio driver on loopback: sessions, streaming, deadlines, bad peers, reconnects."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from meshhost.config import TransportConfig
from meshhost.errors import (
    ErrorCode,
    LocalProtocolError,
    MeshError,
    PayloadTooLarge,
    PeerMismatch,
    PeerUnavailable,
    RemoteError,
    RequestTimeout,
    TransportClosed,
)
from meshhost.transport.pool import Transport
from meshhost.transport.session import Session
from tests.transport.transport_pair import PSK, host_key, seeded_random_bytes, serving

LATTICE = "tcp-test"
Handler = Callable[[str, int, bytes], Awaitable[bytes]]


async def echo(peer_id: str, channel: int, payload: bytes) -> bytes:
    return payload


class Denied(MeshError):
    code = ErrorCode.DENIED


def make(
    seed: int,
    handler: Handler = echo,
    *,
    psk: bytes = PSK,
    lattice: str = LATTICE,
    config: TransportConfig | None = None,
) -> Transport:
    return Transport(
        host_key(seed),
        lattice,
        psk,
        config or TransportConfig(),
        handler,
        random_bytes=seeded_random_bytes(seed),
    )


async def test_two_hosts_exchange_requests_concurrently_on_one_session() -> None:
    async def tagged(peer_id: str, channel: int, payload: bytes) -> bytes:
        return peer_id.encode() + b"|%d|" % channel + payload

    a, b = make(1, tagged), make(2, tagged)
    async with serving(a, b) as (addr_a, addr_b):
        assert await a.request(addr_b, 1, b"first", timeout_s=5) == (
            a.host_id.encode() + b"|1|first"
        )
        results: dict[tuple[str, int], bytes] = {}

        async def call(src: Transport, dst: tuple[str, int], i: int) -> None:
            results[(src.host_id, i)] = await src.request(dst, i % 4 + 1, b"%d" % i, timeout_s=5)

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(call, a, addr_b, i)
                nursery.start_soon(call, b, addr_a, i)
        for i in range(50):
            assert results[(a.host_id, i)] == a.host_id.encode() + b"|%d|%d" % (i % 4 + 1, i)
            assert results[(b.host_id, i)] == b.host_id.encode() + b"|%d|%d" % (i % 4 + 1, i)
        # b reused the session a opened: one connection for both directions.
        assert a.stats["sessions_open"] == b.stats["sessions_open"] == 1
        assert a.stats["connections_dialed"] == 1 and b.stats["connections_dialed"] == 0
        assert a.peer_id_of(addr_b) == b.host_id and b.peer_id_of(addr_a) == a.host_id


async def test_ten_hosts_exchange_requests_concurrently() -> None:
    async def whoami(peer_id: str, channel: int, payload: bytes) -> bytes:
        return peer_id.encode() + payload

    hosts = [make(10 + i, whoami) for i in range(10)]
    async with serving(*hosts) as addrs:
        failures: list[BaseException] = []

        async def call(src: int, dst: int, n: int) -> None:
            payload = os.urandom(100 + n * 997)
            reply = await hosts[src].request(addrs[dst], 1, payload, timeout_s=20)
            if reply != hosts[src].host_id.encode() + payload:
                failures.append(AssertionError(f"{src}->{dst} #{n}"))

        async with trio.open_nursery() as nursery:
            for src in range(10):
                for dst in range(10):
                    if src != dst:
                        for n in range(3):
                            nursery.start_soon(call, src, dst, n)
        assert not failures
        for i, host in enumerate(hosts):
            for j, addr in enumerate(addrs):
                if i != j:
                    assert host.peer_id_of(addr) == hosts[j].host_id
        assert sum(h.stats["requests_received"] for h in hosts) == 10 * 9 * 3


async def test_64_mib_streams_intact_with_bounded_memory() -> None:
    size = 64 << 20
    payload = os.urandom(size)
    digest = hashlib.sha256(payload).digest()

    async def handler(peer_id: str, channel: int, body: bytes) -> bytes:
        if channel == 1:  # upload: answer with the digest
            return hashlib.sha256(body).digest()
        return payload  # download: answer with the big body

    a, b = make(1), make(2, handler)
    async with serving(a, b) as (_, addr_b):
        await a.request(addr_b, 1, b"warm up", timeout_s=10)
        tracemalloc.start()
        try:
            assert await a.request(addr_b, 1, payload, timeout_s=120) == digest
            _, upload_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            reply = await a.request(addr_b, 2, b"", timeout_s=120)
            _, download_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert hashlib.sha256(reply).digest() == digest
        del reply
    # The receiver holds the chunks and then the joined body (2x); everything
    # else in flight is bounded by the stream window, not by the body size.
    slack = 16 << 20
    assert upload_peak < 2 * size + slack, upload_peak
    assert download_peak < 2 * size + slack, download_peak


async def test_remote_errors_carry_the_code() -> None:
    async def handler(peer_id: str, channel: int, payload: bytes) -> bytes:
        if channel == 1:
            raise Denied("no link for wasmcloud:keyvalue")
        raise RuntimeError("bug in the handler")

    a, b = make(1), make(2, handler)
    async with serving(a, b) as (_, addr_b):
        with pytest.raises(RemoteError) as info:
            await a.request(addr_b, 1, b"", timeout_s=5)
        assert info.value.code == ErrorCode.DENIED and info.value.code_name == "denied"
        assert "no link" in str(info.value) and info.value.peer_id == b.host_id
        with pytest.raises(RemoteError) as info:
            await a.request(addr_b, 2, b"", timeout_s=5)
        assert info.value.code == ErrorCode.UNAVAILABLE
        assert "RuntimeError" not in str(info.value)  # no tracebacks cross the wire
        assert a.stats["remote_errors"] == 2


async def test_deadline_and_cancellation_reach_the_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[int] = []
    started = trio.Event()

    async def slow(peer_id: str, channel: int, payload: bytes) -> bytes:
        if channel == 3:
            return b"fast"
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(channel)
        return b""  # pragma: no cover

    a, b = make(1), make(2, slow)
    async with serving(a, b) as (_, addr_b):
        with pytest.raises(RequestTimeout):
            await a.request(addr_b, 1, b"", timeout_s=2)
        await trio.sleep(1)
        assert cancelled == [1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: a.request(addr_b, 2, b"", timeout_s=60))
            started = trio.Event()
            await started.wait()
            nursery.cancel_scope.cancel()
        await trio.sleep(1)
        assert cancelled == [1, 2]
        assert await a.request(addr_b, 3, b"", timeout_s=60) == b"fast"  # session lives on
        assert a.stats["request_timeouts"] == 1 and a.stats["sessions_open"] == 1


async def test_wrong_psk_wrong_lattice_and_wrong_peer_are_rejected_and_others_still_served() -> (
    None
):
    a = make(1)
    good = make(2)
    bad_psk = make(3, psk=bytes(32))
    bad_lattice = make(4, lattice="other")
    async with serving(a, good, bad_psk, bad_lattice) as (addr_a, *_):
        for intruder in (bad_psk, bad_lattice):
            with pytest.raises(PeerUnavailable):
                await intruder.request(addr_a, 1, b"let me in", timeout_s=5)
        with pytest.raises(PeerMismatch):
            await good.request(addr_a, 1, b"", timeout_s=5, expected_peer=host_key(9).public_key)
        assert await good.request(addr_a, 1, b"hi", timeout_s=5, expected_peer=a.host_id) == b"hi"
        assert a.stats["handshake_failures"] == 2
        assert a.stats["closed_unauthenticated"] == 2
        assert a.stats["requests_received"] == 1


def _protocol_2(transport: Transport) -> Transport:
    """Make ``transport`` offer only protocol 2, as the previous release did."""
    new_session = transport.new_session

    def older(**kwargs: object) -> Session:
        session = new_session(**kwargs)  # type: ignore[arg-type]
        session.versions = (2,)
        return session

    transport.new_session = older  # type: ignore[method-assign]
    return transport


async def test_a_protocol_2_host_is_refused_logged_and_counted_both_ways(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "meshhost.transport")
    a = make(1)
    old = _protocol_2(make(2))
    async with serving(a, old) as (addr_a, addr_old):
        # The caller's error (a dial failure, PeerUnavailable) carries the reason.
        with pytest.raises(PeerUnavailable, match="speaks meshhost protocol 2, this host"):
            await a.request(addr_old, 1, b"hi", timeout_s=5)
        assert a.stats["handshake_failed_unsupported"] == 1
        assert "upgrade meshhost on that host" in caplog.text
        with pytest.raises(PeerUnavailable, match="upgrade meshhost on this host"):
            await old.request(addr_a, 1, b"hi", timeout_s=5)
        for _ in range(100):  # the refused side notices the hang-up on its own time
            if a.stats.get("handshake_failed_unavailable"):
                break
            await trio.sleep(0.05)
        assert a.stats.get("handshake_failed_unavailable") == 1
        assert "another meshhost protocol version (this host speaks 3" in caplog.text
        assert a.stats["requests_received"] == old.stats["requests_received"] == 0


async def _raw(addr: tuple[str, int], data: bytes) -> bytes:
    """Connect, send ``data``, and read until the host hangs up."""
    stream = await trio.open_tcp_stream(*addr)
    received = b""
    async with stream:
        if data:
            await stream.send_all(data)
        while chunk := await stream.receive_some(65536):
            received += chunk
    return received


async def test_garbage_truncated_and_stalled_connections_are_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = TransportConfig(handshake_timeout_s=3)
    a, good = make(1, config=config), make(2)
    async with serving(a, good) as (addr_a, _):
        await _raw(addr_a, b"\xff\xff" + os.urandom(100))  # oversized record
        await _raw(addr_a, b"\x00\x30" + os.urandom(0x30))  # garbage ephemeral + tag
        before = trio.current_time()
        await _raw(addr_a, b"")  # says nothing: dropped by the handshake timeout
        assert trio.current_time() - before >= 3
        stream = await trio.open_tcp_stream(*addr_a)
        await stream.send_all(b"\x00\x40" + b"\x01" * 10)  # truncated, then hang up
        await stream.aclose()
        assert await good.request(addr_a, 1, b"still here", timeout_s=5) == b"still here"
        await trio.sleep(0.1)
        assert a.stats["handshake_timeouts"] >= 1
        assert a.stats["closed_protocol"] >= 1
        assert a.stats["closed_unauthenticated"] >= 1
        assert a.stats["sessions_open"] == 1


async def test_simultaneous_connect_yields_one_session() -> None:
    a, b = make(1), make(2)
    async with serving(a, b) as (addr_a, addr_b):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(lambda: a.request(addr_b, 1, b"a->b", timeout_s=5))
                nursery.start_soon(lambda: b.request(addr_a, 1, b"b->a", timeout_s=5))
        await trio.sleep(0.2)
        for _ in range(5):
            assert await a.request(addr_b, 1, b"x", timeout_s=5) == b"x"
            assert await b.request(addr_a, 1, b"y", timeout_s=5) == b"y"
        await trio.sleep(0.2)
        assert a.stats["sessions_open"] == 1 and b.stats["sessions_open"] == 1
        (conn_a,) = [c for c in a._conns if c.session.is_open]
        (conn_b,) = [c for c in b._conns if c.session.is_open]
        assert conn_a.sock.getsockname() == conn_b.sock.getpeername()
        # The survivor was opened by the host with the lower id.
        lower = min(a.host_id, b.host_id)
        winner_dialer = a if conn_a.session.initiator else b
        assert winner_dialer.host_id == lower


async def test_reconnect_after_the_peer_restarts(autojump_clock: trio.testing.MockClock) -> None:
    a = make(1)
    async with trio.open_nursery() as nursery:
        addr_a = await nursery.start(a.serve, "127.0.0.1", 0)
        b = make(2)
        async with trio.open_nursery() as inner:
            addr_b = await inner.start(b.serve, "127.0.0.1", 0)
            assert await a.request(addr_b, 1, b"one", timeout_s=5) == b"one"
            await b.aclose()
        with pytest.raises(PeerUnavailable):
            await a.request(addr_b, 1, b"nobody home", timeout_s=1)
        b2 = make(2)
        async with trio.open_nursery() as inner:
            await inner.start(b2.serve, addr_b[0], addr_b[1])
            assert await a.request(addr_b, 1, b"two", timeout_s=30) == b"two"
            assert await b2.request(addr_a, 1, b"three", timeout_s=5) == b"three"
            await b2.aclose()
        assert a.stats["dial_failures"] >= 1
        assert a.stats["closed_shutting_down"] >= 1
        await a.aclose()


async def test_unreachable_peer_backs_off(autojump_clock: trio.testing.MockClock) -> None:
    config = TransportConfig(backoff_initial_s=4.0, backoff_max_s=60.0)
    a = make(1, config=config)
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()
    async with serving(a):
        with pytest.raises(PeerUnavailable, match="cannot connect") as refused:
            await a.request(dead, 1, b"", timeout_s=1)
        # The reason once, as a person reads it (trio's OSError repeats the address).
        assert str(refused.value) == f"cannot connect to {dead[0]}:{dead[1]}: connection refused"
        # Within the backoff and a short deadline: fail fast without dialing again.
        with pytest.raises(PeerUnavailable, match="next attempt"):
            await a.request(dead, 1, b"", timeout_s=0.5)
        assert a.stats["connections_dialed"] == 1
        with pytest.raises(PeerUnavailable):
            await a.request(dead, 1, b"", timeout_s=10)  # waits out the backoff, dials again
        assert a.stats["connections_dialed"] == 2


async def test_idle_sessions_close_and_reopen(autojump_clock: trio.testing.MockClock) -> None:
    config = TransportConfig(idle_timeout_s=10)
    a, b = make(1, config=config), make(2, config=config)
    async with serving(a, b) as (_, addr_b):
        assert await a.request(addr_b, 1, b"x", timeout_s=5) == b"x"
        await trio.sleep(30)
        assert a.stats["sessions_open"] == 0 and b.stats["sessions_open"] == 0
        assert a.stats["idle_closed"] + b.stats["idle_closed"] >= 1
        assert await a.request(addr_b, 1, b"y", timeout_s=5) == b"y"
        assert a.stats["connections_dialed"] == 2


async def test_connection_limit_refuses_extra_sessions_but_silent_connections_make_way() -> None:
    # Strangers from many addresses (each well within its handshake rate)
    # fill max_connections with connections that never send message 1: the
    # oldest of those makes way, so an honest peer still gets in.
    config = TransportConfig(max_connections=4, handshake_timeout_s=30.0)
    a, b, c = make(1, config=config), make(2), make(3)
    async with serving(a, b, c) as (addr_a, _, _):
        silent = []
        for i in range(8):
            sock = trio.socket.socket()
            await sock.bind((f"127.0.0.{10 + i}", 0))
            await sock.connect(addr_a)
            silent.append(sock)
        await trio.sleep(0.05)
        assert a.stats["connections_evicted_unproven"] == 4
        assert await b.request(addr_a, 1, b"still served", timeout_s=5) == b"still served"
        assert await c.request(addr_a, 1, b"and me", timeout_s=5) == b"and me"
        assert a.stats["connections_refused_limit"] == 0
        for sock in silent:
            sock.close()


def test_silent_connections_make_way_under_a_low_open_file_limit() -> None:
    # With max_connections (1024) above the process's open-file limit, accept
    # failed with EMFILE long before the cap, so nothing made way and an honest
    # peer could not get in while strangers held silent connections.
    soft = 400
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.transport.fd_limited_host", str(soft)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],  # the repository root, where ``tests`` is
    )
    silent: list[socket.socket] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        for i in range(soft + 100):  # 20 sources, within each one's handshake burst
            sock = socket.socket()
            sock.bind((f"127.0.0.{10 + i % 20}", 0))
            sock.connect(("127.0.0.1", port))
            silent.append(sock)

        async def honest() -> bytes:
            b = make(2)
            async with serving(b):
                return await b.request(("127.0.0.1", port), 1, b"let me in", timeout_s=10)

        assert trio.run(honest) == b"let me in"
    finally:
        for sock in silent:
            sock.close()
        server.kill()
        server.wait()


async def test_connection_limit_refuses_extra_connections_when_all_are_sessions() -> None:
    config = TransportConfig(max_connections=1)
    a, b = make(1, config=config), make(2)
    async with serving(a, b) as (addr_a, _):
        assert await b.request(addr_a, 1, b"in", timeout_s=5) == b"in"
        assert await _raw(addr_a, b"") == b""  # closed at once
        assert a.stats["connections_refused_limit"] == 1


async def test_local_misuse_is_reported() -> None:
    config = TransportConfig(max_payload_bytes=1000)
    a = make(1, config=config)
    with pytest.raises(LocalProtocolError, match="serve"):
        await a.request(("127.0.0.1", 1), 1, b"", timeout_s=1)
    async with serving(a) as (addr_a,):
        with pytest.raises(PayloadTooLarge):
            await a.request(addr_a, 1, b"x" * 1001, timeout_s=1)
    with pytest.raises(TransportClosed):
        await a.request(addr_a, 1, b"", timeout_s=1)


class _ManualPeer:
    """A peer speaking the protocol by hand over a raw TCP stream (for misbehaving)."""

    def __init__(self, stream: trio.SocketStream, seed: int = 7, identity: object = None) -> None:
        from tests.transport.transport_pair import make_session

        self.stream = stream
        self.session = make_session(True, seed, identity=identity, lattice=LATTICE)  # type: ignore[arg-type]
        self.session.start()

    async def flush(self) -> bytes:
        data = bytes(self.session.data_to_send())
        if data:
            await self.stream.send_all(data)
        return data

    async def open(self) -> None:
        await self.flush()
        while not self.session.is_open and not self.session.is_closed:
            data = await self.stream.receive_some(65536)
            if not data:
                self.session.connection_lost()
                break
            self.session.receive_data(data, 0.0)
            await self.flush()


async def test_stalling_after_the_first_message_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a = make(1, config=TransportConfig(handshake_timeout_s=2))
    async with serving(a) as (addr_a,):
        stream = await trio.open_tcp_stream(*addr_a)
        peer = _ManualPeer(stream)
        await peer.flush()  # message 1 only, then silence
        assert await stream.receive_some(65536)  # message 2 arrives
        before = trio.current_time()
        assert await stream.receive_some(65536) == b""  # then the host hangs up
        assert trio.current_time() - before >= 1.5
        assert a.stats["handshake_timeouts"] == 1
        await stream.aclose()


async def test_authenticated_peer_replaying_a_frame_is_disconnected() -> None:
    a, good = make(1), make(2)
    async with serving(a, good) as (addr_a, _):
        stream = await trio.open_tcp_stream(*addr_a)
        peer = _ManualPeer(stream)
        await peer.open()
        assert peer.session.is_open and peer.session.peer_id == a.host_id
        peer.session.send_request(1, b"once")
        record = await peer.flush()
        events: list[object] = []

        async def read_events() -> None:
            while chunk := await stream.receive_some(65536):
                peer.session.receive_data(chunk, 0.0)
                while (event := peer.session.next_event()) is not None:
                    if type(event).__name__ != "HandshakeComplete":
                        events.append(event)
                if events and type(events[-1]).__name__ == "ResponseReceived":
                    return

        await read_events()
        assert [type(e).__name__ for e in events] == ["ResponseReceived"]
        await stream.send_all(record)  # the same record again: a replay
        await read_events()
        # The host answers the replay with a CLOSE naming the protocol error.
        assert [type(e).__name__ for e in events] == ["ResponseReceived", "SessionEnded"]
        closed = events[1]
        assert closed.code == ErrorCode.PROTOCOL and closed.by_peer  # type: ignore[attr-defined]
        assert a.stats["closed_protocol"] == 1 and a.stats["protocol_errors"] == 1
        assert await good.request(addr_a, 1, b"fine", timeout_s=5) == b"fine"


async def test_forged_identity_signature_is_rejected_over_tcp() -> None:
    from meshhost.transport.session import LocalIdentity

    a = make(1)
    async with serving(a) as (addr_a,):
        rb = seeded_random_bytes(5)
        honest = LocalIdentity.create(host_key(5), rb)
        forged = LocalIdentity(
            honest.keypair, honest.static, LocalIdentity.create(host_key(6), rb).signature
        )
        stream = await trio.open_tcp_stream(*addr_a)
        peer = _ManualPeer(stream, seed=5, identity=forged)
        await peer.open()
        assert peer.session.is_closed and not peer.session.is_open
        assert a.stats["closed_unauthenticated"] == 1
        assert a.stats["sessions_open"] == 0
        await stream.aclose()


async def test_a_peer_that_stops_reading_holds_back_only_one_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, good = make(1), make(2)
    async with serving(a, good) as (addr_a, _):
        stream = await trio.open_tcp_stream(*addr_a)
        peer = _ManualPeer(stream, seed=7)
        await peer.open()  # then never reads again and never grants credit
        await trio.sleep(0.1)
        peer_addr = ("127.0.0.1", 1007)  # the listening port its hello announced
        assert a.peer_id_of(peer_addr) == host_key(7).public_key
        with pytest.raises(RequestTimeout):
            await a.request(peer_addr, 1, b"x" * (16 << 20), timeout_s=3)
        window = TransportConfig().stream_window_bytes
        assert a.stats["bytes_sent"] < window + (256 << 10)  # one window, not 16 MiB
        (conn,) = [c for c in a._conns if c.peer_id == host_key(7).public_key]
        assert len(conn.session._out) < 4096 and not conn.session._streams  # only a CANCEL waits
        assert await good.request(addr_a, 1, b"ok", timeout_s=5) == b"ok"
        await stream.aclose()


async def test_mixed_sizes_concurrently_in_both_directions() -> None:
    config = TransportConfig(stream_window_bytes=65536, send_buffer_frames=4)
    a, b = make(1, config=config), make(2, config=config)
    sizes = [0, 100, 65499, 65500, 70_000, 300_000, 1_000_000]
    async with serving(a, b) as (addr_a, addr_b):

        async def call(src: Transport, dst: tuple[str, int], size: int) -> None:
            payload = os.urandom(size)
            assert await src.request(dst, 1, payload, timeout_s=30) == payload

        async with trio.open_nursery() as nursery:
            for size in sizes * 3:
                nursery.start_soon(call, a, addr_b, size)
                nursery.start_soon(call, b, addr_a, size)
        assert a.stats["protocol_errors"] == b.stats["protocol_errors"] == 0
