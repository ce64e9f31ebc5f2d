"""Invocation bodies (protocol 3): round trips, limits, and only typed errors on garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import DecodeError, ErrorCode
from meshhost.rpc import envelope
from meshhost.rpc.envelope import INVOKE_HEADER, RESULT_HEADER, Invocation, InvocationResult

invocations = st.builds(
    Invocation,
    id=st.binary(min_size=16, max_size=16),
    origin_host=st.text(max_size=60),
    origin_actor=st.text(max_size=60),
    target=st.text(min_size=1, max_size=60),
    operation=st.text(min_size=1, max_size=60),
    payload=st.binary(max_size=2048),
    deadline_unix_ms=st.integers(min_value=0, max_value=2**64 - 1),
    trace_id=st.binary(min_size=16, max_size=16),
    hops=st.integers(min_value=0, max_value=envelope.MAX_HOPS),
    parent_span=st.one_of(st.just(b""), st.binary(min_size=8, max_size=8).filter(any)),
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

INV = Invocation(b"i" * 16, "N1", "", "M1", "Echo.Call", b"x", 5, b"t" * 16, 0)


@given(invocations)
def test_invocation_round_trip(inv: Invocation) -> None:
    assert envelope.decode_invocation(envelope.encode_invocation(inv)) == inv


@given(results)
def test_result_round_trip(res: InvocationResult) -> None:
    assert envelope.decode_result(envelope.encode_result(res)) == res


def test_the_payload_is_the_rest_of_the_body_after_a_fixed_header() -> None:
    body = envelope.encode_invocation(INV)
    assert len(body) == INVOKE_HEADER.size + len("N1M1Echo.Call") + 1
    assert body.endswith(b"N1M1Echo.Callx") and body.startswith(b"i" * 16 + b"t" * 16)
    reply = envelope.encode_result(InvocationResult(b"i" * 16, ErrorCode.OK, b"pay", "", "N2"))
    assert reply == b"i" * 16 + b"\0\0\0\x02\0\0" + b"N2pay"


def _header(hops: int = 0, lt: int = 1, lo: int = 1) -> bytes:
    """An Invoke header: no origin names, a target of ``lt`` and an operation of ``lo`` bytes."""
    return INVOKE_HEADER.pack(b"i" * 16, b"t" * 16, bytes(8), 5, hops, 0, 0, 0, lt, lo)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"short", "shorter than its 58-byte header"),
        (_header(hops=9) + b"Mo", "hops 9 outside 0..8"),
        (_header(lt=2049) + b"M" * 2049 + b"o", "limit 2048"),
        (_header(lo=5) + b"Mop", "truncated"),
        (_header() + b"\xffo", "not UTF-8"),
    ],
)
def test_bad_invocations_say_what_is_wrong(body: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        envelope.decode_invocation(body)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"x" * 21, "shorter than its 22-byte header"),
        (RESULT_HEADER.pack(b"i" * 16, 999, 0, 0), "999 is not a known error code"),
        (RESULT_HEADER.pack(b"i" * 16, 0, 3, 0) + b"N", "truncated"),
        (RESULT_HEADER.pack(b"i" * 16, 1, 0, 2) + b"\xc3(", "not UTF-8"),
        (RESULT_HEADER.pack(b"i" * 16, 1, 0, 20000), "over its limit"),
    ],
)
def test_bad_results_say_what_is_wrong(body: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        envelope.decode_result(body)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"id": b"short"}, "id must be 16 bytes"),
        ({"parent_span": b"1234"}, "parent_span must be 8 bytes"),
        ({"operation": "x" * 2049}, "operation is 2049 bytes"),
        ({"hops": 9}, "hops 9 outside"),
        ({"trace_flags": 256}, "does not fit"),
    ],
)
def test_unencodable_invocations_raise_value_error(change: dict[str, object], match: str) -> None:
    values = {name: getattr(INV, name) for name in INV._fields}
    values.update(change)
    with pytest.raises(ValueError, match=match):
        envelope.encode_invocation(Invocation(**values))  # type: ignore[arg-type]


@given(st.binary(max_size=300))
def test_decoders_raise_only_decode_errors(data: bytes) -> None:
    for decode in (envelope.decode_invocation, envelope.decode_result):
        try:
            decode(data)
        except DecodeError:
            pass


@given(invocations, st.integers(min_value=0), st.binary(min_size=1, max_size=4))
def test_mutated_invocations_decode_or_raise_decode_error(
    inv: Invocation, where: int, garbage: bytes
) -> None:
    # Structured fuzz: a valid body with bytes overwritten anywhere, or cut short.
    body = bytearray(envelope.encode_invocation(inv))
    at = where % len(body)
    body[at : at + len(garbage)] = garbage
    for data in (bytes(body), bytes(body[:at])):
        try:
            decoded = envelope.decode_invocation(data)
        except DecodeError:
            continue
        assert decoded.hops <= envelope.MAX_HOPS
        assert envelope.decode_invocation(envelope.encode_invocation(decoded)) == decoded


@given(results, st.integers(min_value=0), st.binary(min_size=1, max_size=4))
def test_mutated_results_decode_or_raise_decode_error(
    res: InvocationResult, where: int, garbage: bytes
) -> None:
    body = bytearray(envelope.encode_result(res))
    at = where % len(body)
    body[at : at + len(garbage)] = garbage
    for data in (bytes(body), bytes(body[:at])):
        try:
            envelope.decode_result(data)
        except DecodeError:
            continue
