"""Lattice secret rotation: several accepted PSKs, live, without dropping sessions."""

from __future__ import annotations

import pytest

from meshhost.config import TransportConfig
from meshhost.errors import LocalProtocolError, NoiseError, NoiseUsageError, PeerUnavailable
from meshhost.identity.keyring import NOISE_PSK, Keyring, derive
from meshhost.transport.noise import HandshakeState
from meshhost.transport.pool import Transport
from meshhost.transport.session import MAX_PSKS, HandshakeComplete, SessionEnded
from tests.transport.transport_pair import (
    host_key,
    make_session,
    pump,
    seeded_random_bytes,
    serving,
)

LATTICE = "rotation-test"
SECRET_A, SECRET_B, SECRET_C = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32
PSK_A, PSK_B, PSK_C = (derive(s, NOISE_PSK, LATTICE) for s in (SECRET_A, SECRET_B, SECRET_C))
NAME = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b"


# --- Noise core: forking a handshake ------------------------------------------


def _hs(initiator: bool, psk: bytes, seed: int) -> HandshakeState:
    rb = seeded_random_bytes(seed)
    return HandshakeState(NAME, initiator=initiator, s=rb(32), psks=[psk], random_bytes=rb)


def test_a_forked_handshake_tries_each_psk_without_spoiling_the_original() -> None:
    init, resp = _hs(True, PSK_B, 1), _hs(False, PSK_A, 2)
    resp.read_message(init.write_message(b""))
    init.read_message(resp.write_message(b"hello 2"))
    msg3 = init.write_message(b"hello 3")
    wrong = resp.fork(psks=[PSK_C])
    with pytest.raises(NoiseError):
        wrong.read_message(msg3)
    right = resp.fork(psks=[PSK_B])
    assert right.read_message(msg3) == b"hello 3"
    assert right.handshake_hash == init.handshake_hash
    send, _ = init.split()
    _, recv = right.split()
    assert recv.decrypt_with_ad(b"", send.encrypt_with_ad(b"", b"x")) == b"x"
    # The original (PSK A) is untouched by both trials and fails on its own.
    with pytest.raises(NoiseError):
        resp.read_message(msg3)
    with pytest.raises(NoiseUsageError):
        resp.fork()  # a failed handshake cannot be forked
    with pytest.raises(NoiseUsageError):
        _hs(False, PSK_A, 3).fork(psks=[PSK_A, PSK_B])  # one psk token left, two keys


def test_psk0_responder_forks_before_message_1_and_only_the_right_psk_verifies() -> None:
    """What the transport does (psk0): each candidate PSK checks message 1's MAC."""
    name = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b"
    rb1, rb2 = seeded_random_bytes(1), seeded_random_bytes(2)
    init = HandshakeState(name, initiator=True, s=rb1(32), psks=[PSK_B], random_bytes=rb1)
    resp = HandshakeState(name, initiator=False, s=rb2(32), psks=[PSK_A], random_bytes=rb2)
    msg1 = init.write_message(b"")
    assert len(msg1) == 48  # e and the empty payload's tag
    wrong = resp.fork(psks=[PSK_C])
    with pytest.raises(NoiseError):
        wrong.read_message(msg1)
    right = resp.fork(psks=[PSK_B])
    assert right.read_message(msg1) == b""
    init.read_message(right.write_message(b"hello 2"))
    assert right.read_message(init.write_message(b"hello 3")) == b"hello 3"
    assert right.handshake_hash == init.handshake_hash
    with pytest.raises(NoiseError):
        resp.read_message(msg1)  # the original (PSK A) was untouched and fails on its own


# --- session: the responder accepts any of its PSKs ---------------------------


@pytest.mark.parametrize("used", [PSK_A, PSK_B])
def test_responder_accepts_the_initiator_using_any_accepted_psk(used: bytes) -> None:
    initiator = make_session(True, 1, psk=used, lattice=LATTICE)
    responder = make_session(False, 2, psk=PSK_A, lattice=LATTICE, accepted_psks=(PSK_B,))
    initiator.start()
    ei, er = pump(initiator, responder)
    assert isinstance(ei[0], HandshakeComplete) and isinstance(er[0], HandshakeComplete)
    assert responder.psk == used and not initiator.psk_refused


