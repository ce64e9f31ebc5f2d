"""Trace context (W3C ``traceparent``) and the bounded ring of a host's recent spans.

Sans-IO and dependency-free, so the host layers below the monitor (the
actor host, the control ops) can record spans: callers pass times and ids
in.  Every host keeps its own spans; a trace is put together by asking every
live host for the spans of one trace id (control op ``spans``, see
proto/spec/rpc.md "Traces"), so no collector is needed.

A span here is one unit of work on one host:

* ``client``: a call this host made to an actor (wherever it ran), from the
  moment it asked until the answer; its id travels in the invocation
  envelope as the parent of the next span;
* ``server``: an actor ran an invocation on this host;
* ``internal``: an actor called a provider, or an actor on the same host.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "MAX_SPANS",
    "Span",
    "SpanRing",
    "TraceContext",
    "format_traceparent",
    "parse_traceparent",
    "span_from_dict",
]

MAX_SPANS = 4096
"""Spans a host keeps (oldest dropped first): minutes of a busy host's calls, a few MB."""
TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
SAMPLED = 0x01
"""The one ``trace-flags`` bit W3C defines; meshhost records every call and passes it on."""
_HEX = frozenset("0123456789abcdef")


class TraceContext(NamedTuple):
    """Where a piece of work sits in a trace: the trace and the span that caused it.

    A NamedTuple, not a frozen dataclass: two are made per call on the hot
    path, and a frozen dataclass costs ~1.5 µs to build where this costs ~0.3.
    """

    trace_id: bytes
    span_id: bytes
    flags: int = SAMPLED

    def traceparent(self) -> str:
        return format_traceparent(self)


def _is_hex(text: str, chars: int) -> bool:
    return len(text) == chars and set(text) <= _HEX


def parse_traceparent(text: str) -> TraceContext | None:
    """The context of a W3C ``traceparent`` header value, or None when it is not valid.

    As W3C Trace Context level 1 says: lower-case hex, version ``ff`` and
    all-zero ids invalid; a later version's value is read by its first four
    fields when they are well formed.  A caller that gets None starts a new
    trace (the header is a hint from outside, never an error).
    """
    text = text.strip()
    parts = text.split("-")
    if len(parts) < 4 or not _is_hex(parts[0], 2) or parts[0] == "ff":
        return None
    if parts[0] == "00" and len(parts) != 4:
        return None
    version, trace, span, flags = parts[:4]
    if not (_is_hex(trace, 32) and _is_hex(span, 16) and _is_hex(flags, 2)):
        return None
    if trace == "0" * 32 or span == "0" * 16:
        return None
    del version
    return TraceContext(bytes.fromhex(trace), bytes.fromhex(span), int(flags, 16))


def format_traceparent(ctx: TraceContext) -> str:
    """``00-<trace id>-<span id>-<flags>``; a short trace id (old peers) is left-padded."""
    trace = ctx.trace_id.rjust(TRACE_ID_BYTES, b"\0")[-TRACE_ID_BYTES:]
    span = ctx.span_id.rjust(SPAN_ID_BYTES, b"\0")[-SPAN_ID_BYTES:]
    return f"00-{trace.hex()}-{span.hex()}-{ctx.flags & 0xFF:02x}"


@dataclass(frozen=True, slots=True)
class Span:
    """One finished unit of work on one host (times in Unix nanoseconds)."""

    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    """The span that caused this one (on this or another host); b"" for a trace's root."""
    name: str
    kind: str
    """``client``, ``server`` or ``internal`` (see the module docstring)."""
    host: str
    start_ns: int
    end_ns: int
    status: str = "ok"
    """``ok``, or the error code name of the failure (``timeout``, ``actor_failed``...)."""
    attributes: tuple[tuple[str, str], ...] = field(default=())

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def to_dict(self) -> dict[str, Any]:
        """As the ``spans`` control op sends it (ids in lower-case hex)."""
        return {
            "trace_id": self.trace_id.hex(),
            "span_id": self.span_id.hex(),
            "parent_id": self.parent_id.hex(),
            "name": self.name,
            "kind": self.kind,
            "host": self.host,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "status": self.status,
            "attributes": dict(self.attributes),
        }


