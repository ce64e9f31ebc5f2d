"""Helpers: identities, sans-IO sessions wired back to back, transports serving on loopback."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from meshhost.config import TransportConfig
from meshhost.identity.nkeys import KeyPair, Prefix, generate
from meshhost.transport.pool import Transport
from meshhost.transport.session import Event, LocalIdentity, Session

LATTICE = "test-lattice"
PSK = bytes(range(32))


def seeded_random_bytes(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return lambda n: rng.randbytes(n)


def host_key(seed: int) -> KeyPair:
    return generate(Prefix.SERVER, lambda n: hashlib.sha256(b"host%d" % seed).digest()[:n])


def make_session(
    initiator: bool,
    seed: int,
    *,
    psk: bytes = PSK,
    lattice: str = LATTICE,
    config: TransportConfig | None = None,
    identity: LocalIdentity | None = None,
    expected_peer: str | None = None,
    accepted_psks: tuple[bytes, ...] = (),
    fresh_ephemeral: Callable[[bytes], bool] | None = None,
    now: float = 0.0,
) -> Session:
    rb = seeded_random_bytes(seed)
    ident = identity or LocalIdentity.create(host_key(seed), rb)
    return Session(
        initiator=initiator,
        identity=ident,
        lattice=lattice,
        psk=psk,
        config=config or TransportConfig(),
        random_bytes=rb,
        listen_port=1000 + seed,
        expected_peer=expected_peer,
        accepted_psks=accepted_psks,
        fresh_ephemeral=fresh_ephemeral,
        now=now,
    )


def drain(session: Session) -> list[Event]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def pump(a: Session, b: Session, rounds: int = 10_000) -> tuple[list[Event], list[Event]]:
    """Move bytes between a and b until both are quiet; return their events."""
    ea: list[Event] = []
    eb: list[Event] = []
    for _ in range(rounds):
        da = a.data_to_send()
        db = b.data_to_send()
        if not da and not db:
            break
        if da:
            b.receive_data(bytes(da), 0.0)
        if db:
            a.receive_data(bytes(db), 0.0)
        ea += drain(a)
        eb += drain(b)
    ea += drain(a)
    eb += drain(b)
    return ea, eb


def open_pair(**kwargs: object) -> tuple[Session, Session, list[Event], list[Event]]:
    a = make_session(True, 1, **kwargs)  # type: ignore[arg-type]
    b = make_session(False, 2)
    a.start()
    ea, eb = pump(a, b)
    return a, b, ea, eb


@asynccontextmanager
async def serving(*transports: Transport) -> AsyncIterator[list[tuple[str, int]]]:
    """Serve every transport on 127.0.0.1 (a port the system picks) for the block.

    Yields their addresses, in order, once all of them listen; on leaving the
    block (normally or by an exception) closes every transport, which ends
    their sessions and lets the nursery finish.
    """
    async with trio.open_nursery() as nursery:
        addrs = [await nursery.start(t.serve, "127.0.0.1", 0) for t in transports]
        try:
            yield addrs
        finally:
            for t in transports:
                await t.aclose()
