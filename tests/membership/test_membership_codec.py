"""Membership wire codec: golden vectors, round trips, and hostile bytes."""

import json
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import DecodeError, MembershipDecodeError
from meshhost.identity.nkeys import KeyPair, Prefix
from meshhost.membership.messages import (
    MAX_COMPOUND_PARTS,
    MAX_META_BYTES,
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MessageType,
    Nack,
    Ping,
    PushPullEntry,
    Suspect,
    User,
    decode_packet,
    decode_push_pull,
    encode,
    encode_compound,
    encode_push_pull,
    encode_push_pull_entry,
)
from meshhost.membership.signing import AliveVerifier, sign_alive
from meshhost.membership.state import MemberState
from tests.membership.membership_vectors import entry, message

VECTORS = Path(__file__).parents[2] / "proto" / "vectors" / "membership.json"
LIMIT = 1200
KEY = KeyPair(Prefix.SERVER, bytes(range(32)))
NODE = KEY.public_key


def _vectors():
    return json.loads(VECTORS.read_text())["vectors"]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_golden_vectors_encode_and_decode(vector):
    kind, fields, wire = vector["kind"], vector["fields"], bytes.fromhex(vector["msgpack_hex"])
    if kind == "compound":
        parts = [bytes.fromhex(p) for p in fields["parts"]]
        assert encode_compound(parts) == wire
        msgs, unknown = decode_packet(wire, LIMIT)
        assert unknown == 0
        assert [encode(m) for m in msgs] == parts
    elif kind == "push_pull":
        entries = [entry(e) for e in fields["entries"]]
        user = bytes.fromhex(fields["user_state"])
        built = encode_push_pull(
            fields["sender"], fields["join"], [encode_push_pull_entry(e) for e in entries], user
        )
        assert built == wire
        pp = decode_push_pull(wire)
        assert (pp.sender, pp.join, list(pp.entries), pp.user_state) == (
            fields["sender"],
            fields["join"],
            entries,
            user,
        )
    else:
        msg = message(kind, fields)
        assert encode(msg) == wire
        assert decode_packet(wire, LIMIT) == ([msg], 0)


def test_golden_alive_signatures_verify():
    verifier = AliveVerifier()
    alives = [message("alive", v["fields"]) for v in _vectors() if v["kind"] == "alive"]
    assert alives and all(verifier.verify(a) for a in alives)


def _extra(key):
    return json.loads(VECTORS.read_text())[key]


@pytest.mark.parametrize("vector", _extra("decode_only"), ids=lambda v: v["name"])
def test_golden_other_encodings_are_accepted(vector):
    msgs, unknown = decode_packet(bytes.fromhex(vector["msgpack_hex"]), LIMIT)
    assert (len(msgs), unknown) == (vector["messages"], vector["unknown"])
    assert b"".join(encode(m) for m in msgs).hex() == vector["canonical_hex"]
    verifier = AliveVerifier()
    assert all(verifier.verify(m) for m in msgs if isinstance(m, Alive))


@pytest.mark.parametrize("vector", _extra("malformed"), ids=lambda v: v["name"])
def test_golden_malformed_datagrams_are_rejected(vector):
    with pytest.raises(MembershipDecodeError):
        decode_packet(bytes.fromhex(vector["msgpack_hex"]), LIMIT)


def test_every_message_type_has_a_vector():
    kinds = {v["kind"] for v in _vectors()}
    assert kinds == {
        "ping",
        "indirect_ping",
        "ack",
        "nack",
        "suspect",
        "alive",
        "dead",
        "user",
        "compound",
        "push_pull",
    }
    assert {int(t) for t in MessageType} == set(range(10))


