"""Invocation envelopes: what one host asks another to run, and the answer.

Both travel on transport channel 1 (``CHANNEL``) as the request and reply
bodies of one transport request.  Since protocol 3 they are not msgpack: an
``Invoke`` is a fixed 58-byte big-endian header (ids, deadline, hops, trace
flags and the four name lengths), the four names in UTF-8, then the payload;
a ``Result`` is a fixed 22-byte header (id, code, two lengths), the host id
and error text, then the payload.  Every field has a fixed place, so the
header always sits in the first (REQUEST / RESPONSE) transport frame and
decoding is one ``struct`` unpack and a few slices.  Layout and limits are
specified in proto/spec/rpc.md.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from meshhost.errors import DecodeError, ErrorCode
from meshhost.transport import channels

__all__ = [
    "CHANNEL",
    "INVOKE_HEADER",
    "MAX_HOPS",
    "RESULT_HEADER",
    "Invocation",
    "InvocationResult",
    "decode_invocation",
    "decode_result",
    "encode_invocation",
    "encode_result",
    "encode_result_fields",
]

CHANNEL = channels.INVOCATION
"""Transport channel that carries invocations (from the one registry)."""

MAX_HOPS = 8
"""An actor may call an actor that calls an actor...; a chain longer than this is a loop."""
MAX_NAME_BYTES = 2048
"""Host ids are 56 characters; call aliases and operation names are short (UTF-8 bytes)."""
MAX_ERROR_CHARS = 4096
"""Error messages are for people; longer ones are cut (to this many characters)."""
MAX_ERROR_BYTES = 4 * MAX_ERROR_CHARS
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
"""Largest invocation payload a host accepts (the transport streams it)."""
ID_BYTES = 16
"""Invocation ids and trace ids are 128-bit values (see proto/spec/rpc.md)."""
SPAN_ID_BYTES = 8
"""W3C span ids are 64-bit: the caller's span, parent of the target's (proto/spec/rpc.md)."""

INVOKE_HEADER = struct.Struct("!16s16s8sQBBHHHH")
"""id, trace_id, parent_span, deadline_unix_ms, hops, trace_flags, and the byte
lengths of origin_host, origin_actor, target, operation."""
RESULT_HEADER = struct.Struct("!16sHHH")
"""id, code, byte lengths of host and error."""
_NO_SPAN = bytes(SPAN_ID_BYTES)
_CODES = {int(c): c for c in ErrorCode}


class Invocation(NamedTuple):
    """One call of ``operation`` on actor ``target`` (an ``M…`` key or a call alias).

    A NamedTuple, not a frozen dataclass (as ``TraceContext``): both are
    immutable, but one is built per call on each side of the hot path and a
    tuple is made in one C call (~5x faster than a frozen dataclass's
    field-by-field ``object.__setattr__``)."""

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
    """The caller's span id (W3C ``parent-id``); b"" when the caller has no span."""
    trace_flags: int = 0
    """W3C ``trace-flags`` (bit 0: sampled), passed on unchanged."""


class InvocationResult(NamedTuple):
    """The answer: ``code`` OK with ``payload``, or an error code with a message
    (a NamedTuple for the same reason as ``Invocation``)."""

    id: bytes
    code: ErrorCode
    payload: bytes = b""
    error: str = ""
    host: str = ""
    """The host that ran (or refused) the call."""


def _sized(value: bytes, size: int, name: str, empty_ok: bool = False) -> bytes:
    if len(value) == size or (empty_ok and not value):
        return value
    raise ValueError(f"invocation {name} must be {size} bytes, got {len(value)}")


