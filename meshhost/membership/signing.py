"""Signed alive messages: only a host can say it is alive.

An alive message carries an ed25519 signature by the host it is about, over
``ALIVE_SIGNING_CONTEXT || msgpack([id, host, port, incarnation, meta])``.
Suspect and dead messages are not signed (as in SWIM): they can only make a
host refute, and the refutation is a signed alive at a higher incarnation.

Verification costs ~50 us and the same alive message reaches a host many
times (gossip is redundant by design), so verified messages are remembered
in a bounded cache keyed by the exact message.  The cache is shared by every
core in the process (:data:`DEFAULT_VERIFIER`): harmless in production (one
core per process) and what lets the simulator run a thousand real cores, all
verifying, on one CPU.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.signing

from meshhost.errors import NkeyError
from meshhost.identity.nkeys import KeyPair, Prefix, decode_public
from meshhost.membership.messages import Alive, alive_signed_bytes

__all__ = ["DEFAULT_VERIFIER", "AliveVerifier", "sign_alive"]

Addr = tuple[str, int]


def sign_alive(identity: KeyPair, node: str, addr: Addr, incarnation: int, meta: bytes) -> Alive:
    """Make this host's signed alive message."""
    sig = identity.sign(alive_signed_bytes(node, addr, incarnation, meta))
    return Alive(node, addr, incarnation, meta, sig)


class AliveVerifier:
    """Checks alive signatures, remembering up to ``max_entries`` good ones."""

    def __init__(self, max_entries: int = 1 << 17, max_keys: int = 1 << 16) -> None:
        self.max_entries = max_entries
        self.max_keys = max_keys
        self._good: dict[Alive, None] = {}
        self._keys: dict[str, nacl.signing.VerifyKey | None] = {}
        self.verified = 0
        """Signatures actually checked (cache misses)."""

    def _key(self, node: str) -> nacl.signing.VerifyKey | None:
        try:
            return self._keys[node]
        except KeyError:
            pass
        try:
            prefix, raw = decode_public(node)
            key = nacl.signing.VerifyKey(raw) if prefix == Prefix.SERVER else None
        except (NkeyError, ValueError, TypeError):
            key = None
        if len(self._keys) >= self.max_keys:
            del self._keys[next(iter(self._keys))]
        self._keys[node] = key
        return key

    def verify(self, alive: Alive) -> bool:
        """True if ``alive`` is signed by the host ``alive.node`` names."""
        good = self._good
        if alive in good:
            return True
        key = self._key(alive.node)
        if key is None:
            return False
        self.verified += 1
        try:
            key.verify(
                alive_signed_bytes(alive.node, alive.addr, alive.incarnation, alive.meta),
                alive.signature,
            )
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        if len(good) >= self.max_entries:
            del good[next(iter(good))]
        good[alive] = None
        return True


DEFAULT_VERIFIER = AliveVerifier()
