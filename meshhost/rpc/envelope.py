"""Invocation envelopes: what one host asks another to run, and the answer.

Both travel on transport channel 1 (``CHANNEL``) as the request and reply
bodies of one transport request; the transport streams bodies of any size,
so a payload here is not limited by the Noise message size.  Layout and
limits are specified in proto/spec/rpc.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import msgpack

from meshhost.errors import DecodeError, ErrorCode

__all__ = [
    "CHANNEL",
    "MAX_HOPS",
    "Invocation",
    "InvocationResult",
    "decode_invocation",
    "decode_result",
    "encode_invocation",
    "encode_result",
]

CHANNEL = 1
"""Transport channel that carries invocations."""

MSG_INVOKE = 1
MSG_RESULT = 2
# Append-only: message type numbers on the wire.

MAX_HOPS = 8
"""An actor may call an actor that calls an actor...; a chain longer than this is a loop."""
MAX_NAME_CHARS = 512
"""Host ids are 56 characters; call aliases and operation names are short."""
MAX_ERROR_CHARS = 4096
"""Error messages are for people; longer ones are cut."""
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
"""Largest invocation payload a host accepts (the transport streams it)."""
ID_BYTES = 16
"""Invocation ids and trace ids are 128-bit values (see proto/spec/rpc.md)."""
SPAN_ID_BYTES = 8
"""W3C span ids are 64-bit: the caller's span, parent of the target's (proto/spec/rpc.md)."""

_UNPACK_LIMITS: dict[str, Any] = {
    "max_bin_len": MAX_PAYLOAD_BYTES,
    "max_str_len": MAX_ERROR_CHARS * 4,
    "max_array_len": 16,
    "max_map_len": 0,
    "max_ext_len": 0,
}
_unpackb = partial(msgpack.unpackb, raw=False, strict_map_key=True, **_UNPACK_LIMITS)
_packb = partial(msgpack.packb, use_bin_type=True)


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call of ``operation`` on actor ``target`` (an ``M…`` key or a call alias)."""

    id: bytes
    origin_host: str
    origin_actor: str
    """The calling actor's ``M…`` key, or "" for the CLI, HTTP and other hosts' control."""
    target: str
    operation: str
    payload: bytes
    deadline_unix_ms: int
    trace_id: bytes
    hops: int = 0
    parent_span: bytes = b""
    """The caller's span id (W3C ``parent-id``); b"" from hosts that predate tracing."""
    trace_flags: int = 0
    """W3C ``trace-flags`` (bit 0: sampled), passed on unchanged."""


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """The answer: ``code`` OK with ``payload``, or an error code with a message."""

    id: bytes
    code: ErrorCode
    payload: bytes = b""
    error: str = ""
    host: str = ""
    """The host that ran (or refused) the call."""


def _pack(fields: list[Any]) -> bytes:
    data: bytes = _packb(fields)
    return data


def encode_invocation(inv: Invocation) -> bytes:
    return _pack(
        [
            MSG_INVOKE,
            inv.id,
            inv.origin_host,
            inv.origin_actor,
            inv.target,
            inv.operation,
            inv.payload,
            inv.deadline_unix_ms,
            inv.trace_id,
            inv.hops,
            inv.parent_span,
            inv.trace_flags,
        ]
    )


def encode_result(res: InvocationResult) -> bytes:
    return _pack(
        [MSG_RESULT, res.id, int(res.code), res.payload, res.error[:MAX_ERROR_CHARS], res.host]
    )


def _unpack(data: bytes, msg_type: int, min_fields: int, what: str) -> list[Any]:
    if len(data) > MAX_PAYLOAD_BYTES + 64 * 1024:
        raise DecodeError(f"{what} of {len(data)} bytes exceeds the {MAX_PAYLOAD_BYTES} limit")
    try:
        value = _unpackb(data)
    except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError) as exc:
        raise DecodeError(f"{what} is not valid msgpack: {exc}") from None
    if not isinstance(value, list) or not value:
        raise DecodeError(f"{what} must be a msgpack array")
    if value[0] != msg_type:
        raise DecodeError(f"{what}: expected message type {msg_type}, got {value[0]!r}")
    if len(value) < min_fields:
        raise DecodeError(f"{what} has {len(value)} fields, needs at least {min_fields}")
    return value


