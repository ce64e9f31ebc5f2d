"""nkeys: round trips, known keys, and rejection of every kind of corruption."""

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import (
    MeshError,
    NkeyChecksumError,
    NkeyEncodingError,
    NkeyError,
    NkeyLengthError,
    NkeyPrefixError,
    SignatureError,
)
from meshhost.identity import nkeys
from meshhost.identity.keyring import encode_secret
from meshhost.identity.nkeys import Prefix

SIGNING = [p for p in nkeys.PUBLIC_PREFIXES if p != Prefix.CURVE]


def test_crc16_xmodem_check_value() -> None:
    # The CRC-16/XMODEM catalogue check value for "123456789".
    assert nkeys.crc16(b"123456789") == 0x31C3


@pytest.mark.parametrize("prefix", list(nkeys.PUBLIC_PREFIXES))
def test_keys_start_with_their_letter(prefix: Prefix) -> None:
    pair = nkeys.generate(prefix, os.urandom)
    assert pair.public_key[0] == prefix.letter
    assert pair.encoded_seed[:2] == "S" + prefix.letter
    assert len(pair.public_key) == nkeys.PUBLIC_KEY_CHARS
    assert len(pair.encoded_seed) == nkeys.SEED_CHARS


def test_known_seed_derives_known_public_key() -> None:
    # An all-zero ed25519 seed has a well-known public key (RFC 8032 derivation).
    seed = bytes(32)
    pair = nkeys.KeyPair(Prefix.ACCOUNT, seed)
    assert pair.public_bytes.hex() == (
        "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
    )
    assert nkeys.decode_public(pair.public_key) == (Prefix.ACCOUNT, pair.public_bytes)
    assert nkeys.from_seed(pair.encoded_seed) == pair


@given(st.sampled_from(list(nkeys.PUBLIC_PREFIXES)), st.binary(min_size=32, max_size=32))
def test_public_and_seed_round_trip(prefix: Prefix, raw: bytes) -> None:
    assert nkeys.decode_public(nkeys.encode_public(prefix, raw), prefix) == (prefix, raw)
    assert nkeys.decode_seed(nkeys.encode_seed(prefix, raw), prefix) == (prefix, raw)


@given(st.sampled_from(SIGNING), st.binary(min_size=32, max_size=32), st.binary(max_size=256))
def test_sign_verify_round_trip(prefix: Prefix, seed: bytes, message: bytes) -> None:
    pair = nkeys.KeyPair(prefix, seed)
    sig = pair.sign(message)
    nkeys.verify(pair.public_key, message, sig)
    with pytest.raises(SignatureError):
        nkeys.verify(pair.public_key, message + b"x", sig)


def _flip_char(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    replacement = alphabet[(alphabet.index(text[index]) + 1) % 32]
    return text[:index] + replacement + text[index + 1 :]


@given(st.binary(min_size=32, max_size=32), st.integers(min_value=0, max_value=55))
def test_any_single_character_change_is_rejected(raw: bytes, index: int) -> None:
    key = nkeys.encode_public(Prefix.SERVER, raw)
    corrupted = _flip_char(key, index)
    with pytest.raises(NkeyError):
        _, decoded = nkeys.decode_public(corrupted, Prefix.SERVER)
        # A change in the last character's padding bits decodes to the same bytes.
        assert decoded != raw


def test_bad_checksum_is_named() -> None:
    pair = nkeys.generate(Prefix.MODULE, os.urandom)
    raw = base64.b32decode(pair.public_key)
    tampered = raw[:-2] + bytes([raw[-2] ^ 1, raw[-1]])
    text = base64.b32encode(tampered).decode().rstrip("=")
    with pytest.raises(NkeyChecksumError, match="checksum"):
        nkeys.decode_public(text)


def test_wrong_prefix_is_named() -> None:
    pair = nkeys.generate(Prefix.MODULE, os.urandom)
    with pytest.raises(NkeyPrefixError, match="expected a server key starting with 'N'"):
        nkeys.decode_public(pair.public_key, Prefix.SERVER)
    with pytest.raises(NkeyPrefixError, match="seed"):
        nkeys.decode_public(pair.encoded_seed)
    with pytest.raises(NkeyPrefixError, match=r"expected an account seed \(SA\.\.\.\), got a mod"):
        nkeys.from_seed(pair.encoded_seed, Prefix.ACCOUNT)
    with pytest.raises(NkeyPrefixError, match=r"expected a host seed \(SN\.\.\.\)"):
        nkeys.from_seed(pair.encoded_seed, Prefix.SERVER)


def test_a_lattice_secret_given_as_a_seed_is_named() -> None:
    secret = encode_secret(bytes(32))
    with pytest.raises(NkeyPrefixError, match=r"^this is a lattice secret \(SL\.\.\.\), not a key"):
        nkeys.from_seed(secret)
    with pytest.raises(NkeyPrefixError, match=r"expected a module \(actor\) seed \(SM\.\.\.\)"):
        nkeys.from_seed(secret, Prefix.MODULE)
    with pytest.raises(NkeyPrefixError, match=r"lattice secret \(SL\.\.\.\), not a public key"):
        nkeys.decode_public(secret, Prefix.ACCOUNT)  # e.g. pasted as --allowed-issuer


def test_bad_length_and_alphabet_are_named() -> None:
    pair = nkeys.generate(Prefix.SERVER, os.urandom)
    with pytest.raises(NkeyLengthError):
        nkeys.decode_public(pair.public_key[:-8])
    with pytest.raises(NkeyLengthError):
        nkeys.decode_seed(pair.encoded_seed + "AAAAAAAA")
    with pytest.raises(NkeyEncodingError, match="alphabet"):
        nkeys.decode_public(pair.public_key.lower())
    with pytest.raises(NkeyEncodingError):
        nkeys.decode_public(pair.public_key[:-1] + "1")


def test_curve_keys_cannot_sign() -> None:
    pair = nkeys.generate(Prefix.CURVE, os.urandom)
    assert pair.public_key.startswith("X")
    with pytest.raises(NkeyPrefixError):
        pair.sign(b"x")


def test_repr_never_shows_the_seed() -> None:
    pair = nkeys.generate(Prefix.ACCOUNT, os.urandom)
    assert pair.encoded_seed not in repr(pair)
    assert pair.public_key in repr(pair)


@given(st.text(max_size=80))
def test_decoders_raise_only_mesh_errors_on_random_text(text: str) -> None:
    for decode in (nkeys.decode_public, nkeys.decode_seed):
        try:
            decode(text)
        except MeshError:
            pass
