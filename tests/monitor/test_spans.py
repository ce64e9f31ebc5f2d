"""Trace context (W3C traceparent), the bounded span ring, and the trace tree."""

from __future__ import annotations

import pytest

from meshhost.monitor.spans import (
    Span,
    SpanRing,
    TraceContext,
    format_traceparent,
    parse_traceparent,
    span_from_dict,
)
from meshhost.monitor.tracing import TraceArgsError, build_tree, parse_args

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_the_w3c_example_traceparent_round_trips() -> None:
    text = f"00-{TRACE}-{PARENT}-01"
    ctx = parse_traceparent(text)
    assert ctx == TraceContext(bytes.fromhex(TRACE), bytes.fromhex(PARENT), 1)
    assert format_traceparent(ctx) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        f"00-{TRACE}-{PARENT}",  # no flags
        f"00-{TRACE.upper()}-{PARENT}-01",  # upper-case hex
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE[:-1]}-{PARENT}-01",  # short trace id
        f"0g-{TRACE}-{PARENT}-01",
    ],
)
def test_a_malformed_traceparent_is_ignored(text: str) -> None:
    assert parse_traceparent(text) is None


def test_a_later_version_is_read_by_its_first_four_fields() -> None:
    ctx = parse_traceparent(f"01-{TRACE}-{PARENT}-03-whatever")
    assert ctx is not None and ctx.flags == 3


def span(n: int, trace: bytes = b"t" * 16, parent: bytes = b"", start: int = 0) -> Span:
    return Span(trace, n.to_bytes(8, "big"), parent, f"s{n}", "server", "N1", start, start + 5)


def test_the_ring_keeps_only_the_newest_spans_and_says_what_is_new() -> None:
    ring = SpanRing(capacity=3)
    for n in range(1, 6):
        ring.record(span(n, start=n))
    assert [s.name for s in ring.snapshot()] == ["s3", "s4", "s5"]
    seq, new = ring.since(4)
    assert seq == 5 and [s.name for s in new] == ["s5"]


def test_recent_traces_rank_by_their_first_span() -> None:
    ring = SpanRing()
    ring.record(span(1, b"a" * 16, start=10))
    ring.record(span(2, b"b" * 16, start=20))
    ring.record(span(3, b"a" * 16, start=30))  # a later span of an older trace
    assert ring.recent_traces(2) == [(b"b" * 16, 20), (b"a" * 16, 10)]
    assert [s.name for s in ring.trace([b"a" * 16])] == ["s1", "s3"]


def test_a_span_survives_its_wire_form_and_garbage_is_refused() -> None:
    s = Span(
        b"t" * 16, b"s" * 8, b"p" * 8, "n", "client", "N1", 1, 2, "timeout", (("actor", "M1"),)
    )
    assert span_from_dict(s.to_dict()) == s
    for bad in (
        None,
        [],
        {"trace_id": "zz"},
        {**s.to_dict(), "start_ns": "soon"},
        {**s.to_dict(), "attributes": [1]},
    ):
        with pytest.raises(ValueError):
            span_from_dict(bad)


def test_the_tree_nests_children_and_an_unknown_parent_makes_a_root() -> None:
    root = span(1, start=0)
    child = span(2, parent=root.span_id, start=1)
    grandchild = span(3, parent=child.span_id, start=2)
    orphan = span(4, parent=b"x" * 8, start=3)  # its parent is outside the lattice
    forest = build_tree([grandchild, orphan, child, root])
    assert [n.span.name for n in forest] == ["s1", "s4"]
    assert forest[0].children[0].children[0].span is grandchild


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"last": 0},
        {"last": "3"},
        {"last": 101},
        {"trace_id": "xyz"},
        {"trace_id": 7},
        {"trace_id": TRACE, "last": 2},
        {"trace_ids": []},
        {"trace_ids": "abc"},
    ],
)
def test_bad_trace_arguments_are_refused_with_a_reason(args: dict[str, object]) -> None:
    with pytest.raises(TraceArgsError):
        parse_args(args)
