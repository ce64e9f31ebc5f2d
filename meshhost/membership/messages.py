"""Wire messages of the membership protocol and their msgpack codec.

Every message is a msgpack array whose first element is its type number
(``proto/spec/membership.md``).  A UDP datagram carries one message or one
``COMPOUND`` message holding several, so a ping and the broadcasts riding on
it travel together.  Push-pull state travels over TCP and has its own, larger
limits.

Decoders take untrusted bytes and raise only :class:`~meshhost.errors.DecodeError`
(``MembershipDecodeError``); every size is bounded before allocation by the
msgpack unpacker limits.  Trailing array elements are ignored (a newer minor
version may add fields); fewer elements than the table needs is an error.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from meshhost.errors import MembershipDecodeError
from meshhost.membership.state import MemberState
from meshhost.wire import Limits, Reader

__all__ = [
    "ALIVE_SIGNING_CONTEXT",
    "COMPOUND_HEADER_BYTES",
    "MAX_COMPOUND_PARTS",
    "MAX_HOST_CHARS",
    "MAX_ID_CHARS",
    "MAX_META_BYTES",
    "MAX_PUSH_PULL_BYTES",
    "MAX_PUSH_PULL_MEMBERS",
    "MAX_USER_STATE_BYTES",
    "SEALING_OVERHEAD_BYTES",
    "Ack",
    "Alive",
    "Dead",
    "IndirectPing",
    "Message",
    "MessageType",
    "Nack",
    "Ping",
    "PushPull",
    "PushPullEntry",
    "Suspect",
    "User",
    "alive_signed_bytes",
    "decode_packet",
    "decode_push_pull",
    "encode",
    "encode_compound",
    "encode_push_pull",
    "encode_push_pull_entry",
]


class MessageType(enum.IntEnum):
    """Message type numbers. Append-only: a number is never reused."""

    PING = 0
    INDIRECT_PING = 1
    ACK = 2
    NACK = 3
    SUSPECT = 4
    ALIVE = 5
    DEAD = 6
    USER = 7
    COMPOUND = 8
    PUSH_PULL = 9


MAX_META_BYTES = 512
"""Host metadata limit (memberlist's MetaMaxSize): a signed alive must fit a datagram."""
MAX_ID_CHARS = 64
"""Node ids are 56-character nkeys; anything longer is garbage."""
MAX_HOST_CHARS = 253
"""Longest DNS name; IP literals are far shorter."""
MAX_COMPOUND_PARTS = 255
"""Messages in one compound packet (memberlist's limit; bounds decode work)."""
COMPOUND_HEADER_BYTES = 5
"""fixarray(2) + type + array16 header of a compound message."""
SEALING_OVERHEAD_BYTES = 64
"""Reserved for the UDP driver's sealing (version, key hint, nonce, tag: 42 bytes)."""
MAX_PUSH_PULL_MEMBERS = 100_000
"""Members in one push-pull state: far above any lattice, bounds a hostile peer."""
MAX_USER_STATE_BYTES = 16 * 1024 * 1024
"""The delegate's (directory's) full state in one push-pull."""
MAX_PUSH_PULL_BYTES = 20 * 1024 * 1024
"""A whole push-pull payload (memberlist's maxPushStateBytes is 20 MB)."""
MAX_U32 = (1 << 32) - 1
MAX_U64 = (1 << 64) - 1
SIGNATURE_BYTES = 64

ALIVE_SIGNING_CONTEXT = b"meshhost/1 alive\x00"
"""Prefix of the bytes an alive signature covers, so it can sign nothing else."""

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Ping:
    """Direct probe. ``target`` is the id the sender expects to answer ("" = anyone)."""

    seq: int
    target: str
    source: str


@dataclass(frozen=True, slots=True)
class IndirectPing:
    """Ask the receiver to probe ``target`` at ``target_addr`` for ``requester``."""

    seq: int
    target: str
    target_addr: Addr
    requester: str
    want_nack: bool


@dataclass(frozen=True, slots=True)
class Ack:
    """Answer to a ping (or relayed answer to an indirect ping)."""

    seq: int


@dataclass(frozen=True, slots=True)
class Nack:
    """Lifeguard: the relay tried and got no answer; proves the relay is healthy."""

    seq: int


@dataclass(frozen=True, slots=True)
class Suspect:
    """``sender`` suspects ``node`` at ``incarnation``."""

    node: str
    incarnation: int
    sender: str


@dataclass(frozen=True, slots=True)
class Alive:
    """``node`` is alive at ``incarnation``; signed by the node itself."""

    node: str
    addr: Addr
    incarnation: int
    meta: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Dead:
    """``sender`` declares ``node`` dead; ``sender == node`` is a leave intent."""

    node: str
    incarnation: int
    sender: str


@dataclass(frozen=True, slots=True)
class User:
    """A delegate (directory) payload riding on gossip."""

    sender: str
    payload: bytes


Message = Ping | IndirectPing | Ack | Nack | Suspect | Alive | Dead | User


@dataclass(frozen=True, slots=True)
class PushPullEntry:
    """One member in a push-pull state: its latest signed alive and our verdict."""

    alive: Alive
    state: MemberState
    incarnation: int


@dataclass(frozen=True, slots=True)
class PushPull:
    """Full state exchanged over TCP (anti-entropy, join, reconnect)."""

    sender: str
    join: bool
    entries: tuple[PushPullEntry, ...]
    user_state: bytes


# -- encoding -------------------------------------------------------------

_packb: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack


def alive_signed_bytes(node: str, addr: Addr, incarnation: int, meta: bytes) -> bytes:
    """The canonical bytes an alive signature covers."""
    return ALIVE_SIGNING_CONTEXT + _packb([node, addr[0], addr[1], incarnation, meta])


# Plain ints: enum member lookups cost more than the rest of encoding.
_T_PING, _T_INDIRECT_PING, _T_ACK, _T_NACK, _T_SUSPECT, _T_ALIVE, _T_DEAD, _T_USER = range(8)


def _fields(msg: Message) -> list[Any]:
    t = type(msg)
    if t is Ping:
        return [_T_PING, msg.seq, msg.target, msg.source]  # type: ignore[union-attr]
    if t is Ack:
        return [_T_ACK, msg.seq]  # type: ignore[union-attr]
    if t is Alive:
        a: Alive = msg  # type: ignore[assignment]
        return [_T_ALIVE, a.node, a.addr[0], a.addr[1], a.incarnation, a.meta, a.signature]
    if t is Suspect:
        return [_T_SUSPECT, msg.node, msg.incarnation, msg.sender]  # type: ignore[union-attr]
    if t is Dead:
        return [_T_DEAD, msg.node, msg.incarnation, msg.sender]  # type: ignore[union-attr]
    if t is IndirectPing:
        i: IndirectPing = msg  # type: ignore[assignment]
        return [
            _T_INDIRECT_PING,
            i.seq,
            i.target,
            i.target_addr[0],
            i.target_addr[1],
            i.requester,
            i.want_nack,
        ]
    if t is Nack:
        return [_T_NACK, msg.seq]  # type: ignore[union-attr]
    if t is User:
        return [_T_USER, msg.sender, msg.payload]  # type: ignore[union-attr]
    raise TypeError(f"not a membership message: {msg!r}")


def encode(msg: Message) -> bytes:
    """Encode one message."""
    return _packb(_fields(msg))


def encode_compound(parts: list[bytes]) -> bytes:
    """Wrap already-encoded messages in one COMPOUND message (no re-encoding).

    One part is returned as is: a compound of one is pure overhead.
    """
    n = len(parts)
    if n == 1:
        return parts[0]
    if not 0 < n <= MAX_COMPOUND_PARTS:
        raise ValueError(f"a compound packet holds 1..{MAX_COMPOUND_PARTS} messages, got {n}")
    header = bytes((0x92, MessageType.COMPOUND, 0xDC)) + n.to_bytes(2, "big")
    return header + b"".join(parts)


def encode_push_pull_entry(entry: PushPullEntry) -> bytes:
    """Encode one push-pull member entry (cached by the core per member)."""
    a = entry.alive
    return _packb(
        [
            a.node,
            a.addr[0],
            a.addr[1],
            a.incarnation,
            a.meta,
            a.signature,
            int(entry.state),
            entry.incarnation,
        ]
    )


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def encode_push_pull(sender: str, join: bool, entries: list[bytes], user_state: bytes) -> bytes:
    """Encode a push-pull state from already-encoded entries."""
    return (
        b"\x95"
        + _packb(MessageType.PUSH_PULL)
        + _packb(sender)
        + _packb(join)
        + _array_header(len(entries))
        + b"".join(entries)
        + _packb(user_state)
    )


# -- decoding -------------------------------------------------------------

_wire = Reader(MembershipDecodeError)
# Bound once: every datagram goes through these (an attribute lookup per field saved).
_uint, _text, _bin, _bool = _wire.uint, _wire.text, _wire.binary, _wire.boolean


_PACKET_LIMITS: dict[int, Limits] = {}
"""Per packet size limit (one or two values per process: the profile's)."""


def _packet_limits(max_bytes: int) -> Limits:
    # No maps anywhere in a membership message; a packet is at most max_bytes.
    return _PACKET_LIMITS.setdefault(
        max_bytes,
        Limits(
            max_bytes=max_bytes,
            max_bin=max_bytes,
            max_str=max_bytes,
            max_array=MAX_COMPOUND_PARTS,
            max_map=0,
        ),
    )


_PUSH_PULL_LIMITS = Limits(
    max_bytes=MAX_PUSH_PULL_BYTES,
    max_bin=MAX_USER_STATE_BYTES,
    max_str=MAX_HOST_CHARS,
    max_array=MAX_PUSH_PULL_MEMBERS,
    max_map=0,
)


def _node(value: Any, what: str) -> str:
    if type(value) is str and 0 < len(value) <= MAX_ID_CHARS:  # the common case, inline
        return value
    return _text(value, what, MAX_ID_CHARS, 1)


def _addr(host: Any, port: Any, what: str) -> Addr:
    return (
        _text(host, f"{what} host", MAX_HOST_CHARS),
        _uint(port, f"{what} port", 65535),
    )


def _need(fields: list[Any], n: int, name: str) -> None:
    if len(fields) < n:
        raise MembershipDecodeError(f"{name} message needs {n} fields, got {len(fields)}")


def _alive(f: list[Any], offset: int = 1) -> Alive:
    node = _node(f[offset], "alive node")
    addr = _addr(f[offset + 1], f[offset + 2], "alive")
    inc = _uint(f[offset + 3], "alive incarnation", MAX_U64)
    meta = _bin(f[offset + 4], "alive meta", MAX_META_BYTES)
    sig = _bin(f[offset + 5], "alive signature", SIGNATURE_BYTES, SIGNATURE_BYTES)
    return Alive(node, addr, inc, meta, sig)


def _message(f: Any, max_user: int) -> Message | None:
    """One decoded array -> message; None for an unknown (newer) type."""
    if type(f) is not list or not f:
        raise MembershipDecodeError("a membership message must be a non-empty array")
    kind = f[0]
    if type(kind) is not int:
        raise MembershipDecodeError("message type must be an integer")
    if kind == MessageType.PING:
        _need(f, 4, "ping")
        return Ping(
            _uint(f[1], "ping seq", MAX_U32),
            _text(f[2], "ping target", MAX_ID_CHARS),
            _node(f[3], "ping source"),
        )
    if kind == MessageType.ACK:
        _need(f, 2, "ack")
        return Ack(_uint(f[1], "ack seq", MAX_U32))
    if kind == MessageType.ALIVE:
        _need(f, 7, "alive")
        return _alive(f)
    if kind == MessageType.SUSPECT:
        _need(f, 4, "suspect")
        return Suspect(
            _node(f[1], "suspect node"),
            _uint(f[2], "suspect incarnation", MAX_U64),
            _node(f[3], "suspect sender"),
        )
    if kind == MessageType.DEAD:
        _need(f, 4, "dead")
        return Dead(
            _node(f[1], "dead node"),
            _uint(f[2], "dead incarnation", MAX_U64),
            _node(f[3], "dead sender"),
        )
    if kind == MessageType.INDIRECT_PING:
        _need(f, 7, "indirect ping")
        return IndirectPing(
            _uint(f[1], "indirect ping seq", MAX_U32),
            _node(f[2], "indirect ping target"),
            _addr(f[3], f[4], "indirect ping target"),
            _node(f[5], "indirect ping requester"),
            _bool(f[6], "indirect ping want_nack"),
        )
    if kind == MessageType.NACK:
        _need(f, 2, "nack")
        return Nack(_uint(f[1], "nack seq", MAX_U32))
    if kind == MessageType.USER:
        _need(f, 3, "user")
        return User(_node(f[1], "user sender"), _bin(f[2], "user payload", max_user))
    if kind in (MessageType.COMPOUND, MessageType.PUSH_PULL):
        raise MembershipDecodeError(f"message type {kind} cannot appear here")
    return None


def decode_packet(data: bytes, max_bytes: int) -> tuple[list[Message], int]:
    """Decode one datagram's plaintext into its messages.

    Returns ``(messages, unknown)``: ``unknown`` counts parts of a newer,
    unknown type that were skipped.  Raises ``MembershipDecodeError`` for
    anything malformed or larger than ``max_bytes``; nothing partial is
    returned.
    """
    limits = _PACKET_LIMITS.get(max_bytes) or _packet_limits(max_bytes)
    top = _wire.unpack(data, limits, "membership packet")
    if type(top) is list and top and top[0] == MessageType.COMPOUND and type(top[0]) is int:
        _need(top, 2, "compound")
        parts = _wire.array(top[1], "compound parts")
    else:
        parts = [top]
    out: list[Message] = []
    unknown = 0
    for part in parts:
        msg = _message(part, max_bytes)
        if msg is None:
            unknown += 1
        else:
            out.append(msg)
    return out, unknown


_STATES = tuple(MemberState)


def _push_pull_entry(e: Any) -> PushPullEntry:
    e = _wire.array(e, "push-pull member", 8)
    alive = _alive(e, 0)
    state_raw = _uint(e[6], "push-pull member state", len(_STATES) - 1)
    inc = _uint(e[7], "push-pull member incarnation", MAX_U64)
    return PushPullEntry(alive, _STATES[state_raw], inc)


def decode_push_pull(data: bytes) -> PushPull:
    """Decode a push-pull state; raises ``MembershipDecodeError`` if malformed."""
    f = _wire.unpack(data, _PUSH_PULL_LIMITS, "push-pull state")
    if type(f) is not list or not f or f[0] != MessageType.PUSH_PULL or type(f[0]) is not int:
        raise MembershipDecodeError("not a push-pull message")
    _need(f, 5, "push-pull")
    sender = _node(f[1], "push-pull sender")
    join = _bool(f[2], "push-pull join flag")
    entries = _wire.list_of(f[3], "push-pull members", _push_pull_entry)
    user_state = _bin(f[4], "push-pull user state", MAX_USER_STATE_BYTES)
    return PushPull(sender, join, tuple(entries), user_state)