def _name(value: str, name: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_NAME_BYTES:
        raise ValueError(f"invocation {name} is {len(raw)} bytes of UTF-8, over {MAX_NAME_BYTES}")
    return raw


def encode_invocation(inv: Invocation) -> bytes:
    """Encode an invocation; raises ValueError for a field the layout cannot carry
    (an id, trace id or span of the wrong size, a name over the limit, hops or
    flags out of range).  The invoker builds only encodable invocations."""
    (
        iid,
        origin_host,
        origin_actor,
        target_s,
        operation,
        payload,
        deadline,
        trace,
        hops,
        span,
        flags,
    ) = inv
    host = origin_host.encode()
    actor = origin_actor.encode()
    target = target_s.encode()
    op = operation.encode()
    if (  # fast path (every call the invoker makes): one test, one pack
        len(iid) == ID_BYTES
        and len(trace) == ID_BYTES
        and len(span) in (0, SPAN_ID_BYTES)
        and 0 <= hops <= MAX_HOPS
        and 0 <= flags <= 0xFF
        and 0 <= deadline < 1 << 64
        and len(host) <= MAX_NAME_BYTES
        and len(actor) <= MAX_NAME_BYTES
        and len(target) <= MAX_NAME_BYTES
        and len(op) <= MAX_NAME_BYTES
    ):
        try:
            head = INVOKE_HEADER.pack(
                iid, trace, span, deadline, hops, flags, len(host), len(actor), len(target), len(op)
            )
        except struct.error:  # a field of the wrong type: let the slow path name it
            return _encode_checked(inv)
        return b"".join((head, host, actor, target, op, payload))
    return _encode_checked(inv)


def _encode_checked(inv: Invocation) -> bytes:
    """``encode_invocation`` field by field, raising ValueError at the bad one."""
    host = _name(inv.origin_host, "origin_host")
    actor = _name(inv.origin_actor, "origin_actor")
    target = _name(inv.target, "target")
    op = _name(inv.operation, "operation")
    if not 0 <= inv.hops <= MAX_HOPS:
        raise ValueError(f"invocation hops {inv.hops} outside 0..{MAX_HOPS}")
    try:
        head = INVOKE_HEADER.pack(
            _sized(inv.id, ID_BYTES, "id"),
            _sized(inv.trace_id, ID_BYTES, "trace_id"),
            _sized(inv.parent_span, SPAN_ID_BYTES, "parent_span", empty_ok=True),
            inv.deadline_unix_ms,
            inv.hops,
            inv.trace_flags,
            len(host),
            len(actor),
            len(target),
            len(op),
        )
    except struct.error as exc:
        raise ValueError(f"invocation does not fit its header: {exc}") from None
    return b"".join((head, host, actor, target, op, inv.payload))


def encode_result(res: InvocationResult) -> bytes:
    """Encode a result; the error text is cut to MAX_ERROR_CHARS characters."""
    return encode_result_fields(res.id, res.code, res.payload, res.error, res.host)


def encode_result_fields(inv_id: bytes, code: int, payload: bytes, error: str, host: str) -> bytes:
    """``encode_result`` without building the object (the target's hot path)."""
    raw_host = host.encode()
    if len(raw_host) > MAX_NAME_BYTES:
        raise ValueError(f"result host is {len(raw_host)} bytes of UTF-8, over {MAX_NAME_BYTES}")
    if not error:  # a successful call
        return b"".join(
            (
                RESULT_HEADER.pack(_sized(inv_id, ID_BYTES, "id"), code, len(raw_host), 0),
                raw_host,
                payload,
            )
        )
    raw_error = error[:MAX_ERROR_CHARS].encode("utf-8", "replace")
    head = RESULT_HEADER.pack(_sized(inv_id, ID_BYTES, "id"), code, len(raw_host), len(raw_error))
    return b"".join((head, raw_host, raw_error, payload))


def decode_invocation(data: bytes) -> Invocation:
    """Decode an invocation; raises DecodeError naming what is wrong (and nothing else)."""
    size = len(data)
    if size < INVOKE_HEADER.size:
        raise DecodeError(
            f"invocation of {size} bytes is shorter than its {INVOKE_HEADER.size}-byte header"
        )
    if size > MAX_PAYLOAD_BYTES + 64 * 1024:
        raise DecodeError(f"invocation of {size} bytes exceeds the {MAX_PAYLOAD_BYTES} limit")
    iid, trace, span, deadline, hops, flags, lh, la, lt, lo = INVOKE_HEADER.unpack_from(data)
    if hops > MAX_HOPS:
        raise DecodeError(f"invocation.hops {hops} outside 0..{MAX_HOPS}")
    if lh > MAX_NAME_BYTES or la > MAX_NAME_BYTES or lt > MAX_NAME_BYTES or lo > MAX_NAME_BYTES:
        raise DecodeError(
            f"invocation names of {lh}, {la}, {lt}, {lo} bytes: limit {MAX_NAME_BYTES}"
        )
    a = INVOKE_HEADER.size + lh
    t = a + la
    o = t + lt
    end = o + lo
    if end > size:
        raise DecodeError(f"invocation of {size} bytes is truncated: its names end at byte {end}")
    try:
        host = data[INVOKE_HEADER.size : a].decode()
        actor = data[a:t].decode()
        target = data[t:o].decode()
        op = data[o:end].decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"invocation name is not UTF-8: {exc.reason}") from None
    return Invocation(
        iid,
        host,
        actor,
        target,
        op,
        data[end:],
        deadline,
        trace,
        hops,
        b"" if span == _NO_SPAN else span,
        flags,
    )


def decode_result(data: bytes) -> InvocationResult:
    """Decode an invocation result; raises DecodeError (an unknown code too)."""
    size = len(data)
    if size < RESULT_HEADER.size:
        raise DecodeError(
            f"invocation result of {size} bytes is shorter than its "
            f"{RESULT_HEADER.size}-byte header"
        )
    iid, raw_code, lh, le = RESULT_HEADER.unpack_from(data)
    code = _CODES.get(raw_code)
    if code is None:
        raise DecodeError(f"result.code {raw_code} is not a known error code")
    if lh > MAX_NAME_BYTES or le > MAX_ERROR_BYTES:
        raise DecodeError(f"result host of {lh} or error of {le} bytes is over its limit")
    e = RESULT_HEADER.size + lh
    end = e + le
    if end > size:
        raise DecodeError(f"invocation result of {size} bytes is truncated (needs {end})")
    try:
        host = data[RESULT_HEADER.size : e].decode()
        error = data[e:end].decode() if le else ""
    except UnicodeDecodeError as exc:
        raise DecodeError(f"result text is not UTF-8: {exc.reason}") from None
    return InvocationResult(iid, code, data[end:], error, host)
