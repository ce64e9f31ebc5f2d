"""Noise core behaviour beyond the vectors: misuse, tampering, rekey, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import MeshError, NoiseError, NoiseUsageError
from meshhost.transport.noise import CipherState, HandshakeState, parse_protocol_name
from tests.transport.transport_pair import seeded_random_bytes

XX = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b"
PSK = b"\x07" * 32


def _pair() -> tuple[HandshakeState, HandshakeState]:
    i = HandshakeState(
        XX, initiator=True, s=b"\x01" * 32, psks=[PSK], random_bytes=seeded_random_bytes(1)
    )
    r = HandshakeState(
        XX, initiator=False, s=b"\x02" * 32, psks=[PSK], random_bytes=seeded_random_bytes(2)
    )
    return i, r


def test_full_handshake_and_transport() -> None:
    i, r = _pair()
    r.read_message(i.write_message(b""))
    assert i.read_message(r.write_message(b"resp")) == b"resp"
    assert r.read_message(i.write_message(b"init")) == b"init"
    assert i.complete and r.complete and i.handshake_hash == r.handshake_hash
    assert i.remote_static == r.s.public if r.s else False
    i_send, i_recv = i.split()
    r_send, r_recv = r.split()
    assert r_recv.decrypt_with_ad(b"", i_send.encrypt_with_ad(b"", b"x")) == b"x"
    assert i_recv.decrypt_with_ad(b"", r_send.encrypt_with_ad(b"", b"y")) == b"y"


def test_out_of_turn_calls_are_usage_errors() -> None:
    i, r = _pair()
    with pytest.raises(NoiseUsageError):
        i.read_message(b"\x00" * 48)
    with pytest.raises(NoiseUsageError):
        r.write_message(b"")
    with pytest.raises(NoiseUsageError):
        i.split()
    with pytest.raises(NoiseUsageError):
        _ = i.handshake_hash


def test_failed_read_abandons_the_handshake() -> None:
    i, r = _pair()
    msg = bytearray(i.write_message(b""))
    msg[-1] ^= 0x80
    with pytest.raises(NoiseError):
        r.read_message(bytes(msg))
    with pytest.raises(NoiseUsageError, match="abandoned"):
        r.read_message(bytes(msg))


def test_truncated_handshake_message() -> None:
    i, r = _pair()
    with pytest.raises(NoiseError, match="truncated"):
        r.read_message(i.write_message(b"")[:20])


def test_low_order_public_key_is_a_noise_error() -> None:
    i, r = _pair()
    r.read_message(i.write_message(b""))
    msg = bytearray(r.write_message(b""))
    msg[:32] = bytes(32)  # the all-zero point: DH output would be zero
    with pytest.raises(NoiseError):
        i.read_message(bytes(msg))


def test_cipher_rekey_changes_the_key_and_both_sides_agree() -> None:
    a, b = CipherState(b"\x05" * 32), CipherState(b"\x05" * 32)
    a.rekey()
    b.rekey()
    assert a.k == b.k and a.k != b"\x05" * 32
    assert b.decrypt_with_ad(b"ad", a.encrypt_with_ad(b"ad", b"m")) == b"m"
    c = CipherState(b"\x05" * 32)
    with pytest.raises(NoiseError):
        c.decrypt_with_ad(b"ad", a.encrypt_with_ad(b"ad", b"m"))
    assert c.n == 0  # a failed decryption does not consume a nonce


@pytest.mark.parametrize(
    "name",
    [
        "Noise_XX_448_ChaChaPoly_BLAKE2b",
        "Noise_XX_25519_AESGCM_SHA256",
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        "Noise_KK_25519_ChaChaPoly_BLAKE2b",
        "Noise_XXpsk9_25519_ChaChaPoly_BLAKE2b",
        "Noise_XXfallback_25519_ChaChaPoly_BLAKE2b",
        "Nois_XX_25519_ChaChaPoly_BLAKE2b",
    ],
)
def test_unsupported_protocol_names(name: str) -> None:
    with pytest.raises(NoiseUsageError):
        parse_protocol_name(name)


def test_psk_count_and_size_are_checked() -> None:
    with pytest.raises(NoiseUsageError):
        HandshakeState(XX, initiator=True, s=b"\x01" * 32, random_bytes=seeded_random_bytes(1))
    with pytest.raises(NoiseUsageError):
        HandshakeState(
            XX, initiator=True, s=b"\x01" * 32, psks=[b"x"], random_bytes=seeded_random_bytes(1)
        )


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=120)), max_size=6), st.booleans())
def test_fuzz_handshake_state_machine(steps: list[tuple[bool, bytes]], initiator: bool) -> None:
    """Random reads and writes in random order: only meshhost errors, never a crash."""
    hs = HandshakeState(
        XX,
        initiator=initiator,
        s=b"\x03" * 32,
        psks=[PSK],
        random_bytes=seeded_random_bytes(3),
    )
    for write, data in steps:
        try:
            if write:
                hs.write_message(data)
            else:
                hs.read_message(data)
        except MeshError:
            pass


@pytest.mark.parametrize("size", [0, 1, 100, 65519])
def test_record_fast_path_matches_the_noise_cipher(size: int) -> None:
    from meshhost.transport.records import open_record, seal_record

    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    reference, fast, reader = (CipherState(b"\x09" * 32) for _ in range(3))
    for split in (0, 5, size):  # head and body given apart must not matter
        expected = reference.encrypt_with_ad(b"", plaintext)
        out = bytearray(b"prefix")
        seal_record(fast, out, plaintext[:split], memoryview(plaintext)[split:])
        assert bytes(out) == b"prefix" + len(expected).to_bytes(2, "big") + expected
        assert open_record(reader, bytes(out), 8, len(expected)) == plaintext
    tampered = bytearray(out)
    tampered[-1] ^= 1
    with pytest.raises(NoiseError):
        open_record(reader, bytes(tampered), 8, len(expected))
    with pytest.raises(NoiseError):
        open_record(reader, b"\x00" * 10, 0, 10)
