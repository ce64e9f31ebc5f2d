"""Frames: the plaintext inside each Noise transport message, and the wire records.

On the wire every Noise message (handshake or transport) is one *record*:
``u16 big-endian length || message``.  After the handshake each message
decrypts to one *frame*: a fixed 8-byte header ``type u8 | flags u8 |
channel u16 | request_id u32`` (big-endian) followed by type-specific fields
and a body.  Frames are struct-packed, not msgpack: they are the hot path and
every field is a fixed-size integer (see proto/spec/transport.md, "Frames").

``encode_frame`` / ``decode_frame`` convert between bytes and the frozen
dataclasses below.  ``decode_frame`` raises only
:class:`~meshhost.errors.FrameError` (or its subclass
:class:`~meshhost.errors.UnsupportedFrame`) for any input.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from meshhost.errors import ErrorCode, FrameError, UnsupportedFrame
from meshhost.transport.noise import MAX_MESSAGE_BYTES, TAG_BYTES

__all__ = [
    "CHUNK_BYTES",
    "FLAG_MORE",
    "HEADER",
    "MAX_FRAME_BYTES",
    "MAX_REASON_BYTES",
    "RECORD_HEADER",
    "Cancel",
    "Close",
    "Credit",
    "Data",
    "Error",
    "Frame",
    "FrameType",
    "Ping",
    "Pong",
    "Ready",
    "Rekey",
    "Request",
    "Response",
    "decode_frame",
    "encode_frame",
]


class FrameType(enum.IntEnum):
    """Frame type numbers. Append-only: a number is never reused."""

    READY = 1
    REQUEST = 2
    RESPONSE = 3
    DATA = 4
    ERROR = 5
    CANCEL = 6
    CREDIT = 7
    PING = 8
    PONG = 9
    CLOSE = 10
    REKEY = 11


FLAG_MORE = 0x01
"""REQUEST/RESPONSE/DATA: more DATA frames of this body follow."""

RECORD_HEADER = struct.Struct("!H")
"""Length prefix of every Noise message on the wire."""
HEADER = struct.Struct("!BBHI")
"""type, flags, channel, request_id."""
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")

MAX_FRAME_BYTES = MAX_MESSAGE_BYTES - TAG_BYTES
"""Largest frame plaintext: one Noise message minus the Poly1305 tag."""
CHUNK_BYTES = MAX_FRAME_BYTES - HEADER.size - _U32.size - _U64.size
"""Body bytes per frame: fits the largest header (REQUEST with timeout and total)."""
MAX_REASON_BYTES = 1024
"""Longest UTF-8 message in ERROR and CLOSE frames: enough to act on, cheap to log."""

_FLAGGED = frozenset({FrameType.REQUEST, FrameType.RESPONSE, FrameType.DATA})
_WITH_ID = frozenset(
    {
        FrameType.REQUEST,
        FrameType.RESPONSE,
        FrameType.DATA,
        FrameType.ERROR,
        FrameType.CANCEL,
        FrameType.CREDIT,
    }
)


@dataclass(frozen=True, slots=True)
class Ready:
    """Responder's first transport frame: proves it holds the lattice secret."""


@dataclass(frozen=True, slots=True)
class Request:
    """Start of a request. ``total`` is the whole body's size when more DATA follows."""

    request_id: int
    channel: int
    timeout_ms: int
    body: bytes
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """Start of a reply. ``total`` is the whole body's size when more DATA follows."""

    request_id: int
    body: bytes
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Data:
    """A further chunk of a request or reply body; ``more`` unless it is the last."""

    request_id: int
    body: bytes
    more: bool


@dataclass(frozen=True, slots=True)
class Error:
    """The request failed; ``code`` from proto/SPEC.md, ``message`` for people."""

    request_id: int
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """The requester gave up on ``request_id``; the handler should stop."""

    request_id: int


@dataclass(frozen=True, slots=True)
class Credit:
    """The receiver of a body allows ``increment`` more bytes of it."""

    request_id: int
    increment: int


@dataclass(frozen=True, slots=True)
class Ping:
    opaque: int


@dataclass(frozen=True, slots=True)
class Pong:
    opaque: int


@dataclass(frozen=True, slots=True)
class Close:
    """The sender ends the session after this frame; ``code`` says why."""

    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Rekey:
    """The sender rekeys its sending cipher right after this frame."""


Frame = Ready | Request | Response | Data | Error | Cancel | Credit | Ping | Pong | Close | Rekey


