"""Keepalive: a silent peer is found out before the idle timeout; a slow one is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trio.testing

from meshhost.config import TransportConfig
from meshhost.errors import ErrorCode, SessionClosed
from meshhost.transport.pool import Transport
from meshhost.transport.session import KEEPALIVE_MISSES, ResponseReceived
from tests.transport.transport_pair import PSK, host_key, open_pair, pump, seeded_random_bytes

LATTICE = "keepalive-test"


def make(seed: int, handler: object = None, config: TransportConfig | None = None) -> Transport:
    async def echo(peer_id: str, channel: int, payload: bytes) -> bytes:
        return payload

    return Transport(
        host_key(seed),
        LATTICE,
        PSK,
        config or TransportConfig(),
        handler or echo,  # type: ignore[arg-type]
        random_bytes=seeded_random_bytes(seed),
    )


class PausingProxy:
    """Forwards TCP both ways until paused; then holds every byte, as a
    firewall dropping the packets would (neither end sees a FIN or RST)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.paused = False
        self.forwarded = 0

    async def serve(self, *, task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        async def pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
            try:
                while data := await src.receive_some(65536):
                    while self.paused:
                        await trio.sleep_forever()
                    self.forwarded += len(data)
                    await dst.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                with trio.CancelScope(shield=True):
                    await dst.aclose()

        async def relay(client: trio.SocketStream) -> None:
            server = await trio.open_tcp_stream(*self.target)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, client, server)
                nursery.start_soon(pump, server, client)

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, relay, 0, host="127.0.0.1"))
            task_status.started(listeners[0].socket.getsockname()[:2])


@asynccontextmanager
async def proxied_pair(
    handler: object = None, config: TransportConfig | None = None
) -> AsyncIterator[tuple[Transport, Transport, PausingProxy, tuple[str, int]]]:
    a, b = make(1, config=config), make(2, handler, config=config)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve, "127.0.0.1", 0)
        addr_b = await nursery.start(b.serve, "127.0.0.1", 0)
        proxy = PausingProxy(addr_b)
        via = await nursery.start(proxy.serve)
        try:
            yield a, b, proxy, via
        finally:
            await a.aclose()
            await b.aclose()
            nursery.cancel_scope.cancel()


def test_keepalive_frames_do_not_count_as_activity() -> None:
    a, b, _, _ = open_pair()
    before = (a.activity, b.activity)
    a.ping(7)
    ea, eb = pump(a, b)
    assert (a.activity, b.activity) == before and a.pongs_received == 1
    assert not ea and not eb
    rid = a.send_request(1, b"x")
    pump(a, b)
    assert b.send_response(rid, b"y")
    ea, _ = pump(a, b)
    assert ea == [ResponseReceived(rid, b"y")]
    assert a.activity == before[0] + 2 and b.activity == before[1] + 2


async def test_silent_peer_is_dropped_before_the_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = TransportConfig(idle_timeout_s=120)
    async with proxied_pair(config=config) as (a, b, proxy, via):
        assert await a.request(via, 1, b"hello", timeout_s=5) == b"hello"
        assert a.stats["sessions_open"] == b.stats["sessions_open"] == 1
        proxy.paused = True  # from now on nothing gets through, and nobody is told
        start = trio.current_time()
        with pytest.raises(SessionClosed) as info:
            await a.request(via, 1, b"lost", timeout_s=1000)
        waited = trio.current_time() - start
        dead_after = a.keepalive_interval_s * KEEPALIVE_MISSES
        assert dead_after <= waited < config.idle_timeout_s
        assert info.value.code == ErrorCode.UNAVAILABLE
        assert a.stats["keepalive_pings"] >= KEEPALIVE_MISSES - 1
        assert a.stats["keepalive_timeouts"] == 1
        await trio.sleep(a.keepalive_interval_s)
        # The other end hears nothing either and lets go of its half too.
        assert b.stats["keepalive_timeouts"] == 1
        assert a.stats["sessions_open"] == b.stats["sessions_open"] == 0
        assert not a._conns and not b._conns


async def test_quiet_but_live_peer_keeps_its_session_through_a_long_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(peer_id: str, channel: int, payload: bytes) -> bytes:
        await trio.sleep(100)  # no bytes on the wire meanwhile, except keepalives
        return b"done"

    config = TransportConfig(idle_timeout_s=40)
    async with proxied_pair(slow, config) as (a, b, _, via):
        assert a.keepalive_interval_s * KEEPALIVE_MISSES < 100
        assert await a.request(via, 1, b"", timeout_s=500) == b"done"
        assert a.stats["keepalive_pings"] + b.stats["keepalive_pings"] >= 2
        assert a.stats["keepalive_timeouts"] == b.stats["keepalive_timeouts"] == 0
        assert a.stats["idle_closed"] == b.stats["idle_closed"] == 0
        assert a.stats["connections_dialed"] == 1
        # Pings alone do not keep an unused session open.
        await trio.sleep(2 * config.idle_timeout_s)
        assert a.stats["idle_closed"] + b.stats["idle_closed"] >= 1
        assert a.stats["sessions_open"] == b.stats["sessions_open"] == 0


async def test_keepalive_pings_flow_on_an_idle_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = TransportConfig(idle_timeout_s=120)
    async with proxied_pair(config=config) as (a, _, proxy, via):
        assert await a.request(via, 1, b"x", timeout_s=5) == b"x"
        (conn,) = a._conns
        before = proxy.forwarded
        await trio.sleep(3 * a.keepalive_interval_s + 1)
        assert proxy.forwarded > before  # pings and pongs crossed the wire
        assert conn.session.pongs_received >= 1
        assert a.stats["sessions_open"] == 1 and a.stats["keepalive_timeouts"] == 0
