"""The lattice secret and the keyring that seals every UDP packet.

A *lattice secret* is 32 random bytes; whoever holds it may join the lattice.
People see it as a seed-like string, ``SL`` followed by 56 base32 characters
(58 in all): ``base32(0x92 0xC0 || secret32 || crc16_le)`` without padding,
the same layout as an nkeys seed of kind ``L`` (lattice).  The CRC-16/XMODEM
catches a mistyped or truncated secret before it is used.

Nothing uses the secret directly.  Every use gets its own key, derived by
keyed BLAKE2b (:func:`derive`), so a leaked mDNS tag or a broken sealing key
reveals nothing about the Noise PSK or the secret itself::

    derive(secret, purpose, lattice) =
        BLAKE2b-256(key=secret,
                    "meshhost-derive/1" || u8 len(purpose) || purpose
                                        || u16be len(lattice) || lattice)

Purposes: ``noise-psk`` (transport PSK), ``udp-seal`` (XChaCha20-Poly1305 key
for gossip packets), ``mdns-tag`` (first 8 bytes, hex, in the mDNS TXT record)
and ``key-id`` (first byte: the key hint in sealed packets).

A *keyring* holds one primary secret, used to seal, and older (or newer)
secrets still accepted when opening.  That is how a lattice rotates its secret
with no downtime: ``add`` the new secret on every host, then ``make_primary``
it on every host, then ``remove`` the old one.  Between the steps every host
can open what every other host seals.

Sealed packet (see ``proto/spec/keyring.md``)::

    version u8 (=1) | key hint u8 | nonce 24 | ciphertext || tag 16

sealed with XChaCha20-Poly1305-IETF under ``derive(secret, "udp-seal")``,
associated data ``version || key hint || lattice name (UTF-8)``.  ``open``
tries the key the hint names first, then the others; anything that does not
authenticate is counted and returns ``None``: nothing of an unauthenticated
packet is ever parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions

from meshhost.errors import (
    KeyringError,
    LatticeSecretChecksumError,
    LatticeSecretError,
    NkeyError,
)
from meshhost.identity.nkeys import crc16, decode_seed, seed_kind

__all__ = [
    "KEY_HINT",
    "MDNS_TAG",
    "NOISE_PSK",
    "SEAL_OVERHEAD",
    "SECRET_BYTES",
    "SECRET_CHARS",
    "UDP_SEAL",
    "Keyring",
    "SealStats",
    "decode_secret",
    "derive",
    "encode_secret",
    "generate_secret",
    "load_secrets",
    "mdns_tag",
    "read_secret_file",
]

SECRET_BYTES = 32
"""Length of a lattice secret: a full-strength symmetric key."""
_SECRET_PREFIX = bytes([0x92, 0xC0])  # base32 "SL": nkeys seed byte pair for kind 'L' (11 << 3)
SECRET_CHARS = 58
"""Characters of an encoded secret: base32 of 2 + 32 + 2 bytes, no padding."""
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

NOISE_PSK = "noise-psk"
UDP_SEAL = "udp-seal"
MDNS_TAG = "mdns-tag"
KEY_HINT = "key-id"
_DERIVE_LABEL = b"meshhost-derive/1"
_MAX_PURPOSE_BYTES = 255  # fits the u8 length prefix
_MAX_LATTICE_BYTES = 0xFFFF  # fits the u16 length prefix

SEAL_VERSION = 1
"""First byte of every sealed packet; a new sealing scheme gets a new number."""
_HEADER_BYTES = 2  # version + key hint
_NONCE_BYTES = 24  # XChaCha20: random nonces are safe at this length
_TAG_BYTES = 16  # Poly1305
SEAL_OVERHEAD = _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES
"""Bytes a sealed packet adds to its plaintext (42)."""
MDNS_TAG_BYTES = 8
"""Bytes of the mDNS lattice tag: enough to tell lattices apart, too few to be a key."""


def generate_secret(random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """Return a new 32-byte lattice secret drawn from ``random_bytes``."""
    secret = random_bytes(SECRET_BYTES)
    if len(secret) != SECRET_BYTES:
        raise KeyringError(f"random_bytes returned {len(secret)} bytes, wanted {SECRET_BYTES}")
    return bytes(secret)


def encode_secret(secret: bytes) -> str:
    """Encode a 32-byte secret as its 58-character ``SL...`` text form."""
    if len(secret) != SECRET_BYTES:
        raise LatticeSecretError(f"a lattice secret is {SECRET_BYTES} bytes, got {len(secret)}")
    raw = _SECRET_PREFIX + bytes(secret)
    raw += crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def decode_secret(text: str) -> bytes:
    """Decode an ``SL...`` string to the 32-byte secret.

    Surrounding whitespace and lower case are forgiven.  Raises
    :class:`LatticeSecretError` (bad characters, wrong length, not a lattice
    secret) or its subclass :class:`LatticeSecretChecksumError` (a typo).
    """
    if not isinstance(text, str):
        raise LatticeSecretError(f"a lattice secret is text, not {type(text).__name__}")
    text = text.strip().upper()
    if not text:
        raise LatticeSecretError(
            "the lattice secret is empty; create one with `meshhost lattice new`"
        )
    bad = sorted({c for c in text if c not in _ALPHABET})
    if bad:
        raise LatticeSecretError(
            "the lattice secret has characters outside base32 A-Z 2-7: "
            f"{''.join(bad)!r}; copy it again exactly as `meshhost lattice new` printed it"
        )
    if len(text) != SECRET_CHARS:
        raise LatticeSecretError(
            f"a lattice secret is {SECRET_CHARS} characters starting with 'SL', "
            f"got {len(text)}: it was cut short or has extra characters"
        )
    if not text.startswith("SL"):
        what = "not a secret"
        if text.startswith("S"):
            try:
                what = seed_kind(decode_seed(text)[0])
            except NkeyError:
                what = "an nkeys seed"
        raise LatticeSecretError(
            f"this is {what}, not a lattice secret; lattice secrets start with 'SL' "
            "(`meshhost lattice new` makes one)"
        )
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - alphabet checked above
        raise LatticeSecretError("the lattice secret is not valid base32") from exc
    body, tail = raw[:-2], raw[-2:]
    if crc16(body) != int.from_bytes(tail, "little"):
        raise LatticeSecretChecksumError(
            "the lattice secret's checksum does not match: it was mistyped; "
            "copy it again exactly as `meshhost lattice new` printed it"
        )
    if body[:2] != _SECRET_PREFIX:
        raise LatticeSecretError("not a lattice secret; lattice secrets start with 'SL'")
    return body[2:]


def derive(secret: bytes, purpose: str, lattice: str) -> bytes:
    """Derive the 32-byte key for ``purpose`` in ``lattice`` from ``secret``.

    Keys of different purposes or lattices are independent (keyed BLAKE2b of
    an unambiguous, length-prefixed label).  Pure function.
    """
    if len(secret) != SECRET_BYTES:
        raise KeyringError(f"a lattice secret is {SECRET_BYTES} bytes, got {len(secret)}")
    p = purpose.encode("utf-8")
    lat = lattice.encode("utf-8")
    if not p or len(p) > _MAX_PURPOSE_BYTES:
        raise KeyringError(f"purpose must be 1..{_MAX_PURPOSE_BYTES} bytes, got {len(p)}")
    if len(lat) > _MAX_LATTICE_BYTES:
        raise KeyringError(f"lattice name too long: {len(lat)} bytes")
    message = _DERIVE_LABEL + bytes([len(p)]) + p + len(lat).to_bytes(2, "big") + lat
    return hashlib.blake2b(message, key=bytes(secret), digest_size=32).digest()


def mdns_tag(secret: bytes, lattice: str) -> str:
    """The lattice tag put in mDNS TXT records: 16 hex characters.

    Hosts announcing another tag belong to another lattice (or secret) and are
    ignored; the tag reveals neither the secret nor the lattice name.
    """
    return derive(secret, MDNS_TAG, lattice)[:MDNS_TAG_BYTES].hex()


@dataclass(frozen=True, slots=True)
class _Key:
    secret: bytes
    seal_key: bytes
    hint: int


@dataclass(slots=True)
class SealStats:
    """Counters of what :meth:`Keyring.open` refused, by reason."""

    opened: int = 0
    """Packets that authenticated."""
    too_short: int = 0
    """Shorter than header + nonce + tag: cannot be a sealed packet."""
    bad_version: int = 0
    """First byte is not a sealing version we know."""
    bad_auth: int = 0
    """No key in the ring authenticates it: wrong secret, tampered or garbage."""
    opened_with_old_key: int = 0
    """Authenticated, but by a non-primary key (rotation in progress)."""

    @property
    def rejected(self) -> int:
        """Every packet refused, whatever the reason."""
        return self.too_short + self.bad_version + self.bad_auth


class Keyring:
    """A lattice's secrets: one primary that seals, all accepted when opening.

    ``Keyring(lattice, [primary, *accepted])``.  Mutable on purpose (rotation
    happens while the host runs); one owner (the host's trio task) mutates it.
    ``random_bytes`` supplies nonces, so tests and the simulator can make
    sealing deterministic.  Raises :class:`KeyringError` for an empty list or
    a secret that is not 32 bytes.
    """

    __slots__ = ("_keys", "lattice", "random_bytes", "stats")

    def __init__(
        self,
        lattice: str,
        secrets: Iterable[bytes],
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.lattice = lattice
        self.random_bytes = random_bytes
        self.stats = SealStats()
        """What :meth:`open` accepted and refused, by reason."""
        self._keys: list[_Key] = []
        for secret in secrets:
            self.add(secret)
        if not self._keys:
            raise KeyringError("a keyring needs at least one lattice secret")

    @classmethod
    def create(
        cls,
        lattice: str,
        secrets: Iterable[bytes],
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> Keyring:
        """Same as the constructor (kept for readability at call sites)."""
        return cls(lattice, secrets, random_bytes=random_bytes)

    # -- management -------------------------------------------------------

    @property
    def primary(self) -> bytes:
        """The secret that seals outgoing packets and keys the transport."""
        if not self._keys:
            raise KeyringError("the keyring is empty")
        return self._keys[0].secret

    @property
    def secrets(self) -> tuple[bytes, ...]:
        """All secrets, primary first."""
        return tuple(k.secret for k in self._keys)

    def add(self, secret: bytes) -> None:
        """Accept ``secret`` when opening; it becomes primary only if the ring was empty."""
        secret = bytes(secret)
        if any(k.secret == secret for k in self._keys):
            return
        seal_key = derive(secret, UDP_SEAL, self.lattice)
        hint = derive(secret, KEY_HINT, self.lattice)[0]
        self._keys.append(_Key(secret, seal_key, hint))

    def make_primary(self, secret: bytes) -> None:
        """Seal with ``secret`` from now on; it must have been added first."""
        index = self._index(secret)
        self._keys.insert(0, self._keys.pop(index))

    def remove(self, secret: bytes) -> None:
        """Stop accepting ``secret``. The primary cannot be removed."""
        index = self._index(secret)
        if index == 0:
            raise KeyringError(
                "cannot remove the primary lattice secret; make another one primary first"
            )
        del self._keys[index]

    def _index(self, secret: bytes) -> int:
        for i, key in enumerate(self._keys):
            if key.secret == bytes(secret):
                return i
        raise KeyringError("that lattice secret is not in the keyring; add it first")

    def derive(self, purpose: str) -> bytes:
        """``derive(primary, purpose, lattice)``."""
        return derive(self.primary, purpose, self.lattice)

    def noise_psks(self) -> list[bytes]:
        """The transport PSK of every secret, primary first (``Transport.set_psks``).

        A host dials with the first and accepts any of them, so sessions keep
        forming between hosts at different steps of a rotation.
        """
        return [derive(k.secret, NOISE_PSK, self.lattice) for k in self._keys]

    def mdns_tags(self) -> frozenset[str]:
        """mDNS tags of every secret in the ring (peers mid-rotation announce either)."""
        return frozenset(mdns_tag(k.secret, self.lattice) for k in self._keys)

    # -- sealing ----------------------------------------------------------

    def seal(self, plaintext: bytes, nonce: bytes | None = None) -> bytes:
        """Seal ``plaintext`` under the primary key; adds :data:`SEAL_OVERHEAD` bytes.

        ``nonce`` is for test vectors only; normally it comes from ``random_bytes``.
        """
        if not self._keys:
            raise KeyringError("the keyring is empty")
        key = self._keys[0]
        if nonce is None:
            nonce = self.random_bytes(_NONCE_BYTES)
        if len(nonce) != _NONCE_BYTES:
            raise KeyringError(f"nonce must be {_NONCE_BYTES} bytes, got {len(nonce)}")
        header = bytes([SEAL_VERSION, key.hint])
        box = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            bytes(plaintext), self._aad(header), nonce, key.seal_key
        )
        return header + nonce + box

    def open(self, packet: bytes) -> bytes | None:
        """Return the plaintext of a sealed packet, or ``None`` (counted) if it fails.

        Never raises on bad input: wrong key, truncation, garbage and tampering
        all end as ``None`` with a counter in :attr:`stats` incremented.
        """
        if len(packet) < SEAL_OVERHEAD:
            self.stats.too_short += 1
            return None
        if packet[0] != SEAL_VERSION:
            self.stats.bad_version += 1
            return None
        header = bytes(packet[:_HEADER_BYTES])
        nonce = bytes(packet[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES])
        box = bytes(packet[_HEADER_BYTES + _NONCE_BYTES :])
        aad = self._aad(header)
        hint = packet[1]
        # The hint is only a hint (1 byte, collisions happen, attackers forge
        # it): try the matching keys first, then every other one.
        order = sorted(range(len(self._keys)), key=lambda i: self._keys[i].hint != hint)
        for i in order:
            try:
                plaintext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    box, aad, nonce, self._keys[i].seal_key
                )
            except nacl.exceptions.CryptoError:
                continue
            self.stats.opened += 1
            if i != 0:
                self.stats.opened_with_old_key += 1
            return bytes(plaintext)
        self.stats.bad_auth += 1
        return None

    def _aad(self, header: bytes) -> bytes:
        return header + self.lattice.encode("utf-8")

    def __repr__(self) -> str:
        # Never print secrets; hints are enough to tell keys apart in logs.
        hints = ",".join(f"{k.hint:02x}" for k in self._keys)
        return f"Keyring(lattice={self.lattice!r}, keys=[{hints}])"


def load_secrets(text: str) -> list[bytes]:
    """Parse a secret file: one ``SL...`` per line, the first is primary.

    Blank lines and lines starting with ``#`` are ignored, so a file can say
    which secret is being rotated in.  Raises :class:`LatticeSecretError`
    naming the line at fault.
    """
    secrets: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            secrets.append(decode_secret(line))
        except LatticeSecretChecksumError as exc:
            raise LatticeSecretChecksumError(f"line {number}: {exc}") from None
        except LatticeSecretError as exc:
            raise LatticeSecretError(f"line {number}: {exc}") from None
    if not secrets:
        raise LatticeSecretError("no lattice secret found; create one with `meshhost lattice new`")
    return secrets


def read_secret_file(path: Path) -> list[bytes]:
    """The secrets in a lattice secret file, the first primary.

    Raises FileNotFoundError when there is no such file (the caller knows how
    one is made), ``KeyringError`` when it cannot be read and
    ``LatticeSecretError`` when it is damaged, both naming the file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyringError(f"cannot read lattice secret {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LatticeSecretError(
            f"{path} is not text: the file is damaged; copy the secret (SL…, one per "
            "line) again from another host of the lattice"
        ) from None
    try:
        return load_secrets(text)
    except LatticeSecretError as exc:
        raise type(exc)(f"{path}, {exc}") from None  # which file the line is in