def _reason(message: str) -> bytes:
    raw = message.encode("utf-8", "replace")
    if len(raw) > MAX_REASON_BYTES:
        raw = raw[:MAX_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return raw


def encode_frame(frame: Frame) -> bytes:
    """Encode one frame's plaintext. Long reason texts are cut to MAX_REASON_BYTES."""
    match frame:
        case Request(rid, channel, timeout_ms, body, total):
            if total is None:
                head = HEADER.pack(FrameType.REQUEST, 0, channel, rid) + _U32.pack(timeout_ms)
            else:
                head = (
                    HEADER.pack(FrameType.REQUEST, FLAG_MORE, channel, rid)
                    + _U32.pack(timeout_ms)
                    + _U64.pack(total)
                )
            return head + body
        case Response(rid, body, total):
            if total is None:
                return HEADER.pack(FrameType.RESPONSE, 0, 0, rid) + body
            return HEADER.pack(FrameType.RESPONSE, FLAG_MORE, 0, rid) + _U64.pack(total) + body
        case Data(rid, body, more):
            return HEADER.pack(FrameType.DATA, FLAG_MORE if more else 0, 0, rid) + body
        case Error(rid, code, message):
            return HEADER.pack(FrameType.ERROR, 0, 0, rid) + _U16.pack(code) + _reason(message)
        case Cancel(rid):
            return HEADER.pack(FrameType.CANCEL, 0, 0, rid)
        case Credit(rid, increment):
            return HEADER.pack(FrameType.CREDIT, 0, 0, rid) + _U32.pack(increment)
        case Ping(opaque):
            return HEADER.pack(FrameType.PING, 0, 0, 0) + _U64.pack(opaque)
        case Pong(opaque):
            return HEADER.pack(FrameType.PONG, 0, 0, 0) + _U64.pack(opaque)
        case Close(code, message):
            return HEADER.pack(FrameType.CLOSE, 0, 0, 0) + _U16.pack(code) + _reason(message)
        case Ready():
            return HEADER.pack(FrameType.READY, 0, 0, 0)
        case Rekey():
            return HEADER.pack(FrameType.REKEY, 0, 0, 0)
    raise TypeError(f"not a frame: {frame!r}")


def _code(raw: bytes, offset: int) -> ErrorCode:
    (value,) = _U16.unpack_from(raw, offset)
    try:
        return ErrorCode(value)
    except ValueError:
        raise FrameError(f"unknown error code {value}") from None


def _text(raw: bytes) -> str:
    if len(raw) > MAX_REASON_BYTES:
        raise FrameError(f"reason text of {len(raw)} bytes is over {MAX_REASON_BYTES}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("reason text is not UTF-8") from None


def _exact(data: bytes, size: int, kind: FrameType) -> None:
    if len(data) != size:
        raise FrameError(f"{kind.name} frame must be {size} bytes, got {len(data)}")


def decode_frame(data: bytes) -> Frame:
    """Decode one frame's plaintext; raise FrameError if it is malformed.

    Checks: minimum and exact sizes, known type, flags only where allowed,
    channel zero except on REQUEST, known error codes, UTF-8 reasons, sizes
    within limits.  Bodies are not copied beyond one slice.
    """
    size = len(data)
    if size < HEADER.size:
        raise FrameError(f"frame of {size} bytes is shorter than its {HEADER.size}-byte header")
    if size > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {size} bytes is over {MAX_FRAME_BYTES}")
    type_, flags, channel, rid = HEADER.unpack_from(data)
    try:
        kind = FrameType(type_)
    except ValueError:
        raise UnsupportedFrame(f"unknown frame type {type_}") from None
    if flags & ~FLAG_MORE or (flags and kind not in _FLAGGED):
        raise FrameError(f"{kind.name} frame has unknown flags {flags:#04x}")
    if channel and kind is not FrameType.REQUEST:
        raise FrameError(f"{kind.name} frame carries channel {channel}; only REQUEST may")
    if kind in _WITH_ID and rid == 0:
        raise FrameError(f"{kind.name} frame carries request id 0; ids start at 1")
    pos = HEADER.size
    more = bool(flags & FLAG_MORE)
    if kind is FrameType.REQUEST:
        need = pos + _U32.size + (_U64.size if more else 0)
        if size < need:
            raise FrameError(f"REQUEST frame of {size} bytes is truncated (needs {need})")
        (timeout_ms,) = _U32.unpack_from(data, pos)
        total = _U64.unpack_from(data, pos + _U32.size)[0] if more else None
        return Request(rid, channel, timeout_ms, data[need:], total)
    if kind is FrameType.RESPONSE:
        need = pos + (_U64.size if more else 0)
        if size < need:
            raise FrameError(f"RESPONSE frame of {size} bytes is truncated (needs {need})")
        total = _U64.unpack_from(data, pos)[0] if more else None
        return Response(rid, data[need:], total)
    if kind is FrameType.DATA:
        return Data(rid, data[pos:], more)
    if kind is FrameType.ERROR or kind is FrameType.CLOSE:
        if size < pos + _U16.size:
            raise FrameError(f"{kind.name} frame of {size} bytes is truncated")
        code = _code(data, pos)
        text = _text(data[pos + _U16.size :])
        if kind is FrameType.ERROR:
            return Error(rid, code, text)
        if rid:
            raise FrameError("CLOSE frame must carry request id 0")
        return Close(code, text)
    if kind is FrameType.CANCEL:
        _exact(data, pos, kind)
        return Cancel(rid)
    if kind is FrameType.CREDIT:
        _exact(data, pos + _U32.size, kind)
        (increment,) = _U32.unpack_from(data, pos)
        if increment == 0:
            raise FrameError("CREDIT frame grants zero bytes")
        return Credit(rid, increment)
    if rid:
        raise FrameError(f"{kind.name} frame must carry request id 0")
    if kind is FrameType.PING or kind is FrameType.PONG:
        _exact(data, pos + _U64.size, kind)
        (opaque,) = _U64.unpack_from(data, pos)
        return Ping(opaque) if kind is FrameType.PING else Pong(opaque)
    _exact(data, pos, kind)
    return Ready() if kind is FrameType.READY else Rekey()
