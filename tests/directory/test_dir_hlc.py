"""Hybrid logical clock: monotonic under any physical clock, causal, drift-bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.directory.hlc import MAX_DRIFT_MS, MAX_LOGICAL, MAX_WALL_MS, HybridClock, Stamp
from meshhost.errors import ClockDriftError, DecodeError, LocalProtocolError, RemoteProtocolError

T0 = 1_764_000_000_000


def test_stamps_follow_physical_time_when_it_advances():
    c = HybridClock("NA")
    assert c.now(T0) == Stamp(T0, 0, "NA")
    assert c.now(T0 + 5) == Stamp(T0 + 5, 0, "NA")


def test_logical_counter_orders_events_in_the_same_millisecond_and_when_time_goes_back():
    c = HybridClock("NA")
    a, b, back = c.now(T0), c.now(T0), c.now(T0 - 10_000)
    assert a < b < back
    assert back.wall_ms == T0 and back.logical == 2


def test_logical_overflow_borrows_the_next_millisecond():
    c = HybridClock("NA")
    c.restore(Stamp(T0, MAX_LOGICAL, "NB"))
    assert c.now(T0) == Stamp(T0 + 1, 0, "NA")


def test_observe_makes_later_local_stamps_exceed_the_remote_one():
    c = HybridClock("NA")
    remote = Stamp(T0 + 1000, 7, "NZ")
    c.observe(remote, T0)
    assert c.now(T0) > remote


def test_observe_refuses_stamps_beyond_the_drift_bound_and_keeps_the_clock():
    c = HybridClock("NA")
    before = c.now(T0)
    far = Stamp(T0 + MAX_DRIFT_MS + 1, 0, "NB")
    with pytest.raises(ClockDriftError, match="ahead of our clock") as info:
        c.observe(far, T0)
    assert isinstance(info.value, RemoteProtocolError)
    assert c.last == before
    c.observe(Stamp(T0 + MAX_DRIFT_MS, 0, "NB"), T0)  # exactly at the bound is fine
    assert c.last.wall_ms == T0 + MAX_DRIFT_MS


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("now"), st.integers(-5_000, 5_000)),
            st.tuples(st.just("observe"), st.integers(-5_000, 120_000), st.integers(0, 50)),
        ),
        max_size=60,
    )
)
def test_clock_is_strictly_monotonic_under_skew_and_jumps(steps):
    """Physical time jumps back and forth; peers are skewed; stamps only grow."""
    c = HybridClock("NM")
    physical = T0
    highest_physical = T0
    last = None
    seen_remote: list[Stamp] = []
    for step in steps:
        if step[0] == "now":
            physical += step[1]
            highest_physical = max(highest_physical, physical)
            stamp = c.now(physical)
            assert last is None or stamp > last
            assert all(stamp > r for r in seen_remote)
            # bounded drift: never ahead of the highest time seen (ours or a peer's)
            assert stamp.wall_ms <= max([highest_physical, *(r.wall_ms for r in seen_remote)])
            last = stamp
        else:
            remote = Stamp(physical + step[1], step[2], "NR")
            try:
                c.observe(remote, physical)
                seen_remote.append(remote)
            except ClockDriftError:
                assert step[1] > MAX_DRIFT_MS


@given(st.integers(0, (1 << 48) - 1), st.integers(0, MAX_LOGICAL), st.text(max_size=8))
def test_packed_form_round_trips_and_orders_like_the_stamp(wall, logical, node):
    s = Stamp(wall, logical, node)
    assert Stamp.unpack(s.packed(), node) == s
    if (wall, logical) != (MAX_WALL_MS, MAX_LOGICAL):
        assert s.successor(node) > s
    assert s.successor(node + "\uffff") > s


def test_nothing_orders_after_the_last_stamp():
    with pytest.raises(LocalProtocolError, match="no stamp orders after"):
        Stamp(MAX_WALL_MS, MAX_LOGICAL, "NB").successor("NA")


def test_invalid_stamps_are_rejected_with_typed_errors():
    with pytest.raises(LocalProtocolError):
        Stamp(-1, 0, "N")
    with pytest.raises(LocalProtocolError):
        Stamp(0, MAX_LOGICAL + 1, "N")
    for bad in (-1, 1 << 64, "1", 1.0, True):
        with pytest.raises(DecodeError):
            Stamp.unpack(bad, "N")
    with pytest.raises(DecodeError):
        Stamp.unpack(1, b"N")
