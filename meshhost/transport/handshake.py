"""Handshake payloads: who a host is, proven by its nkey, and what it speaks.

The second and third messages of ``Noise_XXpsk0`` carry a msgpack map:

``host``      str   the sender's host key, ``N...`` (56 characters)
``sig``       bin   64-byte ed25519 signature by ``host`` over
                    ``SIGNATURE_CONTEXT || noise static public key``
``versions``  array protocol major versions the sender speaks (ints)
``features``  array feature strings the sender supports
``port``      int   the sender's listening TCP port (0: it does not listen)
``window``    int   the sender's initial per-stream receive window in bytes

Unknown keys are ignored (a newer minor version may add some); missing or
mistyped known keys reject the handshake.  The signature binds the Noise
static key to the host identity, so a peer that knows the lattice secret still
cannot claim another host's id.  The domain-separation context keeps this
signature from being valid for any other purpose of the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from meshhost.errors import HandshakeRejected, IdentityError, NkeyError, UnsupportedVersion
from meshhost.identity.nkeys import KeyPair, Prefix, decode_public, verify
from meshhost.wire import Limits, Reader

__all__ = [
    "FEATURES",
    "HANDSHAKE_VERSION",
    "MAX_PAYLOAD_BYTES",
    "MAX_WINDOW_BYTES",
    "MIN_WINDOW_BYTES",
    "PROTOCOL_VERSION",
    "SIGNATURE_CONTEXT",
    "VERSIONS",
    "HelloPayload",
    "decode_hello",
    "encode_hello",
    "negotiate",
    "prologue",
    "sign_static",
]

PROTOCOL_VERSION = 3
"""Major protocol version, negotiated in the handshake payloads.  Version 2 moved
the PSK to message 1 (``XXpsk0``; version 1 was ``XXpsk3``, whose responder
sent its hello to anyone who knew the lattice name); version 3 carries
invocations as fixed binary headers instead of msgpack envelopes
(proto/spec/rpc.md).  A host speaks one version: a peer of another is refused
at the handshake (proto/spec/transport.md, "Versions")."""
VERSIONS: tuple[int, ...] = (PROTOCOL_VERSION,)
"""Versions this implementation speaks."""
HANDSHAKE_VERSION = 2
"""The version named in the Noise prologue: the handshake's own format, unchanged
since version 2.  It is not ``PROTOCOL_VERSION`` so that a peer of protocol 2
completes the handshake and is refused with a reason, instead of failing
message 1 like a stranger without the lattice secret."""
FEATURES: tuple[str, ...] = ("stream", "rekey")
"""Features this implementation supports (strings, append-only meaning)."""
SIGNATURE_CONTEXT = b"meshhost/1 transport noise static key\x00"
"""Prefix of the signed message: the signature is valid for nothing else."""
MAX_PAYLOAD_BYTES = 1024
"""Largest handshake payload: a key, a signature and two short lists fit easily."""
MIN_WINDOW_BYTES = 65536
"""Smallest stream window a peer may announce: one full chunk must fit."""
MAX_WINDOW_BYTES = 1 << 30
"""Largest stream window a peer may announce."""
_MAX_LIST = 16  # entries in versions/features: plenty for years of evolution
_MAX_FEATURE_CHARS = 32

_LIMITS = Limits(
    max_bytes=MAX_PAYLOAD_BYTES,
    max_bin=64,
    max_str=128,
    max_array=_MAX_LIST,
    max_map=16,
)  # no depth bound: a newer minor version may add a nested key we ignore
_wire = Reader(HandshakeRejected)


def prologue(lattice: str) -> bytes:
    """The Noise prologue: handshake format version and lattice name."""
    return b"meshhost/%d\x00" % HANDSHAKE_VERSION + lattice.encode("utf-8")


def sign_static(identity: KeyPair, static_public: bytes) -> bytes:
    """Sign our Noise static public key with our host key."""
    return identity.sign(SIGNATURE_CONTEXT + static_public)


@dataclass(frozen=True, slots=True)
class HelloPayload:
    host: str
    sig: bytes
    versions: tuple[int, ...]
    features: tuple[str, ...]
    port: int
    window: int


def encode_hello(hello: HelloPayload) -> bytes:
    """Encode a handshake payload as a msgpack map with the keys in table order."""
    packed: bytes = msgpack.packb(
        {
            "host": hello.host,
            "sig": hello.sig,
            "versions": list(hello.versions),
            "features": list(hello.features),
            "port": hello.port,
            "window": hello.window,
        },
        use_bin_type=True,
    )
    return packed


def _version(value: Any) -> int:
    return _wire.integer(value, "version", 1, (1 << 16) - 1)


def _feature(value: Any) -> str:
    return _wire.text(value, "feature", _MAX_FEATURE_CHARS)


def decode_hello(data: bytes, static_public: bytes) -> HelloPayload:
    """Decode and verify a peer's handshake payload.

    ``static_public`` is the Noise static key the peer proved it holds; the
    signature must cover exactly that key.  Raises HandshakeRejected (an
    unauthenticated or malformed payload) and nothing else.
    """
    w = "handshake payload"
    obj = _wire.mapping(_wire.unpack(data, _LIMITS, w), w)
    host = _wire.text(_wire.required(obj, "host", w), "handshake host", 128)
    sig = _wire.binary(_wire.required(obj, "sig", w), "handshake sig", 64)
    versions = _wire.list_of(_wire.required(obj, "versions", w), "handshake versions", _version)
    features = _wire.list_of(_wire.required(obj, "features", w), "handshake features", _feature)
    port = _wire.uint(_wire.required(obj, "port", w), "handshake port", 65535)
    window = _wire.integer(
        _wire.required(obj, "window", w), "handshake window", MIN_WINDOW_BYTES, MAX_WINDOW_BYTES
    )
    try:
        decode_public(host, Prefix.SERVER)
    except NkeyError as exc:
        raise HandshakeRejected(f"peer's host id is not a host key: {exc}") from None
    try:
        verify(host, SIGNATURE_CONTEXT + static_public, sig)
    except (IdentityError, NkeyError):
        raise HandshakeRejected(
            f"peer claims to be {host} but its signature over the Noise static key does not "
            "verify: it does not hold that host's key"
        ) from None
    return HelloPayload(host, bytes(sig), tuple(versions), tuple(features), port, window)


def negotiate(peer: HelloPayload, ours: tuple[int, ...] = VERSIONS) -> tuple[int, tuple[str, ...]]:
    """Return (highest common version, common features); raise UnsupportedVersion
    with a message an operator can act on."""
    common = set(ours) & set(peer.versions)
    if not common:
        theirs = ", ".join(str(v) for v in peer.versions) or "none"
        older = max(peer.versions, default=0) < max(ours)
        raise UnsupportedVersion(
            f"host {peer.host} speaks meshhost protocol {theirs}, this host speaks "
            f"{', '.join(str(v) for v in ours)}: "
            + (
                "upgrade meshhost on that host (every host of a lattice runs a release "
                "of the same protocol version)"
                if older
                else "upgrade meshhost on this host (every host of a lattice runs a "
                "release of the same protocol version)"
            )
        )
    features = tuple(f for f in FEATURES if f in peer.features)
    return max(common), features
