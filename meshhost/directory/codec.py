"""Directory wire messages and their bounded msgpack codec.

Three messages (``proto/spec/directory.md``), each a msgpack array whose
first element is the type number.  Type numbers are append-only.

* ``HOST_DELTA`` (1), piggybacked on SWIM packets: some entries of one host's
  own state, ``[1, owner, generation, since, upto, [[key, version, value], ...]]``.
* ``LWW_DELTA`` (2), piggybacked: lattice-wide entries,
  ``[2, [[ns, key, stamp, writer, value], ...]]``.
* ``FULL_STATE`` (3), the push-pull payload:
  ``[3, [[owner, generation, since, upto, entries], ...], [lww entries]]``.
* ``LWW_CHUNK`` (4), piggybacked: one piece of an LWW entry too large for one
  packet (a deployed manifest), ``[4, ns, key, stamp, writer, index, count,
  data]``; the pieces' ``data`` concatenated is the msgpack encoding of the value.
* ``SYNC_REQUEST`` (5), a digest-driven pull on transport channel 4:
  ``[5, [[owner, generation, watermark], ...]]``; the answer is a
  ``FULL_STATE`` holding only what the digest lacks.

A ``nil`` value is a tombstone (host entries and LWW entries alike), so
``None`` is never a stored value.  Values are plain msgpack data: nil, bool,
int, float, str, bin, arrays and maps with string keys, nested at most
``MAX_VALUE_DEPTH`` deep.

Decoders check the size before unpacking, pass msgpack its length limits,
check every field's type, ignore trailing array elements (newer minor
versions may add fields) and raise only
:class:`~meshhost.errors.DirectoryDecodeError`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import msgpack

from meshhost.directory.hlc import Stamp
from meshhost.errors import DecodeError, DirectoryDecodeError, DirectoryValueError
from meshhost.wire import Limits, Reader

__all__ = [
    "MAX_CHUNKS",
    "MAX_KEY_CHARS",
    "MAX_PIGGYBACK_BYTES",
    "MAX_STATE_BYTES",
    "MAX_VALUE_BYTES",
    "MAX_VALUE_DEPTH",
    "EntryAuth",
    "FullState",
    "HostDelta",
    "HostEntry",
    "HostSection",
    "LwwChunk",
    "LwwDelta",
    "LwwEntry",
    "Message",
    "MessageType",
    "SyncRequest",
    "Value",
    "check_value",
    "decode_any",
    "decode_piggyback",
    "decode_state",
    "decode_sync_request",
    "decode_value",
    "encode",
    "encode_value",
    "to_fields",
]

Value: TypeAlias = Any
"""A msgpack-able value: bool, int, float, str, bytes, list, dict[str, Value]."""

MAX_PIGGYBACK_BYTES = 65_535
"""A piggyback message rides in one UDP datagram; nothing legitimate is larger."""
MAX_STATE_BYTES = 16 * 1024 * 1024
"""Push-pull state, equal to the SWIM core's limit on delegate state
(``membership.messages.MAX_USER_STATE_BYTES``).  1000 hosts x 20 actors x
~300 B is ~6 MB; the bound stops a peer from making us allocate more."""
MAX_VALUE_BYTES = 256 * 1024
"""One encoded value (a deployed manifest is the largest): 256 KiB."""
MAX_VALUE_DEPTH = 16
"""Nesting of arrays/maps inside one value; manifests nest about 6 deep."""
MAX_KEY_CHARS = 512
"""Namespace and key strings: actor keys are 56 characters, link keys ~200."""
MAX_ARRAY_LEN = 1_000_000
"""Entries per array in one message (hosts x keys of a large lattice)."""
MAX_CHUNKS = 1024
"""Pieces of one chunked value: MAX_VALUE_BYTES in pieces of >= 256 bytes."""
MAX_INT = (1 << 64) - 1
MIN_INT = -(1 << 63)


class MessageType(enum.IntEnum):
    """Directory message types. Append-only: never reuse a number."""

    HOST_DELTA = 1
    LWW_DELTA = 2
    FULL_STATE = 3
    LWW_CHUNK = 4
    SYNC_REQUEST = 5


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One key of a host's own state; ``value`` None is a tombstone."""

    key: str
    version: int
    value: Value


