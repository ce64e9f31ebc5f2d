"""Lattice secret text form, key derivation, sealing and rotation."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import (
    KeyringError,
    LatticeSecretChecksumError,
    LatticeSecretError,
    LocalProtocolError,
)
from meshhost.identity import keyring as kr
from meshhost.identity import nkeys
from meshhost.identity.keyring import Keyring

VECTORS = json.loads((Path(__file__).parents[2] / "proto" / "vectors" / "keyring.json").read_text())
SECRET_A = bytes(range(32))
SECRET_B = bytes(range(32, 64))


def test_secret_text_round_trip_and_shape() -> None:
    text = kr.encode_secret(SECRET_A)
    assert text.startswith("SL") and len(text) == kr.SECRET_CHARS
    assert kr.decode_secret(text) == SECRET_A
    assert kr.decode_secret("  " + text.lower() + "\n") == SECRET_A


@given(st.binary(min_size=32, max_size=32))
def test_any_secret_round_trips(secret: bytes) -> None:
    assert kr.decode_secret(kr.encode_secret(secret)) == secret


def test_mistyped_secret_is_a_checksum_error() -> None:
    text = kr.encode_secret(SECRET_A)
    # Change one character in the body to another valid base32 character.
    i = 20
    typo = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]
    with pytest.raises(LatticeSecretChecksumError, match="mistyped"):
        kr.decode_secret(typo)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("SLAAAA", "cut short"),
        ("SL0AAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H3EW4", "outside base32"),
        ("SNAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H3EW4", "nkeys seed"),
    ],
)
def test_malformed_secrets_raise_typed_errors(text: str, message: str) -> None:
    with pytest.raises(LatticeSecretError, match=message) as info:
        kr.decode_secret(text)
    assert isinstance(info.value, LocalProtocolError)


def test_a_key_seed_given_as_a_secret_is_named_by_its_kind() -> None:
    account = nkeys.KeyPair(nkeys.Prefix.ACCOUNT, bytes(32)).encoded_seed
    host = nkeys.KeyPair(nkeys.Prefix.SERVER, bytes(32)).encoded_seed
    with pytest.raises(LatticeSecretError, match=r"this is an account seed \(SA\.\.\.\), not a"):
        kr.decode_secret(account)
    with pytest.raises(LatticeSecretError, match=r"this is a host seed \(SN\.\.\.\), not a lat"):
        kr.decode_secret(host)


@given(st.text(max_size=80))
def test_decoding_random_text_raises_only_secret_errors(text: str) -> None:
    try:
        secret = kr.decode_secret(text)
    except LatticeSecretError:
        return
    assert len(secret) == 32


def test_load_secrets_reads_primary_first_and_names_bad_lines() -> None:
    text = f"# rotating\n{kr.encode_secret(SECRET_B)}\n\n{kr.encode_secret(SECRET_A)}\n"
    assert kr.load_secrets(text) == [SECRET_B, SECRET_A]
    with pytest.raises(LatticeSecretError, match="line 2"):
        kr.load_secrets("# x\nSLNOPE\n")
    with pytest.raises(LatticeSecretError, match="no lattice secret"):
        kr.load_secrets("# only a comment\n")


def test_derivations_are_independent_by_purpose_and_lattice() -> None:
    keys = {
        (purpose, lattice): kr.derive(SECRET_A, purpose, lattice)
        for purpose in (kr.NOISE_PSK, kr.UDP_SEAL, kr.MDNS_TAG, kr.KEY_HINT)
        for lattice in ("default", "other")
    }
    assert len(set(keys.values())) == len(keys)
    assert all(len(k) == 32 for k in keys.values())
    assert SECRET_A not in keys.values()


def test_derivation_matches_the_spec_formula() -> None:
    # Written from proto/spec/keyring.md, independently of the implementation.
    message = b"meshhost-derive/1" + b"\x09noise-psk" + b"\x00\x07default"
    expected = hashlib.blake2b(message, key=SECRET_A, digest_size=32).digest()
    assert kr.derive(SECRET_A, "noise-psk", "default") == expected


def test_mdns_tag_hides_secret_and_lattice_name() -> None:
    tag = kr.mdns_tag(SECRET_A, "secret-lattice-name")
    assert re.fullmatch(r"[0-9a-f]{16}", tag), tag
    assert "secret" not in tag
    assert tag != kr.mdns_tag(SECRET_B, "secret-lattice-name")
    assert tag != kr.mdns_tag(SECRET_A, "another")


def test_vectors_secrets() -> None:
    for entry in VECTORS["secrets"]:
        secret = bytes.fromhex(entry["secret_hex"])
        assert kr.encode_secret(secret) == entry["text"]
        assert kr.decode_secret(entry["text"]) == secret


def test_vectors_derivations_and_tags() -> None:
    for entry in VECTORS["derivations"]:
        secret = bytes.fromhex(entry["secret_hex"])
        got = kr.derive(secret, entry["purpose"], entry["lattice"])
        assert got.hex() == entry["key_hex"]
    for entry in VECTORS["mdns_tags"]:
        assert kr.mdns_tag(bytes.fromhex(entry["secret_hex"]), entry["lattice"]) == entry["tag"]


def test_vectors_sealed_packets() -> None:
    for entry in VECTORS["sealed"]:
        ring = Keyring.create(entry["lattice"], [bytes.fromhex(entry["secret_hex"])])
        plaintext = bytes.fromhex(entry["plaintext_hex"])
        packet = ring.seal(plaintext, nonce=bytes.fromhex(entry["nonce_hex"]))
        assert packet.hex() == entry["packet_hex"]
        assert ring.open(bytes.fromhex(entry["packet_hex"])) == plaintext
        assert len(packet) == len(plaintext) + kr.SEAL_OVERHEAD


def test_vectors_secret_texts_accepted_and_rejected() -> None:
    for entry in VECTORS["texts_accepted"]:
        assert kr.decode_secret(entry["text"]).hex() == entry["secret_hex"], entry["note"]
    for entry in VECTORS["texts_rejected"]:
        with pytest.raises(LatticeSecretError) as info:
            kr.decode_secret(entry["text"])
        assert type(info.value).__name__ == entry["error"], entry["note"]


def test_vectors_packets_not_opened() -> None:
    for entry in VECTORS["not_opened"]:
        ring = Keyring.create(entry["lattice"], [bytes.fromhex(entry["secret_hex"])])
        assert ring.open(bytes.fromhex(entry["packet_hex"])) is None
        assert getattr(ring.stats, entry["reason"]) == 1 == ring.stats.rejected


def _ring(*secrets: bytes, lattice: str = "default", seed: int = 1) -> Keyring:
    rng = random.Random(seed)
    return Keyring.create(lattice, secrets, random_bytes=rng.randbytes)


def test_seal_open_round_trip_with_fresh_nonces() -> None:
    ring = _ring(SECRET_A)
    a, b = ring.seal(b"ping"), ring.seal(b"ping")
    assert a != b  # random nonce each time
    assert ring.open(a) == b"ping" and ring.open(b) == b"ping"
    assert ring.stats.opened == 2 and ring.stats.rejected == 0


def test_wrong_secret_or_lattice_is_refused_and_counted() -> None:
    packet = _ring(SECRET_A).seal(b"alive")
    other_secret = _ring(SECRET_B)
    other_lattice = _ring(SECRET_A, lattice="other")
    assert other_secret.open(packet) is None
    assert other_lattice.open(packet) is None
    assert other_secret.stats.bad_auth == 1 and other_lattice.stats.bad_auth == 1


def test_truncated_tampered_and_garbage_packets_are_refused_and_counted() -> None:
    ring = _ring(SECRET_A)
    packet = ring.seal(b"x" * 100)
    for cut in range(len(packet)):
        assert ring.open(packet[:cut]) is None
    for i in range(len(packet)):
        flipped = bytearray(packet)
        flipped[i] ^= 0x01
        assert ring.open(bytes(flipped)) is None
    assert ring.open(packet + b"\x00") is None
    stats = ring.stats
    assert stats.opened == 0
    assert stats.too_short == kr.SEAL_OVERHEAD
    assert stats.bad_version == 1  # the flipped version byte
    assert stats.rejected == len(packet) + len(packet) + 1


@given(st.binary(max_size=1300))
def test_open_never_raises_on_random_bytes(data: bytes) -> None:
    ring = _ring(SECRET_A)
    assert ring.open(data) is None
    assert ring.stats.rejected == 1


def test_rotation_api_rules() -> None:
    ring = _ring(SECRET_A)
    with pytest.raises(KeyringError, match="add it first"):
        ring.make_primary(SECRET_B)
    ring.add(SECRET_B)
    assert ring.primary == SECRET_A and ring.secrets == (SECRET_A, SECRET_B)
    with pytest.raises(KeyringError, match="primary"):
        ring.remove(SECRET_A)
    ring.make_primary(SECRET_B)
    ring.remove(SECRET_A)
    assert ring.secrets == (SECRET_B,)
    with pytest.raises(KeyringError):
        Keyring.create("default", [])
    assert "00010203" not in repr(ring) and SECRET_B.hex() not in repr(ring)


def test_two_hosts_rotate_without_losing_a_packet() -> None:
    """Every step of add / make primary / remove keeps both directions open."""
    h1, h2 = _ring(SECRET_A, seed=1), _ring(SECRET_A, seed=2)

    def both_ways() -> bool:
        return h2.open(h1.seal(b"1->2")) == b"1->2" and h1.open(h2.seal(b"2->1")) == b"2->1"

    steps = [
        lambda: h1.add(SECRET_B),
        lambda: h2.add(SECRET_B),
        lambda: h1.make_primary(SECRET_B),  # h1 seals with B, h2 still with A
        lambda: h2.make_primary(SECRET_B),
        lambda: h1.remove(SECRET_A),
        lambda: h2.remove(SECRET_A),
    ]
    assert both_ways()
    for step in steps:
        step()
        assert both_ways()
    assert h1.stats.rejected == 0 and h2.stats.rejected == 0
    assert h1.stats.opened_with_old_key + h2.stats.opened_with_old_key > 0
    # The old secret no longer opens anything.
    assert h1.open(_ring(SECRET_A).seal(b"stale")) is None


def test_mdns_tags_cover_every_key_in_the_ring() -> None:
    ring = _ring(SECRET_A)
    ring.add(SECRET_B)
    assert ring.mdns_tags() == {
        kr.mdns_tag(SECRET_A, "default"),
        kr.mdns_tag(SECRET_B, "default"),
    }