def _field(value: Any, kind: type, name: str, what: str, limit: int | None = None) -> Any:
    """Check that ``value`` is exactly of ``kind`` (and at most ``limit`` long)."""
    if type(value) is not kind:
        raise DecodeError(f"{what}.{name} must be {kind.__name__}, got {type(value).__name__}")
    if limit is not None and isinstance(value, str | bytes) and len(value) > limit:
        raise DecodeError(f"{what}.{name} is longer than {limit}")
    return value


_INVOCATION_TYPES = (int, bytes, str, str, str, str, bytes, int, bytes, int, bytes, int)


def decode_invocation(data: bytes) -> Invocation:
    """Decode an invocation; raises DecodeError naming the bad field.

    Fields 10 (``parent_span``) and 11 (``trace_flags``) came with tracing:
    an envelope of 10 fields from an older host is read with b"" and 0.
    """
    v = _unpack(data, MSG_INVOKE, 10, "invocation")
    # Fast path (every well-formed invocation): one pass of exact type checks.
    if (
        len(v) == 12
        and all(type(f) is t for f, t in zip(v, _INVOCATION_TYPES, strict=True))
        and len(v[1]) <= ID_BYTES
        and len(v[8]) <= ID_BYTES
        and 0 <= v[9] <= MAX_HOPS
        and v[7] >= 0
        and max(len(v[2]), len(v[3]), len(v[4]), len(v[5])) <= MAX_NAME_CHARS
        and len(v[10]) <= SPAN_ID_BYTES
        and 0 <= v[11] <= 0xFF
    ):
        return Invocation(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11])
    w = "invocation"
    parent_span = b"" if len(v) < 11 else _field(v[10], bytes, "parent_span", w, SPAN_ID_BYTES)
    flags = 0 if len(v) < 12 else _field(v[11], int, "trace_flags", w)
    if not 0 <= flags <= 0xFF:
        raise DecodeError(f"invocation.trace_flags {flags} outside 0..255")
    inv_id = _field(v[1], bytes, "id", w, ID_BYTES)
    trace = _field(v[8], bytes, "trace_id", w, ID_BYTES)
    hops = _field(v[9], int, "hops", w)
    deadline = _field(v[7], int, "deadline_unix_ms", w)
    if not 0 <= hops <= MAX_HOPS:
        raise DecodeError(f"invocation.hops {hops} outside 0..{MAX_HOPS}")
    if deadline < 0:
        raise DecodeError("invocation.deadline_unix_ms must not be negative")
    return Invocation(
        id=inv_id,
        origin_host=_field(v[2], str, "origin_host", w, MAX_NAME_CHARS),
        origin_actor=_field(v[3], str, "origin_actor", w, MAX_NAME_CHARS),
        target=_field(v[4], str, "target", w, MAX_NAME_CHARS),
        operation=_field(v[5], str, "operation", w, MAX_NAME_CHARS),
        payload=_field(v[6], bytes, "payload", w),
        deadline_unix_ms=deadline,
        trace_id=trace,
        hops=hops,
        parent_span=parent_span,
        trace_flags=flags,
    )


def decode_result(data: bytes) -> InvocationResult:
    """Decode an invocation result; unknown error codes become PROTOCOL."""
    v = _unpack(data, MSG_RESULT, 6, "invocation result")
    if (  # fast path: a well-formed successful call
        type(v[2]) is int
        and v[2] == 0
        and type(v[1]) is bytes
        and type(v[3]) is bytes
        and type(v[4]) is str
        and type(v[5]) is str
        and len(v[1]) <= ID_BYTES
        and len(v[4]) <= MAX_ERROR_CHARS
        and len(v[5]) <= MAX_NAME_CHARS
    ):
        return InvocationResult(v[1], ErrorCode.OK, v[3], v[4], v[5])
    w = "result"
    raw_code = _field(v[2], int, "code", w)
    try:
        code = ErrorCode(raw_code)
    except ValueError:
        raise DecodeError(f"result.code {raw_code} is not a known error code") from None
    return InvocationResult(
        id=_field(v[1], bytes, "id", w, ID_BYTES),
        code=code,
        payload=_field(v[3], bytes, "payload", w),
        error=_field(v[4], str, "error", w, MAX_ERROR_CHARS),
        host=_field(v[5], str, "host", w, MAX_NAME_CHARS),
    )