@dataclass(frozen=True, slots=True)
class HostSection:
    """Entries of one owner's state.

    The sender promises that ``entries`` holds, for every key the owner
    changed at a version in ``(since, upto]``, that key's entry at that
    version or later.  It may hold extra, newer entries too.
    """

    owner: str
    generation: int
    since: int
    upto: int
    entries: tuple[HostEntry, ...]


EntryAuth: TypeAlias = tuple[str, bytes]
"""``(operator key, ed25519 signature)`` of a signed lattice-wide entry (operators.md)."""


@dataclass(frozen=True, slots=True)
class LwwEntry:
    """One lattice-wide entry; ``value`` None is a tombstone; the writer is ``stamp.node``.

    ``auth``: the operator's signature over the entry, in a lattice with admins
    (``proto/spec/operators.md``, "Signed entries"); None for an unsigned entry.
    It rides as an optional trailing element, so unsigned entries keep their bytes.
    """

    ns: str
    key: str
    stamp: Stamp
    value: Value
    auth: EntryAuth | None = None


@dataclass(frozen=True, slots=True)
class HostDelta:
    """Piggybacked change of one host's own state."""

    section: HostSection


@dataclass(frozen=True, slots=True)
class LwwDelta:
    """Piggybacked lattice-wide entries."""

    entries: tuple[LwwEntry, ...]


@dataclass(frozen=True, slots=True)
class FullState:
    """Everything a host knows: the push-pull payload."""

    hosts: tuple[HostSection, ...]
    entries: tuple[LwwEntry, ...]


@dataclass(frozen=True, slots=True)
class LwwChunk:
    """Piece ``index`` of ``count`` of the msgpack-encoded value of a large LWW entry
    (``auth``: the entry's signature, on every piece)."""

    ns: str
    key: str
    stamp: Stamp
    index: int
    count: int
    data: bytes
    auth: EntryAuth | None = None


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """A Scuttlebutt digest: ``(owner, generation, watermark)`` per host we know."""

    digest: tuple[tuple[str, int, int], ...]


Message: TypeAlias = HostDelta | LwwDelta | FullState | LwwChunk | SyncRequest


# --- values -----------------------------------------------------------------


def check_value(value: Value, *, what: str = "value", depth: int = 0) -> None:
    """Raise DirectoryValueError unless ``value`` is plain msgpack data.

    Allowed: None (only nested, never as a stored value), bool, int in the
    64-bit range, float, str, bytes, list/tuple, dict with str keys, nested
    at most MAX_VALUE_DEPTH deep.
    """
    if depth > MAX_VALUE_DEPTH:
        raise DirectoryValueError(f"{what} nests deeper than {MAX_VALUE_DEPTH} levels")
    if value is None or isinstance(value, bool | float | str | bytes):
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise DirectoryValueError(f"{what} holds an integer outside the 64-bit range")
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_value(item, what=what, depth=depth + 1)
        return
    if isinstance(value, Mapping):
        for k, item in value.items():
            if not isinstance(k, str):
                raise DirectoryValueError(f"{what} has a map key that is not a string: {k!r:.40}")
            check_value(item, what=what, depth=depth + 1)
        return
    raise DirectoryValueError(
        f"{what} of type {type(value).__name__} cannot be stored; "
        "use str, bytes, int, float, bool, list or dict"
    )


def encode_value(value: Value) -> bytes:
    """Canonical-enough msgpack bytes of a value (used for tie-breaks and size checks)."""
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


# --- encoding ---------------------------------------------------------------


def _section_fields(s: HostSection) -> list[Any]:
    return [
        s.owner,
        s.generation,
        s.since,
        s.upto,
        [[e.key, e.version, e.value] for e in s.entries],
    ]


def _lww_fields(e: LwwEntry) -> list[Any]:
    fields = [e.ns, e.key, e.stamp.packed(), e.stamp.node, e.value]
    if e.auth is not None:
        fields.append(list(e.auth))
    return fields