SAMPLES = [
    Ping(7, NODE, NODE),
    IndirectPing(9, NODE, ("10.1.2.3", 7946), NODE, False),
    Ack(0),
    Nack(4294967295),
    Suspect(NODE, 2**64 - 1, NODE),
    sign_alive(KEY, NODE, ("h", 1), 5, b"m" * MAX_META_BYTES),
    Dead(NODE, 0, NODE),
    User(NODE, b"\x00" * 100),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_and_every_truncation_is_rejected(msg):
    wire = encode(msg)
    assert decode_packet(wire, LIMIT) == ([msg], 0)
    for cut in range(len(wire)):
        with pytest.raises(MembershipDecodeError):
            decode_packet(wire[:cut], LIMIT)
    with pytest.raises(MembershipDecodeError):
        decode_packet(wire + b"\x00", LIMIT)  # trailing data


def test_a_signed_alive_with_the_largest_meta_fits_a_sealed_datagram():
    alive = sign_alive(KEY, NODE, ("x" * 253, 65535), 2**64 - 1, b"m" * MAX_META_BYTES)
    assert len(encode(alive)) + len(encode(Ping(2**32 - 1, NODE, NODE))) + 5 <= LIMIT - 64


def test_compound_of_all_types_round_trips():
    wire = encode_compound([encode(m) for m in SAMPLES])
    msgs, unknown = decode_packet(wire, 4096)
    assert msgs == SAMPLES and unknown == 0


def test_unknown_types_are_skipped_and_counted_trailing_fields_ignored():
    newer = msgpack.packb([200, "future"])
    ack_with_extra = msgpack.packb([2, 5, "added in 1.1"])
    msgs, unknown = decode_packet(encode_compound([newer, ack_with_extra]), LIMIT)
    assert msgs == [Ack(5)] and unknown == 1


@pytest.mark.parametrize(
    "fields",
    [
        [2],  # too few fields
        [2, -1],  # negative seq
        [2, 2**32],  # seq beyond u32
        [2, True],  # a boolean is not an integer
        [2, "1"],
        [0, 1, "x" * 65, NODE],  # target too long
        [0, 1, "", ""],  # empty source
        [5, NODE, "h", 70000, 1, b"", b"s" * 64],  # port out of range
        [5, NODE, "h", 1, 1, b"m" * (MAX_META_BYTES + 1), b"s" * 64],  # meta too big
        [5, NODE, "h", 1, 1, b"", b"short"],  # signature length
        [5, NODE, "h", 1, 1, "meta as text", b"s" * 64],  # str where bin is required
        [7, NODE, "payload as text"],
        [1, 1, NODE, "h", 1, NODE, 1],  # want_nack not boolean
        [9, NODE, False, [], b""],  # push-pull is not a datagram message
        [8, [[8, []]]],  # nested compound
        [8, "parts"],
        ["ping"],
        [],
        {"a": 1},
        5,
    ],
)
def test_malformed_messages_raise_decode_errors(fields):
    with pytest.raises(MembershipDecodeError):
        decode_packet(msgpack.packb(fields, use_bin_type=True), LIMIT)


def test_oversized_and_too_many_parts_are_rejected():
    with pytest.raises(MembershipDecodeError):
        decode_packet(b"\x00" * (LIMIT + 1), LIMIT)
    many = msgpack.packb([8, [[2, 1]] * (MAX_COMPOUND_PARTS + 1)])
    with pytest.raises(MembershipDecodeError):
        decode_packet(many, 1 << 20)
    with pytest.raises(ValueError):
        encode_compound([b"\x92\x02\x01"] * (MAX_COMPOUND_PARTS + 1))


@given(st.binary(max_size=2000))
def test_random_bytes_decode_or_raise_only_decode_errors(data):
    try:
        decode_packet(data, LIMIT)
    except DecodeError:
        pass
    try:
        decode_push_pull(data)
    except DecodeError:
        pass


_leaf = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.booleans(),
    st.none(),
    st.text(max_size=70),
    st.binary(max_size=70),
)
_tree = st.recursive(_leaf, lambda c: st.lists(c, max_size=9), max_leaves=40)


@given(st.integers(min_value=0, max_value=9), st.lists(_tree, max_size=9))
def test_random_structured_messages_decode_or_raise_only_decode_errors(kind, rest):
    wire = msgpack.packb([kind, *rest], use_bin_type=True)
    try:
        decode_packet(wire, LIMIT)
    except DecodeError:
        pass
    try:
        decode_push_pull(wire)
    except DecodeError:
        pass


def test_push_pull_round_trip_and_hostile_states():
    alive = sign_alive(KEY, NODE, ("10.0.0.1", 7946), 3, b"meta")
    entries = [PushPullEntry(alive, MemberState.SUSPECT, 4)]
    wire = encode_push_pull(NODE, False, [encode_push_pull_entry(e) for e in entries], b"dir")
    pp = decode_push_pull(wire)
    assert pp.entries == tuple(entries) and pp.user_state == b"dir" and not pp.join
    bad_state = msgpack.packb(
        [9, NODE, False, [[NODE, "h", 1, 3, b"", b"s" * 64, 9, 3]], b""], use_bin_type=True
    )
    with pytest.raises(MembershipDecodeError):
        decode_push_pull(bad_state)
    for cut in range(0, len(wire), 7):
        with pytest.raises(MembershipDecodeError):
            decode_push_pull(wire[:cut])


def test_forged_and_tampered_alives_do_not_verify():
    verifier = AliveVerifier()
    good = sign_alive(KEY, NODE, ("10.0.0.1", 7946), 3, b"m")
    assert verifier.verify(good)
    assert verifier.verify(good)  # cached
    assert verifier.verified == 1
    other = KeyPair(Prefix.SERVER, bytes(range(1, 33)))
    forged = sign_alive(other, NODE, ("10.0.0.1", 7946), 4, b"m")  # signed by someone else
    assert not verifier.verify(forged)
    tampered = Alive(NODE, ("10.0.0.9", 7946), 3, b"m", good.signature)
    assert not verifier.verify(tampered)
    not_a_key = Alive("N" * 56, ("h", 1), 1, b"", good.signature)
    assert not verifier.verify(not_a_key)
    actor = KeyPair(Prefix.MODULE, bytes(range(32)))
    by_actor = sign_alive(actor, actor.public_key, ("h", 1), 1, b"")
    assert not verifier.verify(by_actor)  # only host (N...) keys speak for hosts
