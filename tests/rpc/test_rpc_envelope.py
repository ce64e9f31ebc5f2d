"""Invocation envelopes: round trips, limits, and only typed errors on garbage."""

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import DecodeError, ErrorCode
from meshhost.rpc import envelope
from meshhost.rpc.envelope import Invocation, InvocationResult

invocations = st.builds(
    Invocation,
    id=st.binary(min_size=16, max_size=16),
    origin_host=st.text(max_size=60),
    origin_actor=st.text(max_size=60),
    target=st.text(min_size=1, max_size=60),
    operation=st.text(min_size=1, max_size=60),
    payload=st.binary(max_size=2048),
    deadline_unix_ms=st.integers(min_value=0, max_value=2**53),
    trace_id=st.binary(min_size=16, max_size=16),
    hops=st.integers(min_value=0, max_value=envelope.MAX_HOPS),
    parent_span=st.binary(min_size=0, max_size=8),
    trace_flags=st.integers(min_value=0, max_value=255),
)
results = st.builds(
    InvocationResult,
    id=st.binary(min_size=16, max_size=16),
    code=st.sampled_from(list(ErrorCode)),
    payload=st.binary(max_size=2048),
    error=st.text(max_size=100),
    host=st.text(max_size=60),
)


@given(invocations)
def test_invocation_round_trip(inv: Invocation) -> None:
    assert envelope.decode_invocation(envelope.encode_invocation(inv)) == inv


@given(results)
def test_result_round_trip(res: InvocationResult) -> None:
    assert envelope.decode_result(envelope.encode_result(res)) == res


def test_trailing_fields_from_newer_versions_are_ignored() -> None:
    inv = Invocation(b"i" * 16, "N1", "", "M1", "Echo.Call", b"x", 5, b"t" * 16, 0)
    fields = msgpack.unpackb(envelope.encode_invocation(inv))
    fields.append("future field")
    assert envelope.decode_invocation(msgpack.packb(fields, use_bin_type=True)) == inv


def test_an_envelope_from_a_host_without_tracing_is_read_with_no_parent_span() -> None:
    old = [1, b"i" * 16, "N1", "", "M1", "Echo.Call", b"x", 5, b"t" * 16, 2]
    inv = envelope.decode_invocation(msgpack.packb(old, use_bin_type=True))
    assert (inv.trace_id, inv.hops, inv.parent_span, inv.trace_flags) == (b"t" * 16, 2, b"", 0)
    assert msgpack.unpackb(envelope.encode_invocation(inv))[:10] == old


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ([2, b"i"], "expected message type 1"),
        ([1, b"i" * 16, "N", "", "M"], "needs at least 10"),
        ([1, b"i" * 17, "N", "", "M", "op", b"", 1, b"t" * 16, 0], "id is longer"),
        ([1, b"i" * 16, "N", "", "M", "op", "text", 1, b"t" * 16, 0], "payload must be bytes"),
        ([1, b"i" * 16, "N", "", "M", "op", b"", 1, b"t" * 16, 99], "hops 99 outside"),
        ([1, b"i" * 16, "N", "", "M", "op", b"", -1, b"t" * 16, 0], "must not be negative"),
        ([1, b"i" * 16, "N", "", "M", b"op", b"", 1, b"t" * 16, 0], "operation must be str"),
        (
            [1, b"i" * 16, "N", "", "M", "op", b"", 1, b"t" * 16, 0, b"s" * 9, 1],
            "parent_span is longer than 8",
        ),
        (
            [1, b"i" * 16, "N", "", "M", "op", b"", 1, b"t" * 16, 0, "span", 1],
            "parent_span must be bytes",
        ),
        (
            [1, b"i" * 16, "N", "", "M", "op", b"", 1, b"t" * 16, 0, b"s" * 8, 256],
            "trace_flags 256 outside",
        ),
    ],
)
def test_bad_invocations_name_the_field(fields: list[object], match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        envelope.decode_invocation(msgpack.packb(fields, use_bin_type=True))


def test_unknown_error_code_is_rejected() -> None:
    data = msgpack.packb([2, b"i" * 16, 999, b"", "", ""], use_bin_type=True)
    with pytest.raises(DecodeError, match="999"):
        envelope.decode_result(data)


@given(st.binary(max_size=300))
def test_decoders_raise_only_decode_errors(data: bytes) -> None:
    for decode in (envelope.decode_invocation, envelope.decode_result):
        try:
            decode(data)
        except DecodeError:
            pass
