"""Directory codec: round trips, bounded decoding, typed errors on any bytes."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.directory.codec import (
    MAX_PIGGYBACK_BYTES,
    MAX_VALUE_DEPTH,
    FullState,
    HostDelta,
    HostEntry,
    HostSection,
    LwwChunk,
    LwwDelta,
    LwwEntry,
    SyncRequest,
    check_value,
    decode_any,
    decode_piggyback,
    decode_state,
    decode_sync_request,
    encode,
    to_fields,
)
from meshhost.directory.hlc import Stamp
from meshhost.errors import DirectoryDecodeError, DirectoryValueError, MeshError

NODE = "N" + "A" * 55
keys = st.text(min_size=1, max_size=20)
values = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(1 << 63), (1 << 64) - 1),
        st.floats(allow_nan=False),
        st.text(max_size=10),
        st.binary(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
stamps = st.builds(Stamp, st.integers(0, (1 << 48) - 1), st.integers(0, 65535), st.just(NODE))
lww_entries = st.builds(LwwEntry, keys, keys, stamps, st.one_of(st.none(), values))
host_entries = st.builds(
    HostEntry, keys, st.integers(0, (1 << 64) - 1), st.one_of(st.none(), values)
)


@st.composite
def sections(draw):
    since = draw(st.integers(0, 1000))
    return HostSection(
        draw(keys),
        draw(st.integers(0, (1 << 64) - 1)),
        since,
        since + draw(st.integers(0, 1000)),
        tuple(draw(st.lists(host_entries, max_size=3))),
    )


messages = st.one_of(
    st.builds(HostDelta, sections()),
    st.builds(LwwDelta, st.lists(lww_entries, max_size=3).map(tuple)),
    st.builds(
        FullState,
        st.lists(sections(), max_size=3).map(tuple),
        st.lists(lww_entries, max_size=3).map(tuple),
    ),
    st.builds(
        SyncRequest,
        st.lists(
            st.tuples(keys, st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1)),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(
        lambda ns, key, stamp, count, data: LwwChunk(ns, key, stamp, count - 1, count, data),
        keys,
        keys,
        stamps,
        st.integers(1, 1024),
        st.binary(max_size=20),
    ),
)


def _lists(obj):
    """msgpack round trips tuples as lists; compare in that form."""
    if isinstance(obj, list | tuple):
        return [_lists(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    return obj


@given(messages)
def test_every_message_round_trips(message):
    data = encode(message)
    decoded = decode_any(data)
    assert _lists(to_fields(decoded)) == _lists(to_fields(message))
    assert encode(decoded) == data
    if isinstance(message, FullState):
        assert decode_state(data) == decoded
    elif isinstance(message, SyncRequest):
        assert decode_sync_request(data) == decoded
    elif len(data) <= MAX_PIGGYBACK_BYTES:
        assert decode_piggyback(data) == decoded


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_directory_decode_errors(data):
    for decode in (decode_piggyback, decode_state, decode_sync_request, decode_any):
        try:
            decode(data)
        except DirectoryDecodeError:
            pass


@given(messages)
def test_every_truncation_raises_a_typed_error(message):
    data = encode(message)
    for cut in range(len(data)):
        with pytest.raises(MeshError):
            decode_any(data[:cut])


@given(
    st.recursive(
        st.integers(-(1 << 63), (1 << 64) - 1) | st.binary() | st.text() | st.none(),
        lambda i: st.lists(i) | st.dictionaries(st.text() | st.integers(0, 99), i),
        max_leaves=20,
    )
)
def test_random_msgpack_structures_raise_only_typed_errors(obj):
    data = msgpack.packb([2, [obj]], use_bin_type=True)
    try:
        decode_piggyback(data)
    except DirectoryDecodeError:
        pass


def test_trailing_fields_from_newer_versions_are_ignored():
    entry = LwwEntry("config", "k", Stamp(5, 1, NODE), "v")
    fields = to_fields(LwwDelta((entry,)))
    fields[1][0] += [None, "future field"]  # element 5 is the (optional) auth
    fields.append("another future field")
    assert decode_piggyback(msgpack.packb(fields, use_bin_type=True)) == LwwDelta((entry,))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ([1, NODE, 1, 0, 1], "HOST_DELTA has 5 elements"),
        ([2], "LWW_DELTA has 1 elements"),
        ([9, []], "unknown directory message type 9"),
        (["1", []], "type must be an integer"),
        ([2, [["config", b"k", 1, NODE, "v"]]], "key must be a string"),
        ([2, [["config", "k", -1, NODE, "v"]]], "unsigned 64-bit"),
        ([1, NODE, 1, 5, 4, []], "since is greater than upto"),
        ([4, "ns", "k", 1, NODE, 3, 3, b""], "out of range"),
        ([4, "ns", "k", 1, NODE, 0, 1, "text"], "chunk data must be bin"),
        ([2, [["config", "k", 1, NODE, {"a": {1: 2}}]]], "not valid msgpack|not a string"),
        ([3, [], []], "FullState is not valid piggybacked"),
        ([5, []], "SyncRequest is not valid piggybacked"),
        ([5, [["N", 1]]], "digest entry has 2 elements"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(fields, match):
    with pytest.raises(DirectoryDecodeError, match=match):
        decode_piggyback(msgpack.packb(fields, use_bin_type=True))


def test_push_pull_accepts_only_full_state_and_sizes_are_checked_first():
    with pytest.raises(DirectoryDecodeError, match="must be a FULL_STATE"):
        decode_state(encode(LwwDelta(())))
    with pytest.raises(DirectoryDecodeError, match="exceeds the 65535-byte limit"):
        decode_piggyback(b"\x00" * (MAX_PIGGYBACK_BYTES + 1))
    with pytest.raises(DirectoryDecodeError, match="must be bytes"):
        decode_piggyback("text")  # type: ignore[arg-type]


def test_values_are_bounded_in_depth_and_type():
    deep: object = 1
    for _ in range(MAX_VALUE_DEPTH + 1):
        deep = [deep]
    with pytest.raises(DirectoryValueError, match="nests deeper"):
        check_value(deep)
    with pytest.raises(DirectoryValueError, match="cannot be stored"):
        check_value({"a": object()})
    with pytest.raises(DirectoryValueError, match="64-bit"):
        check_value(1 << 64)
    data = msgpack.packb([2, [["c", "k", 1, NODE, deep]]], use_bin_type=True)
    with pytest.raises(DirectoryDecodeError, match="nests deeper"):
        decode_piggyback(data)
