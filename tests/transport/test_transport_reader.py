"""The connection reader never loses bytes it has read (regression for 6b08d95).

The reader used to yield to other tasks between ``recv`` and feeding the
bytes to the session.  A deadline of the reader's cancel scope firing at that
checkpoint threw the bytes away; the next record then started mid-ciphertext,
so every later record failed authentication (or the length prefix was
garbage).  Here a handler jumps the mock clock past the reader's timer (the
next keepalive; the idle timeout before keepalives existed) while the reader
is still working through a request body that sits whole in the kernel
buffer, read in small pieces with a checkpoint after each one, so the
cancellation lands on the reader while it holds bytes.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from meshhost.config import TransportConfig
from meshhost.transport import connection
from meshhost.transport.pool import Transport
from meshhost.transport.session import ResponseReceived, Session, SessionEnded
from tests.transport.transport_pair import PSK, host_key, make_session, seeded_random_bytes

LATTICE = "reader-test"
IDLE_S = 120.0
BODY = bytes(range(256)) * 32  # 8 KiB: fits one send into a fresh loopback socket


async def _open_manual(stream: trio.SocketStream, seed: int) -> Session:
    """Handshake a hand-driven initiator session over ``stream``."""
    session = make_session(True, seed, lattice=LATTICE)
    session.start()
    while not session.is_open:
        out = bytes(session.data_to_send())
        if out:
            await stream.send_all(out)
        data = await stream.receive_some(65536)
        assert data, "the host hung up during the handshake"
        session.receive_data(data, 0.0)
    while session.next_event() is not None:
        pass
    out = bytes(session.data_to_send())
    if out:
        await stream.send_all(out)
    return session


async def test_cancel_landing_on_the_reader_mid_body_keeps_the_cipher_in_step(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small reads and a checkpoint after every read: the reader is at a
    # checkpoint holding freshly read bytes as often as the code allows.
    monkeypatch.setattr(connection, "RECV_BYTES", 256)
    monkeypatch.setattr(connection, "YIELD_BYTES", 1)
    jumped = trio.Event()

    async def handler(peer_id: str, channel: int, payload: bytes) -> bytes:
        if channel == 1:
            # Expire the reader's next timer (a keepalive PING is due; not yet
            # a dead peer) while it is inside the body of the next request;
            # keep this request in flight so the session stays busy.
            autojump_clock.jump(host.keepalive_interval_s + 1)
            jumped.set()
            await trio.sleep(1)
            return b"jumped"
        return payload

    host = Transport(
        host_key(1),
        LATTICE,
        PSK,
        TransportConfig(idle_timeout_s=IDLE_S),
        handler,
        random_bytes=seeded_random_bytes(1),
    )
    async with trio.open_nursery() as nursery:
        addr = await nursery.start(host.serve, "127.0.0.1", 0)
        stream = await trio.open_tcp_stream(*addr)
        session = await _open_manual(stream, seed=7)
        first = session.send_request(1, b"jump")
        second = session.send_request(2, BODY)
        await stream.send_all(bytes(session.data_to_send()))  # both at once
        replies: dict[int, bytes] = {}
        with trio.fail_after(IDLE_S / 2):
            while len(replies) < 2:
                data = await stream.receive_some(65536)
                assert data, "the host hung up"
                session.receive_data(data, 0.0)
                while (event := session.next_event()) is not None:
                    assert not isinstance(event, SessionEnded), event
                    assert isinstance(event, ResponseReceived), event
                    replies[event.request_id] = event.payload
        assert jumped.is_set()
        assert replies == {first: b"jumped", second: BODY}
        assert host.stats["protocol_errors"] == 0 and host.stats["sessions_open"] == 1
        await stream.aclose()
        await host.aclose()