def span_from_dict(data: Any) -> Span:
    """A span from :meth:`Span.to_dict` (a peer's answer); raises ValueError when malformed."""
    if not isinstance(data, dict):
        raise ValueError(f"a span must be a map, got {type(data).__name__}")
    try:
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise ValueError("span attributes must be a map")
        span = Span(
            trace_id=bytes.fromhex(data["trace_id"]),
            span_id=bytes.fromhex(data["span_id"]),
            parent_id=bytes.fromhex(data["parent_id"]),
            name=str(data["name"]),
            kind=str(data["kind"]),
            host=str(data["host"]),
            start_ns=int(data["start_ns"]),
            end_ns=int(data["end_ns"]),
            status=str(data.get("status", "ok")),
            attributes=tuple(sorted((str(k), str(v)) for k, v in attributes.items())),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed span: {exc!r}") from None
    return span


_Row = tuple[int, bytes, bytes, bytes, str, str, str, int, int, str, tuple[tuple[str, str], ...]]
"""(sequence number, then the fields of a Span in order): what the ring holds."""


class SpanRing:
    """The last ``capacity`` spans of one host, safe to add to from worker threads.

    Guest calls run on worker threads and record their provider spans there.
    Recording is on every call's path, so the ring holds plain tuples (a
    :class:`Span` is built only when someone reads) and takes no lock:
    ``deque.append`` with ``maxlen`` and ``next()`` of an ``itertools.count``
    are each one atomic step under the GIL, and a reader copies the deque
    with ``list()`` in one step too.  Every span gets a sequence number, so
    an exporter can ask for what is new.
    """

    def __init__(self, capacity: int = MAX_SPANS) -> None:
        if capacity < 1:
            raise ValueError(f"a span ring needs room for at least one span, got {capacity}")
        self._rows: deque[_Row] = deque(maxlen=capacity)
        self._counter = itertools.count(1)
        self._last = 0

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest span (0: none yet)."""
        rows = self._rows
        return rows[-1][0] if rows else 0

    def add(
        self,
        trace_id: bytes,
        span_id: bytes,
        parent_id: bytes,
        name: str,
        kind: str,
        host: str,
        start_ns: int,
        end_ns: int,
        status: str = "ok",
        attributes: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Record a span from its fields (the hot path: no object is built)."""
        self._rows.append(
            (
                next(self._counter),
                trace_id,
                span_id,
                parent_id,
                name,
                kind,
                host,
                start_ns,
                end_ns,
                status,
                attributes,
            )
        )

    def record(self, span: Span) -> None:
        self.add(
            span.trace_id,
            span.span_id,
            span.parent_id,
            span.name,
            span.kind,
            span.host,
            span.start_ns,
            span.end_ns,
            span.status,
            span.attributes,
        )

    def _copy(self) -> list[_Row]:
        return list(self._rows)

    def snapshot(self) -> list[Span]:
        return [Span(*row[1:]) for row in self._copy()]

    def since(self, seq: int) -> tuple[int, list[Span]]:
        """Spans recorded after sequence number ``seq``, and the newest number."""
        rows = self._copy()
        newest = rows[-1][0] if rows else seq
        return max(seq, newest), [Span(*row[1:]) for row in rows if row[0] > seq]

    def trace(self, trace_ids: Iterable[bytes]) -> list[Span]:
        """This host's spans of the given traces, oldest first."""
        wanted = set(trace_ids)
        return [Span(*row[1:]) for row in self._copy() if row[1] in wanted]

    def recent_traces(self, count: int) -> list[tuple[bytes, int]]:
        """The ``count`` traces with the latest start here: (trace id, earliest start_ns)."""
        first: dict[bytes, int] = {}
        for row in self._copy():
            trace_id, start_ns = row[1], row[7]
            known = first.get(trace_id)
            if known is None or start_ns < known:
                first[trace_id] = start_ns
        ranked = sorted(first.items(), key=lambda item: item[1], reverse=True)
        return ranked[:count]
