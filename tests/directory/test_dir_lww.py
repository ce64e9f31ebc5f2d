"""LWW map merge laws: commutative, associative, idempotent; tombstones by stamp."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshhost.directory.codec import LwwEntry
from meshhost.directory.hlc import Stamp
from meshhost.directory.lww import LwwMap

entries = st.builds(
    LwwEntry,
    ns=st.sampled_from(["link", "config"]),
    key=st.sampled_from(["a", "b", "c"]),
    stamp=st.builds(
        Stamp,
        wall_ms=st.integers(0, 4),
        logical=st.integers(0, 2),
        node=st.sampled_from(["NA", "NB", "NC"]),
    ),
    value=st.one_of(st.none(), st.integers(0, 3), st.text(max_size=2), st.binary(max_size=2)),
)


def merged(items) -> dict:
    m = LwwMap()
    for e in items:
        m.merge(e)
    return m.snapshot()


@given(st.lists(entries, max_size=25), st.randoms(use_true_random=False))
def test_any_order_and_duplication_of_deltas_converges(items, rnd):
    reference = merged(items)
    shuffled = items + rnd.sample(items, k=len(items) // 2)  # duplicates
    rnd.shuffle(shuffled)
    assert merged(shuffled) == reference


@given(
    st.lists(entries, max_size=12), st.lists(entries, max_size=12), st.lists(entries, max_size=12)
)
def test_merge_of_states_is_associative_and_commutative(a, b, c):
    def state_merge(*maps):
        out = LwwMap()
        for m in maps:
            for e in m.entries():
                out.merge(e)
        return out

    ma, mb, mc = (_map(x) for x in (a, b, c))
    left = state_merge(state_merge(ma, mb), mc)
    right = state_merge(ma, state_merge(mb, mc))
    assert left.snapshot() == right.snapshot()
    assert state_merge(ma, mb).snapshot() == state_merge(mb, ma).snapshot()
    assert state_merge(ma, ma).snapshot() == ma.snapshot()


def _map(items) -> LwwMap:
    m = LwwMap()
    for e in items:
        m.merge(e)
    return m


@given(entries, st.integers(0, 3), st.integers(0, 3))
def test_tombstone_wins_over_every_older_put_and_loses_to_newer(put, dw, dl):
    put_stamp = put.stamp
    tomb = LwwEntry(
        put.ns, put.key, Stamp(put_stamp.wall_ms + dw, put_stamp.logical + dl + 1, "NA"), None
    )
    for order in ([put, tomb], [tomb, put]):
        m = _map(order)
        assert m.get(put.ns, put.key) is None
        assert m.entry(put.ns, put.key) == tomb
    later = LwwEntry(put.ns, put.key, Stamp(tomb.stamp.wall_ms + 1, 0, "NA"), "back")
    for order in ([tomb, later], [later, tomb]):
        assert _map(order).get(put.ns, put.key) == "back"


def test_items_lists_live_values_of_one_namespace_sorted():
    m = _map(
        [
            LwwEntry("config", "b", Stamp(1, 0, "N"), "2"),
            LwwEntry("config", "a", Stamp(1, 0, "N"), "1"),
            LwwEntry("config", "gone", Stamp(1, 0, "N"), None),
            LwwEntry("link", "x", Stamp(1, 0, "N"), {}),
        ]
    )
    assert m.items("config") == [("a", "1"), ("b", "2")]
    assert m.items("nothing") == []
    assert len(m) == 4


def test_collect_drops_only_tombstones_older_than_the_horizon():
    m = _map(
        [
            LwwEntry("config", "old-tomb", Stamp(100, 0, "N"), None),
            LwwEntry("config", "new-tomb", Stamp(900, 0, "N"), None),
            LwwEntry("config", "old-put", Stamp(100, 0, "N"), "kept"),
        ]
    )
    dropped = m.collect(before_wall_ms=500)
    assert [e.key for e in dropped] == ["old-tomb"]
    assert m.entry("config", "new-tomb") is not None
    assert m.get("config", "old-put") == "kept"
    assert len(m) == 2


def test_equal_stamps_with_different_values_still_pick_one_winner_everywhere():
    s = Stamp(5, 0, "NA")
    a, b = LwwEntry("c", "k", s, "x"), LwwEntry("c", "k", s, "y")
    assert _map([a, b]).snapshot() == _map([b, a]).snapshot()
