"""Scuttlebutt host state: owner-only writes, digests/deltas, convergence, forgetting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshhost.directory.codec import HostEntry, HostSection
from meshhost.directory.hoststate import MAX_OWN_TOMBSTONES, HostStateMap

ops = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.one_of(st.none(), st.integers(0, 4))),
    max_size=30,
)


def owner_history(operations, *, restart_at=None):
    """Run ``operations`` on an owner; returns (final owner, every message it could send)."""
    owner = HostStateMap("NO", generation=10)
    messages: list[HostSection] = []
    for i, (key, value) in enumerate(operations):
        if restart_at is not None and i == restart_at:
            owner = HostStateMap("NO", generation=20)  # restarted: fresh state, newer life
        section = owner.set(key, value)
        if section is not None:
            messages.append(section)
        if i % 4 == 3:
            messages.extend(owner.full())  # a push-pull snapshot at this point
    return owner, messages


def view_of(m: HostStateMap, owner: str = "NO"):
    return m.generation_of(owner), dict(m.items(owner))


@given(ops, st.randoms(use_true_random=False), st.booleans())
def test_any_order_and_duplication_of_deltas_converges(operations, rnd, restart):
    restart_at = len(operations) // 2 if restart else None
    owner, messages = owner_history(operations, restart_at=restart_at)
    receivers = []
    for _ in range(2):
        r = HostStateMap("NR", generation=1)
        stream = messages + rnd.sample(messages, k=len(messages) // 2)
        rnd.shuffle(stream)
        for section in stream:
            r.apply(section)
        receivers.append(r)
    if not messages:
        return
    final = owner.full()
    for r in receivers:
        for section in final:  # anti-entropy at the end
            r.apply(section)
        assert view_of(r) == view_of(owner)
        assert r.digest()["NO"] == owner.digest()["NO"]
    assert receivers[0].snapshot() == receivers[1].snapshot()


@given(ops, st.randoms(use_true_random=False))
def test_watermark_never_claims_more_than_was_received_and_delta_fills_the_gap(operations, rnd):
    owner, messages = owner_history(operations)
    r = HostStateMap("NR", generation=1)
    changed_at = {
        s.upto: s.entries[0].key for s in messages if len(s.entries) == 1 and s.since + 1 == s.upto
    }
    for section in rnd.sample(messages, k=len(messages) // 2):
        r.apply(section)
        _, watermark = r.digest().get("NO", (None, 0))
        assert watermark <= owner.version
        held = r.snapshot().get("NO", (0, {}))[1]
        for version in range(1, watermark + 1):
            # the key changed at that version is here, at that version or newer
            assert held[changed_at[version]][0] >= version
    delta = owner.delta(r.digest())
    for section in delta:
        r.apply(section)
    if messages:
        assert view_of(r) == view_of(owner)
        assert owner.delta(r.digest()) == []


def test_only_the_owner_writes_its_state():
    me = HostStateMap("NA", generation=5)
    me.set("addr", "10.0.0.1:7000")
    forged = HostSection("NA", 5, 0, 9, (HostEntry("addr", 9, "6.6.6.6:1"),))
    assert not me.apply(forged)
    assert me.get("NA", "addr") == "10.0.0.1:7000"
    assert me.newer_self(forged)  # the directory reacts by starting a newer life


def test_unchanged_values_and_deleting_missing_keys_cost_no_version():
    me = HostStateMap("NA", generation=5)
    assert me.set("load", 1.0) is not None
    assert me.set("load", 1.0) is None
    assert me.set("missing", None) is None
    assert me.version == 1


def test_newer_generation_replaces_everything_known_about_the_owner():
    r = HostStateMap("NR", generation=1)
    r.apply(HostSection("NO", 10, 0, 2, (HostEntry("actor/M1", 1, {}), HostEntry("addr", 2, "x"))))
    result = r.apply(HostSection("NO", 11, 0, 1, (HostEntry("addr", 1, "y"),)))
    assert result.new_generation
    assert set(result.removed_keys) == {"actor/M1"}
    assert dict(r.items("NO")) == {"addr": "y"}
    assert not r.apply(HostSection("NO", 10, 0, 5, (HostEntry("actor/M9", 5, {}),)))  # old life


def test_forgotten_host_does_not_come_back_from_stale_gossip():
    r = HostStateMap("NR", generation=1)
    r.apply(HostSection("NO", 10, 0, 1, (HostEntry("actor/M1", 1, {}),)))
    assert r.forget("NO") == ("actor/M1",)
    assert "NO" not in r
    stale = HostSection("NO", 10, 1, 2, (HostEntry("actor/M2", 2, {}),))
    assert not r.apply(stale)  # even a version we never saw, from the same life
    assert "NO" not in r
    restarted = HostSection("NO", 12, 0, 1, (HostEntry("addr", 1, "a"),))
    assert r.apply(restarted)  # a new life of the host is welcome
    assert dict(r.items("NO")) == {"addr": "a"}


def test_allow_lifts_the_block_when_the_same_process_is_alive_again():
    r = HostStateMap("NR", generation=1)
    r.apply(HostSection("NO", 10, 0, 1, (HostEntry("addr", 1, "a"),)))
    r.forget("NO")
    r.allow("NO")
    assert r.apply(HostSection("NO", 10, 0, 1, (HostEntry("addr", 1, "a"),)))


def test_forgetting_an_unknown_host_blocks_gossip_up_to_the_given_generation():
    r = HostStateMap("NR", generation=1)
    assert r.forget("NX", block_below=500) == ()
    assert not r.apply(HostSection("NX", 400, 0, 1, (HostEntry("addr", 1, "a"),)))
    assert r.apply(HostSection("NX", 600, 0, 1, (HostEntry("addr", 1, "a"),)))
    assert r.forget("NR") == ()  # never forget ourselves


def test_too_many_tombstones_compact_into_a_new_generation():
    me = HostStateMap("NA", generation=5)
    me.set("addr", "x")
    for i in range(MAX_OWN_TOMBSTONES + 1):
        me.set(f"actor/M{i}", {"id": f"M{i}"})
        me.set(f"actor/M{i}", None)
    assert me.needs_compaction()
    sections = me.new_generation(at_least=7)
    assert me.generation == 7 and me.version == 1
    assert not me.needs_compaction()
    assert [s.entries[0].key for s in sections] == ["addr"]
    r = HostStateMap("NR", generation=1)
    for s in sections:
        r.apply(s)
    assert dict(r.items("NA")) == {"addr": "x"}
