"""meshhost.wire: the bounded unpack and the field readers raise the given class, only."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshhost import wire
from meshhost.capabilities.providers import codec as pcodec
from meshhost.control import api as capi
from meshhost.directory import codec as dcodec
from meshhost.errors import (
    DecodeError,
    DirectoryDecodeError,
    HandshakeRejected,
    LocalProtocolError,
    MembershipDecodeError,
    MeshError,
    PayloadDecodeError,
    RemoteError,
    SignatureError,
)
from meshhost.host import decode_meta
from meshhost.identity import operators
from meshhost.membership import messages
from meshhost.rpc import peer
from meshhost.runtime.wapc import trim_stray_trailer
from meshhost.transport import handshake
from meshhost.wire import MAX_U32, Limits, Reader


class _LayerError(MeshError):
    """Stands in for a layer's decode error: nothing else may escape."""


R = Reader(_LayerError)

_LIMITS = [
    Limits(max_bytes=1 << 16),
    Limits(max_bytes=64, max_bin=8, max_str=8, max_array=4, max_map=0, max_depth=2),
    Limits(max_bytes=1 << 16, strict_map_key=False, trailing_zeros=True, max_depth=3),
    Limits(max_bytes=1 << 16, max_ext=16),
]

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats()
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=200), which=st.integers(0, len(_LIMITS) - 1))
def test_garbage_bytes_decode_or_raise_the_given_class_only(data: bytes, which: int) -> None:
    try:
        R.unpack(data, _LIMITS[which], "garbage")
    except _LayerError as exc:
        assert "garbage" in str(exc)


@settings(max_examples=300, deadline=None)
@given(value=_values, tail=st.binary(max_size=4), cut=st.integers(0, 8))
def test_mutated_msgpack_decodes_or_raises_the_given_class_only(
    value: Any, tail: bytes, cut: int
) -> None:
    packed = msgpack.packb(value, use_bin_type=True)
    for data in (packed + tail, packed[: max(0, len(packed) - cut)]):
        for limits in _LIMITS:
            try:
                R.unpack(data, limits, "mutated")
            except _LayerError:
                pass


@settings(max_examples=300, deadline=None)
@given(value=_values)
def test_field_readers_on_any_value_return_it_or_raise_the_given_class(value: Any) -> None:
    readers = [
        lambda v: R.uint(v, "f", MAX_U32),
        lambda v: R.integer(v, "f", -5, 5),
        lambda v: R.boolean(v, "f"),
        lambda v: R.text(v, "f", 3, 1),
        lambda v: R.binary(v, "f", 4),
        lambda v: R.array(v, "f", 1, 2),
        lambda v: R.list_of(v, "f", lambda i: R.uint(i, "i")),
        lambda v: R.mapping(v, "f"),
        lambda v: R.required(R.mapping(v, "f"), "k", "f"),
    ]
    for read in readers:
        try:
            assert read(value) is not None or value is None or isinstance(value, dict)
        except _LayerError:
            pass


def test_a_valid_value_round_trips_unchanged() -> None:
    value = [1, "two", b"three", {"four": [5.5, None, True]}]
    assert R.unpack(msgpack.packb(value, use_bin_type=True), _LIMITS[0], "v") == value


@pytest.mark.parametrize(
    ("data", "limits", "message"),
    [
        ("text", Limits(max_bytes=10), "must be bytes"),
        (b"\x90" * 11, Limits(max_bytes=10), "exceeds the 10-byte limit"),
        (b"\x91\x01\x02", Limits(max_bytes=10), "1 unexpected bytes after"),
        (b"\x01\x00\x01", Limits(max_bytes=10, trailing_zeros=True), "2 unexpected bytes"),
        (b"\xc4\x03abc", Limits(max_bytes=10, max_bin=2), "not valid msgpack"),
        (b"\x91\x91\x91\x90", Limits(max_bytes=10, max_depth=3), "nests deeper than 3"),
        (b"\x81\x01\x02", Limits(max_bytes=10), "not valid msgpack"),  # int map key
        (b"\xd4\x01\x00", Limits(max_bytes=10), "not valid msgpack"),  # ext refused
        (b"\xc1", Limits(max_bytes=10), "not valid msgpack"),  # never-used byte
        (b"\x92\x01", Limits(max_bytes=10), "not valid msgpack"),  # truncated
    ],
)
def test_each_limit_is_enforced_with_a_message_naming_it(
    data: Any, limits: Limits, message: str
) -> None:
    with pytest.raises(_LayerError, match=message):
        R.unpack(data, limits, "thing")


def test_trailing_zeros_are_ignored_only_when_allowed() -> None:
    assert R.unpack(b"\x05\x00\x00", Limits(max_bytes=10, trailing_zeros=True), "v") == 5
    with pytest.raises(_LayerError):
        R.unpack(b"\x05\x00", Limits(max_bytes=10), "v")


