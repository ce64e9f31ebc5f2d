"""Putting a trace together from every host, with no collector.

Each host keeps its own spans (:class:`~meshhost.monitor.spans.SpanRing`).
The control op ``trace`` (proto/spec/rpc.md, "Traces") asks every live host
for its spans of one trace (op ``spans``, concurrently, each with a short
time-out) and answers the union; a host that does not answer in time is
named in ``unanswered`` and its spans are simply missing from the tree.

:func:`build_tree` (pure) orders the spans as the calls nested: a span whose
parent is not among them (the trace's first call, or a caller outside the
lattice that sent a ``traceparent``) is a root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from meshhost.errors import TraceArgsError
from meshhost.monitor.spans import Span, SpanRing, span_from_dict

__all__ = ["MAX_LAST", "SpanNode", "build_tree", "gather_trace", "local_spans", "parse_args"]

PEER_TIMEOUT_S = 5.0
"""How long the gathering host waits for one peer's spans (a dead peer costs this once)."""
MAX_LAST = 100
"""``--last N``: at most this many traces in one answer."""
MAX_TRACE_IDS = 100

Ask = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""``await ask(host_id, args)``: the ``spans`` op's result on that host."""


def _trace_ids(value: Any) -> list[bytes]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TRACE_IDS:
        raise TraceArgsError(
            f"argument 'trace_ids' must be a list of 1 to {MAX_TRACE_IDS} trace ids"
        )
    return [_trace_id(v) for v in value]


def _trace_id(value: Any) -> bytes:
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not 1 <= len(text) <= 32 or len(text) % 2:
        raise TraceArgsError(f"a trace id is 32 hex digits, got {value!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise TraceArgsError(f"a trace id is 32 hex digits, got {value!r}") from None


def parse_args(args: Mapping[str, Any]) -> tuple[list[bytes], int | None]:
    """(trace ids, last) from ``trace``/``spans`` args: exactly one of them given."""
    last = args.get("last")
    has_ids = args.get("trace_ids") is not None or args.get("trace_id") is not None
    if last is not None and has_ids:
        raise TraceArgsError("give either a trace id or 'last', not both")
    if last is not None:
        if type(last) is not int or not 1 <= last <= MAX_LAST:
            raise TraceArgsError(f"argument 'last' must be a whole number from 1 to {MAX_LAST}")
        return [], last
    if args.get("trace_id") is not None:
        return [_trace_id(args["trace_id"])], None
    if args.get("trace_ids") is not None:
        return _trace_ids(args["trace_ids"]), None
    raise TraceArgsError("give a trace id ('trace_id') or how many recent traces ('last')")


def local_spans(ring: SpanRing, args: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``spans`` op on one host: its spans of the given traces or of its ``last`` traces."""
    trace_ids, last = parse_args(args)
    if last is not None:
        trace_ids = [trace_id for trace_id, _ in ring.recent_traces(last)]
    return [span.to_dict() for span in ring.trace(trace_ids)]


async def gather_trace(
    args: Mapping[str, Any],
    *,
    local_host: str,
    ring: SpanRing,
    peers: Iterable[str],
    ask: Ask,
) -> dict[str, Any]:
    """The ``trace`` op: every live host's spans of a trace (or of the ``last`` N traces).

    Returns ``{"traces": [{"trace_id", "spans"}...], "hosts": [...], "unanswered": [...]}``,
    traces newest first, spans oldest first.  Raises TraceArgsError.
    """
    trace_ids, last = parse_args(args)
    peers = [p for p in peers if p != local_host]
    unanswered: set[str] = set()

    async def collect(query: dict[str, Any]) -> list[Span]:
        found: list[Span] = [span_from_dict(s) for s in local_spans(ring, query)]

        async def one(host: str) -> None:
            with trio.move_on_after(PEER_TIMEOUT_S):
                try:
                    answer = await ask(host, query)
                    found.extend(span_from_dict(s) for s in answer)
                    return
                except Exception:  # a peer that fails or answers garbage is left out
                    pass
            unanswered.add(host)

        async with trio.open_nursery() as nursery:
            for host in peers:
                nursery.start_soon(one, host)
        return found

    if last is not None:
        recent = await collect({"last": last})
        first: dict[bytes, int] = {}
        for span in recent:
            first[span.trace_id] = min(first.get(span.trace_id, span.start_ns), span.start_ns)
        trace_ids = sorted(first, key=lambda t: first[t], reverse=True)[:last]
        if not trace_ids:
            return {"traces": [], "hosts": [local_host, *peers], "unanswered": sorted(unanswered)}
    spans = await collect({"trace_ids": [t.hex() for t in trace_ids]})
    unique = {(s.host, s.span_id): s for s in spans}  # a host asked twice answers once
    by_trace: dict[bytes, list[Span]] = {t: [] for t in trace_ids}
    for span in unique.values():
        by_trace.setdefault(span.trace_id, []).append(span)
    traces = [
        {
            "trace_id": t.hex(),
            "spans": [s.to_dict() for s in sorted(by_trace[t], key=lambda s: s.start_ns)],
        }
        for t in trace_ids
    ]
    return {"traces": traces, "hosts": [local_host, *peers], "unanswered": sorted(unanswered)}


@dataclass
class SpanNode:
    span: Span
    children: list[SpanNode] = field(default_factory=list)


def build_tree(spans: Iterable[Span]) -> list[SpanNode]:
    """The spans as a forest: each under its parent, roots and children by start time."""
    ordered = sorted(spans, key=lambda s: (s.start_ns, s.end_ns))
    nodes = {s.span_id: SpanNode(s) for s in ordered}
    roots: list[SpanNode] = []
    for span in ordered:
        node = nodes[span.span_id]
        parent = nodes.get(span.parent_id) if span.parent_id else None
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)
    return roots