def to_fields(message: Message) -> list[Any]:
    """The positional msgpack array of a message."""
    if isinstance(message, HostDelta):
        return [MessageType.HOST_DELTA.value, *_section_fields(message.section)]
    if isinstance(message, LwwDelta):
        return [MessageType.LWW_DELTA.value, [_lww_fields(e) for e in message.entries]]
    if isinstance(message, FullState):
        return [
            MessageType.FULL_STATE.value,
            [_section_fields(s) for s in message.hosts],
            [_lww_fields(e) for e in message.entries],
        ]
    if isinstance(message, LwwChunk):
        fields = [
            MessageType.LWW_CHUNK.value,
            message.ns,
            message.key,
            message.stamp.packed(),
            message.stamp.node,
            message.index,
            message.count,
            message.data,
        ]
        if message.auth is not None:
            fields.append(list(message.auth))
        return fields
    if isinstance(message, SyncRequest):
        return [MessageType.SYNC_REQUEST.value, [list(d) for d in message.digest]]
    raise DirectoryValueError(f"not a directory message: {type(message).__name__}")


def encode(message: Message) -> bytes:
    """msgpack bytes of a directory message."""
    data: bytes = msgpack.packb(to_fields(message), use_bin_type=True)
    return data


# --- decoding ---------------------------------------------------------------


_wire = Reader(DirectoryDecodeError)


def _limits(max_bytes: int) -> Limits:
    return Limits(
        max_bytes=max_bytes,
        max_bin=MAX_VALUE_BYTES,
        max_str=MAX_VALUE_BYTES,
        max_array=MAX_ARRAY_LEN,
        max_map=MAX_ARRAY_LEN,
    )


_PIGGYBACK_LIMITS = _limits(MAX_PIGGYBACK_BYTES)
_STATE_LIMITS = _limits(MAX_STATE_BYTES)
# One value on its own (reassembled from chunks, or read back from the store):
# it came out of a state message, so that message's bounds hold.
_VALUE_LIMITS = _STATE_LIMITS


def _array(obj: Any, min_len: int, what: str) -> list[Any]:
    return _wire.array(obj, what, min_len)


def _str(obj: Any, what: str) -> str:
    return _wire.text(obj, what, MAX_KEY_CHARS)


def _uint(obj: Any, what: str) -> int:
    return _wire.uint(obj, what, MAX_INT)


def _value(obj: Any, what: str) -> Value:
    try:
        check_value(obj, what=what)
    except DirectoryValueError as exc:
        raise DirectoryDecodeError(str(exc)) from None
    return obj


def decode_value(data: bytes, what: str = "value") -> Value:
    """One msgpack-encoded value (see :func:`check_value`); raises DirectoryDecodeError."""
    return _value(_wire.unpack(data, _VALUE_LIMITS, what), what)


def _section(obj: Any) -> HostSection:
    f = _array(obj, 5, "host section")
    owner = _str(f[0], "host section owner")
    generation = _uint(f[1], "host section generation")
    since = _uint(f[2], "host section since")
    upto = _uint(f[3], "host section upto")
    if since > upto:
        raise DirectoryDecodeError("host section since is greater than upto")
    entries = []
    for raw in _array(f[4], 0, "host section entries"):
        e = _array(raw, 3, "host entry")
        entries.append(
            HostEntry(
                _str(e[0], "host entry key"),
                _uint(e[1], "host entry version"),
                _value(e[2], "host entry value"),
            )
        )
    return HostSection(owner, generation, since, upto, tuple(entries))


def _lww(obj: Any) -> LwwEntry:
    f = _array(obj, 5, "lww entry")
    ns = _str(f[0], "lww entry namespace")
    key = _str(f[1], "lww entry key")
    writer = _str(f[3], "lww entry writer")
    try:
        stamp = Stamp.unpack(f[2], writer)
    except DecodeError as exc:
        raise DirectoryDecodeError(str(exc)) from None
    auth = _auth(f[5], "lww entry auth") if len(f) > 5 else None
    return LwwEntry(ns, key, stamp, _value(f[4], "lww entry value"), auth)