def test_depth_counts_the_outermost_container_as_one() -> None:
    assert R.unpack(b"\x91\x91\x90", Limits(max_bytes=10, max_depth=3), "v") == [[[]]]
    with pytest.raises(_LayerError, match="deeper than 2"):
        R.unpack(b"\x91\x91\x90", Limits(max_bytes=10, max_depth=2), "v")


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (
            lambda: R.uint(True, "ping seq"),
            "ping seq must be an integer in 0..18446744073709551615",
        ),
        (lambda: R.uint(-1, "seq", 7), r"seq must be an integer in 0\.\.7, got -1"),
        (lambda: R.text(b"x", "host", 5), "host must be a string, got bin"),
        (lambda: R.text("", "host", 5, 1), r"host must be 1\.\.5 characters, got 0"),
        (lambda: R.binary(b"abc", "sig", 64, 64), "sig must be 64 bytes, got 3"),
        (lambda: R.array([1], "entry", 3), "entry has 1 elements; needs at least 3"),
        (lambda: R.list_of([1, "x"], "seqs", lambda v: R.uint(v, "seq")), r"seqs\[1\]: seq"),
        (lambda: R.required({}, "port", "hello"), "hello lacks the field 'port'"),
        (lambda: R.boolean(0, "join"), "join must be a boolean, got 0"),
    ],
)
def test_readers_name_the_field_in_their_message(read: Any, message: str) -> None:
    with pytest.raises(_LayerError, match=message):
        read()


def test_optional_treats_missing_and_nil_alike() -> None:
    assert R.optional({"a": None}, "a", 7) == 7
    assert R.optional({}, "a", 7) == 7
    assert R.optional({"a": 0}, "a", 7) == 0


@pytest.mark.parametrize("header", [b"\xdd\x00\x0f\x42\x40", b"\xdf\x00\x0f\x42\x40"])
def test_a_count_larger_than_the_input_is_refused_before_allocation(header: bytes) -> None:
    # An array/map header claiming 1,000,000 elements in 5 bytes: msgpack would
    # allocate the slots first (8 MB for a list) unless the limit is the input's length.
    limits = Limits(max_bytes=1 << 20, max_array=1_000_000, max_map=1_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(_LayerError, match=r"exceeds max_(array|map)_len"):
            R.unpack(header, limits, "claim")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


# --- every codec decodes through meshhost.wire --------------------------------

MESHHOST = Path(wire.__file__).parent


def test_no_module_but_wire_calls_msgpacks_unpacker() -> None:
    # Every decoder bounds and checks its input the same way (issue 13, point 6).
    call = re.compile(r"msgpack\.(unpackb|unpack|Unpacker|loads)\b|from msgpack import .*unpack")
    users = sorted(
        str(p.relative_to(MESHHOST)) for p in MESHHOST.rglob("*.py") if call.search(p.read_text())
    )
    assert users == ["wire.py"]


_STATIC = bytes(32)
_CODECS: list[tuple[str, Any, tuple[type[Exception], ...]]] = [
    ("membership packet", lambda d: messages.decode_packet(d, 1400), (MembershipDecodeError,)),
    ("membership push-pull", messages.decode_push_pull, (MembershipDecodeError,)),
    ("directory piggyback", dcodec.decode_piggyback, (DirectoryDecodeError,)),
    ("directory state", dcodec.decode_state, (DirectoryDecodeError,)),
    ("directory sync request", dcodec.decode_sync_request, (DirectoryDecodeError,)),
    ("directory value", dcodec.decode_value, (DirectoryDecodeError,)),
    ("handshake hello", lambda d: handshake.decode_hello(d, _STATIC), (HandshakeRejected,)),
    ("control request", capi.decode_envelope, (DecodeError,)),
    ("control reply", capi.decode_reply, (DecodeError, capi.ControlError)),
    ("peer request", peer.decode_request, (DecodeError,)),
    ("peer reply", peer.decode_reply, (DecodeError, RemoteError)),
    (
        "operator statement",
        lambda d: operators.decode_statement("lat", d),
        (DecodeError, SignatureError),
    ),
    ("capability payload", lambda d: pcodec.unpack(d, "payload"), (PayloadDecodeError,)),
    ("host metadata", decode_meta, ()),
    ("guest answer trailer", trim_stray_trailer, ()),
]


@settings(max_examples=150, deadline=None)
@given(
    value=_values,
    raw=st.binary(max_size=64),
    tail=st.binary(max_size=2),
    cut=st.integers(0, 3),
    use_raw=st.booleans(),
)
def test_every_codec_raises_only_its_layers_error_on_garbage(
    value: Any, raw: bytes, tail: bytes, cut: int, use_raw: bool
) -> None:
    packed = msgpack.packb(value, use_bin_type=True)
    data = raw if use_raw else packed[: max(0, len(packed) - cut)] + tail
    for name, decode, errors in _CODECS:
        try:
            decode(data)
        except errors:
            pass
        except Exception as exc:  # the property under test: name the codec that leaked
            raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize(
    "kwargs",
    [{"max_bytes": -1}, {"max_bytes": 1, "max_array": -2}, {"max_bytes": 1, "max_depth": 0}],
)
def test_negative_limits_are_refused_when_the_codec_is_written(kwargs: dict[str, int]) -> None:
    with pytest.raises(LocalProtocolError, match="wire"):
        Limits(**kwargs)
