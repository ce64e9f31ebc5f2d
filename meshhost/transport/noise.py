"""Noise Protocol Framework core (revision 34), sans-IO.

Theory of operation: a :class:`HandshakeState` runs one handshake pattern
message by message (``write_message`` / ``read_message``); each token of the
pattern mixes public keys and Diffie-Hellman results into a
:class:`SymmetricState` (chaining key ``ck`` and handshake hash ``h``).  When
the last message is written or read, ``split()`` yields two
:class:`CipherState` objects, one per direction, that encrypt transport
messages with a 64-bit counter nonce.

Supported: DH ``25519`` (pynacl ``crypto_scalarmult``), cipher ``ChaChaPoly``
(IETF ChaCha20-Poly1305, nonce = 4 zero bytes + little-endian counter), hashes
``BLAKE2b`` and ``SHA256`` (hashlib; HMAC and HKDF as the specification
defines them).  Patterns ``NN``, ``XX`` and ``IK`` with any ``pskN``
modifiers (``NNpsk0``, ``XXpsk3``, ``IKpsk2``, ...).

Nothing here does I/O, reads a clock or draws randomness by itself: ephemeral
keys come from the ``random_bytes`` callable given to the constructor.

Errors: a peer's bad bytes (short message, failed authentication, low-order
public key) raise :class:`~meshhost.errors.NoiseError` (a
``RemoteProtocolError``); calling a method out of turn or with bad arguments
raises :class:`~meshhost.errors.NoiseUsageError` (a ``LocalProtocolError``).
After a failed ``read_message`` the handshake is dead: every later call
raises, as the specification requires (a failed handshake must be abandoned).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.bindings as _nb
import nacl.exceptions

from meshhost.errors import NoiseError, NoiseUsageError

__all__ = [
    "DHLEN",
    "MAX_MESSAGE_BYTES",
    "TAG_BYTES",
    "CipherState",
    "HandshakeState",
    "KeyPair25519",
    "SymmetricState",
    "parse_protocol_name",
]

MAX_MESSAGE_BYTES = 65535
"""Largest Noise message (handshake or transport), fixed by the specification."""
DHLEN = 32
"""Size of an X25519 public key and of a DH output."""
KEY_BYTES = 32
"""ChaCha20-Poly1305 key size."""
TAG_BYTES = 16
"""Poly1305 authentication tag appended to every ciphertext."""
MAX_NONCE = (1 << 64) - 1
"""Reserved by the specification for rekeying; never used to encrypt a message."""

_encrypt = _nb.crypto_aead_chacha20poly1305_ietf_encrypt
_decrypt = _nb.crypto_aead_chacha20poly1305_ietf_decrypt
_nonce = struct.Struct("<4xQ").pack
_ZERO_KEY = bytes(KEY_BYTES)
_REKEY_NONCE = _nonce(MAX_NONCE)


# --- primitives --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPair25519:
    """An X25519 key pair. ``repr`` hides the private key."""

    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair25519:
        if len(private) != DHLEN:
            raise NoiseUsageError(f"X25519 private key must be {DHLEN} bytes, got {len(private)}")
        return cls(bytes(private), _nb.crypto_scalarmult_base(bytes(private)))

    def __repr__(self) -> str:
        return f"KeyPair25519(public={self.public.hex()})"


def dh(keypair: KeyPair25519, public: bytes) -> bytes:
    """X25519 of our private key and a peer's public key.

    Raises NoiseError if the peer's key is of low order (the shared secret
    would be all zeros, which libsodium refuses).
    """
    try:
        return _nb.crypto_scalarmult(keypair.private, public)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, ValueError) as exc:
        raise NoiseError("peer sent an invalid X25519 public key (low order point)") from exc


class _Hash:
    """HASH, HMAC-HASH and HKDF of the specification (section 4.3)."""

    __slots__ = ("_ctor", "hashlen", "name")

    def __init__(self, name: str) -> None:
        self._ctor: Callable[..., Any]
        if name == "BLAKE2b":
            self._ctor = hashlib.blake2b
        elif name == "SHA256":
            self._ctor = hashlib.sha256
        else:
            raise NoiseUsageError(f"unsupported Noise hash {name!r}; use BLAKE2b or SHA256")
        self.name = name
        self.hashlen = self._ctor().digest_size

    def hash(self, data: bytes) -> bytes:
        digest: bytes = self._ctor(data).digest()
        return digest

    def hkdf(self, chaining_key: bytes, ikm: bytes, outputs: int) -> list[bytes]:
        temp_key = hmac.new(chaining_key, ikm, self._ctor).digest()
        out: list[bytes] = []
        prev = b""
        for i in range(1, outputs + 1):
            prev = hmac.new(temp_key, prev + bytes([i]), self._ctor).digest()
            out.append(prev)
        return out


# --- CipherState -------------------------------------------------------------


class CipherState:
    """A key and a 64-bit nonce counter (specification section 5.1).

    ``encrypt_with_ad`` / ``decrypt_with_ad`` pass data through unchanged while
    no key is set (only during a handshake).  ``decrypt_with_ad`` raises
    NoiseError on a failed tag and then leaves the nonce unchanged.
    """

    __slots__ = ("k", "n")

    def __init__(self, key: bytes | None = None) -> None:
        self.k: bytes | None = None
        self.n = 0
        if key is not None:
            self.initialize_key(key)

    def initialize_key(self, key: bytes | None) -> None:
        if key is not None and len(key) != KEY_BYTES:
            raise NoiseUsageError(f"cipher key must be {KEY_BYTES} bytes, got {len(key)}")
        self.k = key
        self.n = 0

    def has_key(self) -> bool:
        return self.k is not None

    def set_nonce(self, nonce: int) -> None:
        if not 0 <= nonce <= MAX_NONCE:
            raise NoiseUsageError("nonce must fit in 64 bits")
        self.n = nonce

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        k = self.k
        if k is None:
            return bytes(plaintext)
        n = self.n
        if n >= MAX_NONCE:
            # Reaching 2^64-1 messages needs centuries; refuse rather than reuse.
            raise NoiseUsageError("nonce space exhausted: the session must be replaced")
        self.n = n + 1
        return _encrypt(plaintext, ad, _nonce(n), k)

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        k = self.k
        if k is None:
            return bytes(ciphertext)
        n = self.n
        if n >= MAX_NONCE:
            raise NoiseError("peer exhausted the nonce space")
        try:
            plaintext = _decrypt(ciphertext, ad, _nonce(n), k)
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise NoiseError(
                "message failed authentication (wrong key, tampered, replayed or reordered)"
            ) from exc
        self.n = n + 1
        return plaintext

    def rekey(self) -> None:
        """Replace the key with ENCRYPT(k, 2^64-1, "", zeros) truncated to 32 bytes."""
        if self.k is None:
            raise NoiseUsageError("cannot rekey a cipher without a key")
        self.k = _encrypt(_ZERO_KEY, b"", _REKEY_NONCE, self.k)[:KEY_BYTES]


def _copy_cipher(cipher: CipherState) -> CipherState:
    twin = CipherState()
    twin.k, twin.n = cipher.k, cipher.n
    return twin


# --- SymmetricState ----------------------------------------------------------


class SymmetricState:
    """Chaining key, handshake hash and the handshake cipher (section 5.2)."""

    __slots__ = ("_hash", "cipher", "ck", "h")

    def __init__(self, protocol_name: bytes, hash_name: str) -> None:
        self._hash = _Hash(hash_name)
        hashlen = self._hash.hashlen
        if len(protocol_name) <= hashlen:
            self.h = protocol_name + bytes(hashlen - len(protocol_name))
        else:
            self.h = self._hash.hash(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    @property
    def hashlen(self) -> int:
        return self._hash.hashlen

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = self._hash.hkdf(self.ck, ikm, 2)
        self.cipher.initialize_key(temp_k[:KEY_BYTES])

    def mix_hash(self, data: bytes) -> None:
        self.h = self._hash.hash(self.h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, temp_k = self._hash.hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.cipher.initialize_key(temp_k[:KEY_BYTES])

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        temp_k1, temp_k2 = self._hash.hkdf(self.ck, b"", 2)
        return CipherState(temp_k1[:KEY_BYTES]), CipherState(temp_k2[:KEY_BYTES])


# --- patterns ----------------------------------------------------------------

# Pre-messages (initiator's, responder's) and message token lists, from the
# specification's section 7.  Messages alternate starting with the initiator.
_BASE_PATTERNS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...]]] = {
    "NN": ((), (), (("e",), ("e", "ee"))),
    "XX": ((), (), (("e",), ("e", "ee", "s", "es"), ("s", "se"))),
    "IK": ((), ("s",), (("e", "es", "s", "ss"), ("e", "ee", "se"))),
}


@dataclass(frozen=True, slots=True)
class Protocol:
    """A parsed protocol name such as ``Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b``."""

    name: str
    pattern: str
    hash_name: str
    initiator_pre: tuple[str, ...]
    responder_pre: tuple[str, ...]
    messages: tuple[tuple[str, ...], ...]
    psk_count: int


@functools.lru_cache(maxsize=32)
def parse_protocol_name(name: str) -> Protocol:
    """Parse and check a protocol name; raise NoiseUsageError if unsupported."""
    parts = name.split("_")
    if len(parts) != 5 or parts[0] != "Noise":
        raise NoiseUsageError(f"not a Noise protocol name: {name!r}")
    _, pattern, dh_name, cipher_name, hash_name = parts
    if dh_name != "25519" or cipher_name != "ChaChaPoly":
        raise NoiseUsageError(f"{name!r}: only 25519 and ChaChaPoly are supported")
    if hash_name not in ("BLAKE2b", "SHA256"):
        raise NoiseUsageError(f"{name!r}: only BLAKE2b and SHA256 are supported")
    base = pattern[:2]
    if base not in _BASE_PATTERNS:
        raise NoiseUsageError(f"{name!r}: pattern must be one of {', '.join(_BASE_PATTERNS)}")
    init_pre, resp_pre, messages = _BASE_PATTERNS[base]
    msgs = [list(m) for m in messages]
    psk_count = 0
    modifiers = pattern[2:]
    if modifiers:
        for modifier in modifiers.split("+"):
            if not modifier.startswith("psk") or not modifier[3:].isdigit():
                raise NoiseUsageError(f"{name!r}: unsupported modifier {modifier!r}")
            index = int(modifier[3:])
            if index > len(msgs):
                raise NoiseUsageError(f"{name!r}: {modifier} is past the last message")
            if index == 0:
                msgs[0].insert(0, "psk")
            else:
                msgs[index - 1].append("psk")
            psk_count += 1
    return Protocol(
        name=name,
        pattern=pattern,
        hash_name=hash_name,
        initiator_pre=init_pre,
        responder_pre=resp_pre,
        messages=tuple(tuple(m) for m in msgs),
        psk_count=psk_count,
    )


# --- HandshakeState ----------------------------------------------------------


class HandshakeState:
    """One handshake of one protocol, as initiator or responder (section 5.3).

    ``s``: our static private key (32 bytes, or a :class:`KeyPair25519`, which
    saves deriving its public half per handshake) if the pattern sends or pre-knows
    it; ``rs``: the peer's static public key if the pattern pre-knows it (IK's
    initiator); ``psks``: one 32-byte key per ``psk`` token, in order;
    ``random_bytes(32)`` yields ephemeral private keys.

    Call ``write_message`` when ``is_my_turn`` is true and ``read_message``
    otherwise, until ``complete``; then ``split()`` returns
    ``(send_cipher, receive_cipher)`` for this side.  ``handshake_hash`` and
    ``remote_static`` are valid once complete.
    """

    def __init__(
        self,
        protocol_name: str,
        *,
        initiator: bool,
        prologue: bytes = b"",
        s: bytes | KeyPair25519 | None = None,
        rs: bytes | None = None,
        psks: Sequence[bytes] = (),
        random_bytes: Callable[[int], bytes],
    ) -> None:
        proto = parse_protocol_name(protocol_name)
        self.protocol = proto
        self.initiator = initiator
        self._random_bytes = random_bytes
        self._psk_mode = proto.psk_count > 0
        if len(psks) != proto.psk_count:
            raise NoiseUsageError(
                f"{protocol_name} needs {proto.psk_count} pre-shared keys, got {len(psks)}"
            )
        for psk in psks:
            if len(psk) != 32:
                raise NoiseUsageError(f"a Noise pre-shared key is 32 bytes, got {len(psk)}")
        self._psks = list(psks)
        self.s = s if isinstance(s, KeyPair25519) or s is None else KeyPair25519.from_private(s)
        self.e: KeyPair25519 | None = None
        self.rs = bytes(rs) if rs is not None else None
        self.re: bytes | None = None
        self._sym = SymmetricState(protocol_name.encode("ascii"), proto.hash_name)
        self._sym.mix_hash(prologue)
        self._index = 0
        self._failed = False
        self._result: tuple[CipherState, CipherState] | None = None
        mine_pre, theirs_pre = (
            (proto.initiator_pre, proto.responder_pre)
            if initiator
            else (proto.responder_pre, proto.initiator_pre)
        )
        needs_s = "s" in mine_pre or any(
            "s" in m for i, m in enumerate(proto.messages) if (i % 2 == 0) == initiator
        )
        if needs_s and self.s is None:
            raise NoiseUsageError(f"{protocol_name} needs our static key (s)")
        if "s" in theirs_pre and self.rs is None:
            raise NoiseUsageError(f"{protocol_name} needs the peer's static public key (rs)")
        # Pre-messages are hashed initiator's first, then responder's; the
        # checks above guarantee the keys they name are present.
        for owner_pre, is_mine in (
            (proto.initiator_pre, initiator),
            (proto.responder_pre, not initiator),
        ):
            for _token in owner_pre:  # only "s" occurs in the supported patterns
                key = self.s.public if is_mine and self.s is not None else self.rs
                self._sym.mix_hash(key or b"")

    # -- state ---------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self._index >= len(self.protocol.messages)

    @property
    def is_my_turn(self) -> bool:
        return not self.complete and (self._index % 2 == 0) == self.initiator

    @property
    def message_index(self) -> int:
        """Number of handshake messages written or read so far."""
        return self._index

    @property
    def handshake_hash(self) -> bytes:
        if not self.complete:
            raise NoiseUsageError("the handshake hash is final only after the handshake")
        return self._sym.h

    @property
    def remote_static(self) -> bytes | None:
        return self.rs

    def split(self) -> tuple[CipherState, CipherState]:
        """Return ``(send, receive)`` ciphers for this side; only once complete."""
        if self._result is None:
            raise NoiseUsageError("split() before the handshake completed")
        c1, c2 = self._result
        return (c1, c2) if self.initiator else (c2, c1)

    def fork(self, *, psks: Sequence[bytes] | None = None) -> HandshakeState:
        """Return an independent copy of this handshake at its current message.

        ``psks`` replaces the pre-shared keys not used yet.  A responder that
        accepts several PSKs (a lattice secret being rotated) forks before the
        message carrying the ``psk`` token and reads it once per candidate:
        a failed read abandons only that copy.
        """
        if self._failed:
            raise NoiseUsageError("this handshake failed earlier and must be abandoned")
        remaining = list(self._psks if psks is None else psks)
        if len(remaining) != len(self._psks):
            raise NoiseUsageError(
                f"this handshake has {len(self._psks)} pre-shared keys left, got {len(remaining)}"
            )
        for psk in remaining:
            if len(psk) != 32:
                raise NoiseUsageError(f"a Noise pre-shared key is 32 bytes, got {len(psk)}")
        twin = copy.copy(self)
        sym = copy.copy(self._sym)
        sym.cipher = _copy_cipher(self._sym.cipher)
        twin._sym = sym
        twin._psks = [bytes(p) for p in remaining]
        if self._result is not None:
            twin._result = (_copy_cipher(self._result[0]), _copy_cipher(self._result[1]))
        return twin

    def _check(self, writing: bool) -> tuple[str, ...]:
        if self._failed:
            raise NoiseUsageError("this handshake failed earlier and must be abandoned")
        if self.complete:
            raise NoiseUsageError("the handshake is already complete")
        if self.is_my_turn != writing:
            verb = "write" if writing else "read"
            raise NoiseUsageError(f"not our turn to {verb} handshake message {self._index + 1}")
        return self.protocol.messages[self._index]

    def _dh_token(self, token: str) -> bytes:
        # es: initiator's e with responder's s; se: initiator's s with responder's e.
        local, remote = token[0], token[1]
        if not self.initiator:
            local, remote = remote, local
        mine = self.e if local == "e" else self.s
        theirs = self.re if remote == "e" else self.rs
        if mine is None or theirs is None:
            raise NoiseUsageError(f"token {token!r} needs a key that is missing")
        return dh(mine, theirs)

    def _finish_message(self) -> None:
        self._index += 1
        if self.complete:
            self._result = self._sym.split()

    # -- messages ------------------------------------------------------------

    def write_message(self, payload: bytes = b"") -> bytes:
        """Write the next handshake message carrying ``payload``; return its bytes."""
        tokens = self._check(writing=True)
        sym = self._sym
        out = bytearray()
        for token in tokens:
            if token == "e":
                self.e = KeyPair25519.from_private(self._random_bytes(DHLEN))
                out += self.e.public
                sym.mix_hash(self.e.public)
                if self._psk_mode:
                    sym.mix_key(self.e.public)
            elif token == "s":
                assert self.s is not None
                out += sym.encrypt_and_hash(self.s.public)
            elif token == "psk":
                sym.mix_key_and_hash(self._psks.pop(0))
            else:
                sym.mix_key(self._dh_token(token))
        out += sym.encrypt_and_hash(payload)
        if len(out) > MAX_MESSAGE_BYTES:
            raise NoiseUsageError(
                f"handshake message would be {len(out)} bytes, over {MAX_MESSAGE_BYTES}"
            )
        self._finish_message()
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        """Read the peer's next handshake message; return its payload.

        Raises NoiseError (and abandons the handshake) if it is too short,
        too long or fails authentication.
        """
        tokens = self._check(writing=False)
        try:
            return self._read(tokens, message)
        except NoiseError:
            self._failed = True
            raise

    def _read(self, tokens: tuple[str, ...], message: bytes) -> bytes:
        if len(message) > MAX_MESSAGE_BYTES:
            raise NoiseError(f"handshake message of {len(message)} bytes is over the limit")
        sym = self._sym
        view = memoryview(message)
        pos = 0
        for token in tokens:
            if token == "e":
                if len(view) - pos < DHLEN:
                    raise NoiseError(f"handshake message {self._index + 1} is truncated")
                self.re = bytes(view[pos : pos + DHLEN])
                pos += DHLEN
                sym.mix_hash(self.re)
                if self._psk_mode:
                    sym.mix_key(self.re)
            elif token == "s":
                size = DHLEN + TAG_BYTES if sym.cipher.has_key() else DHLEN
                if len(view) - pos < size:
                    raise NoiseError(f"handshake message {self._index + 1} is truncated")
                self.rs = sym.decrypt_and_hash(bytes(view[pos : pos + size]))
                pos += size
            elif token == "psk":
                sym.mix_key_and_hash(self._psks.pop(0))
            else:
                sym.mix_key(self._dh_token(token))
        rest = bytes(view[pos:])
        if sym.cipher.has_key() and len(rest) < TAG_BYTES:
            raise NoiseError(f"handshake message {self._index + 1} is truncated")
        payload = sym.decrypt_and_hash(rest)
        self._finish_message()
        return payload