def _auth(obj: Any, what: str) -> EntryAuth | None:
    """An entry's optional ``[operator key, signature]`` (nil: none)."""
    if obj is None:
        return None
    f = _array(obj, 2, what)
    return _str(f[0], f"{what} key"), _wire.binary(f[1], f"{what} signature", 64, 64)


def _message(fields: Any) -> Message:
    f = _array(fields, 1, "directory message")
    kind = f[0]
    if type(kind) is not int:
        raise DirectoryDecodeError("directory message type must be an integer")
    if kind == MessageType.HOST_DELTA:
        _array(f, 6, "HOST_DELTA")
        return HostDelta(_section(f[1:6]))
    if kind == MessageType.LWW_DELTA:
        _array(f, 2, "LWW_DELTA")
        return LwwDelta(tuple(_lww(e) for e in _array(f[1], 0, "LWW_DELTA entries")))
    if kind == MessageType.FULL_STATE:
        _array(f, 3, "FULL_STATE")
        hosts = tuple(_section(s) for s in _array(f[1], 0, "FULL_STATE hosts"))
        entries = tuple(_lww(e) for e in _array(f[2], 0, "FULL_STATE entries"))
        return FullState(hosts, entries)
    if kind == MessageType.LWW_CHUNK:
        _array(f, 8, "LWW_CHUNK")
        ns = _str(f[1], "chunk namespace")
        key = _str(f[2], "chunk key")
        writer = _str(f[4], "chunk writer")
        try:
            stamp = Stamp.unpack(f[3], writer)
        except DecodeError as exc:
            raise DirectoryDecodeError(str(exc)) from None
        index, count = _uint(f[5], "chunk index"), _uint(f[6], "chunk count")
        if not index < count <= MAX_CHUNKS:
            raise DirectoryDecodeError(
                f"chunk {index} of {count} is out of range (max {MAX_CHUNKS})"
            )
        data = _wire.binary(f[7], "chunk data", MAX_VALUE_BYTES)
        auth = _auth(f[8], "chunk auth") if len(f) > 8 else None
        return LwwChunk(ns, key, stamp, index, count, data, auth)
    if kind == MessageType.SYNC_REQUEST:
        _array(f, 2, "SYNC_REQUEST")
        digest = []
        for raw in _array(f[1], 0, "SYNC_REQUEST digest"):
            d = _array(raw, 3, "digest entry")
            digest.append(
                (
                    _str(d[0], "digest owner"),
                    _uint(d[1], "digest generation"),
                    _uint(d[2], "digest watermark"),
                )
            )
        return SyncRequest(tuple(digest))
    raise DirectoryDecodeError(f"unknown directory message type {kind}")


def decode_piggyback(data: bytes) -> HostDelta | LwwDelta | LwwChunk:
    """Decode a piggybacked message (HOST_DELTA, LWW_DELTA or LWW_CHUNK).

    Raises DirectoryDecodeError for anything else, including FULL_STATE.
    """
    message = _message(_wire.unpack(data, _PIGGYBACK_LIMITS, "piggyback message"))
    if isinstance(message, FullState | SyncRequest):
        raise DirectoryDecodeError(f"{type(message).__name__} is not valid piggybacked")
    return message


def decode_state(data: bytes) -> FullState:
    """Decode a push-pull payload; raises DirectoryDecodeError unless it is FULL_STATE."""
    message = _message(_wire.unpack(data, _STATE_LIMITS, "push-pull state"))
    if not isinstance(message, FullState):
        raise DirectoryDecodeError("push-pull state must be a FULL_STATE message")
    return message


def decode_sync_request(data: bytes) -> SyncRequest:
    """Decode a sync request; raises DirectoryDecodeError unless it is SYNC_REQUEST."""
    message = _message(_wire.unpack(data, _STATE_LIMITS, "sync request"))
    if not isinstance(message, SyncRequest):
        raise DirectoryDecodeError("a sync request must be a SYNC_REQUEST message")
    return message


def decode_any(data: bytes) -> Message:
    """Decode any directory message (for tools and golden vectors)."""
    return _message(_wire.unpack(data, _STATE_LIMITS, "directory message"))
