"""nkeys: the ed25519 key encoding used by NATS and wasmCloud.

A public key is ``base32(prefix_byte || key32 || crc16_le)`` without padding,
56 characters; its first character names what the key is for (``N`` host,
``M`` module/actor, ``A`` account, ...).  A seed is
``base32(seed_b0 || seed_b1 || seed32 || crc16_le)``, 58 characters, starting
with ``S`` followed by the letter of the public key it derives.  The CRC is
CRC-16/XMODEM (polynomial 0x1021, initial value 0) stored little-endian.

Only functions that take or produce keys live here; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable
from dataclasses import dataclass

from meshhost.errors import (
    NkeyChecksumError,
    NkeyEncodingError,
    NkeyLengthError,
    NkeyPrefixError,
    SignatureError,
)

__all__ = [
    "KeyPair",
    "Prefix",
    "crc16",
    "decode_public",
    "decode_seed",
    "encode_public",
    "encode_seed",
    "from_seed",
    "generate",
    "seed_kind",
    "verify",
]


class Prefix(enum.IntEnum):
    """Prefix bytes; the value is the first byte of the decoded key.

    Append-only: these values are on the wire and in files written by NATS and
    wasmCloud.
    """

    SEED = 18 << 3  # 'S'
    PRIVATE = 15 << 3  # 'P'
    SERVER = 13 << 3  # 'N': a meshhost host
    CLUSTER = 2 << 3  # 'C'
    OPERATOR = 14 << 3  # 'O'
    ACCOUNT = 0  # 'A': issuer of claims
    USER = 20 << 3  # 'U'
    MODULE = 12 << 3  # 'M': an actor
    SERVICE = 21 << 3  # 'V': a capability provider
    CURVE = 23 << 3  # 'X': x25519 key, not a signing key

    @property
    def letter(self) -> str:
        return _ALPHABET[self.value >> 3]


PUBLIC_PREFIXES = tuple(p for p in Prefix if p not in (Prefix.SEED, Prefix.PRIVATE))
_KIND_NAMES = {Prefix.SERVER: "host", Prefix.MODULE: "module (actor)"}
"""Names meshhost's docs use where NATS's differ."""
_LATTICE_SECRET_KIND = 11 << 3
"""'L': the kind a lattice secret (SL..., identity/keyring.py) is encoded with; no key has it."""

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_KEY_LEN = 32
PUBLIC_KEY_CHARS = 56  # base32 of 1 + 32 + 2 bytes
SEED_CHARS = 58  # base32 of 2 + 32 + 2 bytes


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM of ``data``: polynomial 0x1021, initial value 0, no reflection."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _b32encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _b32decode(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise NkeyEncodingError(f"{what} must be text, not {type(text).__name__}")
    text = text.strip()
    bad = sorted({c for c in text if c not in _ALPHABET})
    if bad:
        raise NkeyEncodingError(
            f"{what} has characters outside the base32 alphabet A-Z 2-7: {''.join(bad)!r}"
        )
    padded = text + "=" * (-len(text) % 8)
    try:
        return base64.b32decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise NkeyEncodingError(f"{what} is not valid base32 ({len(text)} characters)") from exc


def _with_crc(raw: bytes) -> bytes:
    return raw + crc16(raw).to_bytes(2, "little")


def _check_crc(raw: bytes, what: str) -> bytes:
    body, tail = raw[:-2], raw[-2:]
    expected = crc16(body)
    if int.from_bytes(tail, "little") != expected:
        raise NkeyChecksumError(f"{what} has a bad checksum: it was mistyped or truncated")
    return body


def encode_public(prefix: Prefix, key: bytes) -> str:
    """Encode a 32-byte public key with its prefix; returns the 56-character key."""
    if prefix in (Prefix.SEED, Prefix.PRIVATE):
        raise NkeyPrefixError(f"{prefix.name.lower()} is not a public key prefix")
    if len(key) != _KEY_LEN:
        raise NkeyLengthError(f"public key must be {_KEY_LEN} bytes, got {len(key)}")
    return _b32encode(_with_crc(bytes([prefix]) + key))


def decode_public(text: str, expected: Prefix | None = None) -> tuple[Prefix, bytes]:
    """Decode a public key; returns ``(prefix, key32)``.

    Raises an :class:`~meshhost.errors.NkeyError` subclass naming the problem:
    bad alphabet, wrong length, bad checksum, unknown or unexpected prefix.
    """
    raw = _b32decode(text, "public key")
    if len(raw) == 2 + _KEY_LEN + 2 and raw[0] & 0xF8 == Prefix.SEED:
        if ((raw[0] & 7) << 5) | ((raw[1] & 0xF8) >> 3) == _LATTICE_SECRET_KIND:
            raise NkeyPrefixError(
                "this is the lattice secret (SL...), not a public key: never share it"
            )
        raise NkeyPrefixError("this is a seed, not a public key: never share seeds")
    if len(raw) != 1 + _KEY_LEN + 2:
        raise NkeyLengthError(
            f"public key decodes to {len(raw)} bytes, expected {1 + _KEY_LEN + 2} "
            f"({PUBLIC_KEY_CHARS} characters)"
        )
    body = _check_crc(raw, "public key")
    try:
        prefix = Prefix(body[0])
    except ValueError:
        raise NkeyPrefixError(f"public key has unknown prefix byte {body[0]:#04x}") from None
    if prefix in (Prefix.SEED, Prefix.PRIVATE):
        raise NkeyPrefixError("this is a seed, not a public key: never share seeds")
    if expected is not None and prefix != expected:
        raise NkeyPrefixError(
            f"expected a {expected.name.lower()} key starting with {expected.letter!r}, "
            f"got a {prefix.name.lower()} key starting with {prefix.letter!r}"
        )
    return prefix, body[1:]


def encode_seed(prefix: Prefix, seed: bytes) -> str:
    """Encode a 32-byte ed25519 (or x25519 for CURVE) seed; returns the 58-character seed."""
    if prefix in (Prefix.SEED, Prefix.PRIVATE):
        raise NkeyPrefixError(f"a seed must name a public key kind, not {prefix.name.lower()}")
    if len(seed) != _KEY_LEN:
        raise NkeyLengthError(f"seed must be {_KEY_LEN} bytes, got {len(seed)}")
    b0 = Prefix.SEED | (prefix >> 5)
    b1 = (prefix & 31) << 3
    return _b32encode(_with_crc(bytes([b0, b1]) + seed))


def decode_seed(text: str, expected: Prefix | None = None) -> tuple[Prefix, bytes]:
    """Decode a seed; returns ``(public prefix, seed32)``."""
    raw = _b32decode(text, "seed")
    if len(raw) != 2 + _KEY_LEN + 2:
        raise NkeyLengthError(
            f"seed decodes to {len(raw)} bytes, expected {2 + _KEY_LEN + 2} "
            f"({SEED_CHARS} characters)"
        )
    body = _check_crc(raw, "seed")
    if body[0] & 0xF8 != Prefix.SEED:
        raise NkeyPrefixError("not a seed: seeds start with 'S'")
    kind = ((body[0] & 7) << 5) | ((body[1] & 0xF8) >> 3)
    wanted = "" if expected is None else f"; expected {seed_kind(expected)}"
    if kind == _LATTICE_SECRET_KIND:
        raise NkeyPrefixError(
            f"this is a lattice secret (SL...), not a key seed{wanted}: the lattice secret "
            "only lets hosts join, it cannot sign"
        )
    try:
        prefix = Prefix(kind)
    except ValueError:
        raise NkeyPrefixError(
            f"seed names unknown key kind {_ALPHABET[kind >> 3]!r} ({kind:#04x}){wanted}"
        ) from None
    if prefix in (Prefix.SEED, Prefix.PRIVATE):
        raise NkeyPrefixError(f"seed names invalid key kind {prefix.name.lower()}{wanted}")
    if expected is not None and prefix != expected:
        raise NkeyPrefixError(f"expected {seed_kind(expected)}, got {seed_kind(prefix)}")
    return prefix, body[2:]


def seed_kind(prefix: Prefix) -> str:
    """How a person calls a seed of this kind, e.g. "an account seed (SA...)"."""
    name = _KIND_NAMES.get(prefix, prefix.name.lower())
    article = "an" if name[0] in "aeiou" else "a"
    return f"{article} {name} seed (S{prefix.letter}...)"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A key pair of one kind. ``seed`` is secret; ``repr`` never shows it."""

    prefix: Prefix
    seed: bytes

    def __repr__(self) -> str:
        return f"KeyPair({self.prefix.name}, {self.public_key})"

    @property
    def public_bytes(self) -> bytes:
        import nacl.public  # here, not at import: the CLI's read commands need no crypto
        import nacl.signing

        if self.prefix == Prefix.CURVE:
            return bytes(nacl.public.PrivateKey(self.seed).public_key)
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)

    @property
    def public_key(self) -> str:
        return encode_public(self.prefix, self.public_bytes)

    @property
    def encoded_seed(self) -> str:
        return encode_seed(self.prefix, self.seed)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte ed25519 signature of ``message``."""
        if self.prefix == Prefix.CURVE:
            raise NkeyPrefixError("curve (X) keys encrypt; they cannot sign")
        import nacl.signing

        return nacl.signing.SigningKey(self.seed).sign(message).signature


def generate(prefix: Prefix, random_bytes: Callable[[int], bytes]) -> KeyPair:
    """Make a new key pair of kind ``prefix`` from ``random_bytes(32)``."""
    if prefix in (Prefix.SEED, Prefix.PRIVATE):
        raise NkeyPrefixError(f"cannot generate a key pair of kind {prefix.name.lower()}")
    return KeyPair(prefix, random_bytes(_KEY_LEN))


def from_seed(text: str, expected: Prefix | None = None) -> KeyPair:
    """Load a key pair from its encoded seed."""
    prefix, seed = decode_seed(text, expected)
    return KeyPair(prefix, seed)


def verify(public_key: str, message: bytes, signature: bytes) -> None:
    """Check an ed25519 signature by ``public_key``; raise SignatureError if it fails."""
    prefix, key = decode_public(public_key)
    if prefix == Prefix.CURVE:
        raise NkeyPrefixError("curve (X) keys cannot verify signatures")
    import nacl.exceptions
    import nacl.signing

    try:
        nacl.signing.VerifyKey(key).verify(message, bytes(signature))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
        raise SignatureError(f"signature by {public_key[:8]}... does not verify") from exc