def test_initiator_with_an_unaccepted_psk_is_refused_and_knows_why() -> None:
    initiator = make_session(True, 1, psk=PSK_C, lattice=LATTICE)
    responder = make_session(False, 2, psk=PSK_A, lattice=LATTICE, accepted_psks=(PSK_B,))
    initiator.start()
    _, er = pump(initiator, responder)
    assert isinstance(er[-1], SessionEnded) and "any of our lattice secrets" in er[-1].message
    initiator.connection_lost()  # the responder hangs up without a word
    assert initiator.psk_refused and initiator.is_closed


def test_too_many_psks_are_refused() -> None:
    transport = make(1, [PSK_A])
    with pytest.raises(LocalProtocolError):
        transport.set_psks([bytes([i]) * 32 for i in range(MAX_PSKS + 1)])
    with pytest.raises(LocalProtocolError):
        transport.set_psks([])
    with pytest.raises(LocalProtocolError):
        transport.set_psks([b"short"])
    assert transport.psks == (PSK_A,)
    transport.set_psks(PSK_B)  # a single PSK is a list of one
    assert transport.psks == (PSK_B,)


# --- over TCP: a live rotation ----------------------------------------------------


async def echo(peer_id: str, channel: int, payload: bytes) -> bytes:
    return payload


def make(seed: int, psks: list[bytes]) -> Transport:
    return Transport(
        host_key(seed),
        LATTICE,
        psks,
        TransportConfig(),
        echo,
        random_bytes=seeded_random_bytes(seed),
    )


async def _fresh_session_works(seed: int, psks: list[bytes], to: tuple[str, int]) -> bool:
    """Can a new host holding ``psks`` open a session to ``to``?"""
    newcomer = make(seed, psks)
    async with serving(newcomer):
        try:
            return await newcomer.request(to, 1, b"hi", timeout_s=5) == b"hi"
        except PeerUnavailable:
            return False


async def test_two_hosts_rotate_from_a_to_b_live_without_dropping_their_session() -> None:
    ring_a, ring_b = Keyring(LATTICE, [SECRET_A]), Keyring(LATTICE, [SECRET_A])
    a, b = make(1, ring_a.noise_psks()), make(2, ring_b.noise_psks())
    async with serving(a, b) as (addr_a, addr_b):
        assert await a.request(addr_b, 1, b"before", timeout_s=5) == b"before"

        async def still_one_session(step: str) -> None:
            assert await a.request(addr_b, 1, step.encode(), timeout_s=5) == step.encode()
            assert await b.request(addr_a, 1, step.encode(), timeout_s=5) == step.encode()
            assert a.stats["connections_dialed"] == 1 and b.stats["connections_dialed"] == 0
            assert a.stats["sessions_open"] == b.stats["sessions_open"] == 1

        # 1. add B everywhere: both secrets are accepted, A still dials.
        for ring, host in ((ring_a, a), (ring_b, b)):
            ring.add(SECRET_B)
            host.set_psks(ring.noise_psks())
        assert a.psks == (PSK_A, PSK_B)
        await still_one_session("added")
        assert await _fresh_session_works(3, [PSK_B], addr_a)  # B is accepted now

        # 2. make B primary, one host after the other: mixed primaries still meet.
        ring_a.make_primary(SECRET_B)
        a.set_psks(ring_a.noise_psks())
        await still_one_session("a switched")
        assert await _fresh_session_works(4, [PSK_A], addr_a)  # A still accepted
        ring_b.make_primary(SECRET_B)
        b.set_psks(ring_b.noise_psks())
        await still_one_session("b switched")

        # 3. remove A everywhere: the session keyed before the rotation lives on,
        # a host that only knows A is refused, one that knows B is welcome.
        for ring, host in ((ring_a, a), (ring_b, b)):
            ring.remove(SECRET_A)
            host.set_psks(ring.noise_psks())
        assert b.psks == (PSK_B,)
        await still_one_session("removed")
        failures = a.stats["handshake_failures"]
        assert not await _fresh_session_works(5, [PSK_A], addr_a)
        assert a.stats["handshake_failures"] == failures + 1
        assert a.stats["closed_unauthenticated"] >= 1
        assert await _fresh_session_works(6, [PSK_B], addr_b)


async def test_a_dialer_behind_on_the_rotation_retries_with_its_next_psk() -> None:
    ahead = make(1, [PSK_B])  # already removed A
    behind = make(2, [PSK_A, PSK_B])  # B added but not primary yet
    async with serving(ahead, behind) as (addr_ahead, _):
        assert await behind.request(addr_ahead, 1, b"late", timeout_s=5) == b"late"
        assert behind.stats["connections_dialed"] == 2  # A refused, then B
        assert behind.stats["sessions_open"] == 1
        assert ahead.stats["handshake_failures"] == 1
