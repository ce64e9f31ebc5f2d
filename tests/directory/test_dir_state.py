"""The Directory core: API, events, queries, membership hooks, delegate behaviour."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshhost.capabilities.links import LinkDefinition
from meshhost.directory import (
    ActorLocation,
    ActorsChanged,
    ActorSummary,
    ClockSkewDetected,
    ConfigChanged,
    Directory,
    DirectoryConfig,
    EntryChanged,
    HostRemoved,
    HostStateChanged,
    LinkDeleted,
    LinkPut,
    PeerMisbehaved,
    ProviderRecord,
)
from meshhost.directory.codec import LwwDelta, LwwEntry, decode_state, encode
from meshhost.directory.hlc import MAX_DRIFT_MS, MAX_LOGICAL, MAX_WALL_MS, Stamp
from meshhost.directory.links import link_key, parse_link_key
from meshhost.errors import DirectoryDecodeError, DirectoryValueError

NA, NB, NC = ("N" + c * 55 for c in "ABC")
ACTOR = "M" + "X" * 55
ECHO = ActorSummary(ACTOR, "echo", ("wasmcloud:keyvalue",), "demo/echo", "A" * 56)


def events(d: Directory) -> list:
    out = []
    while (e := d.next_event()) is not None:
        out.append(e)
    return out


def gossip(src: Directory, dst: Directory, limit: int = 1100, rounds: int = 50) -> None:
    for _ in range(rounds):
        payloads = src.broadcasts(limit)
        if not payloads:
            return
        for p in payloads:
            dst.notify_message(src.host_id, p)


def push_pull(a: Directory, b: Directory) -> None:
    b.merge_remote_state(a.host_id, a.local_state())
    a.merge_remote_state(b.host_id, b.local_state())


@pytest.fixture
def pair(clock):
    return Directory(NA, clock=clock), Directory(NB, clock=clock)


def test_actor_location_reaches_a_peer_and_answers_router_queries(pair, clock):
    a, b = pair
    a.set_address("10.0.0.1:4000")
    a.set_load(0.5)
    a.set_actor(ECHO, 3)
    events(b)
    gossip(a, b)
    assert b.hosts_running(ACTOR) == [ActorLocation(NA, 3, 0.5, "10.0.0.1:4000")]
    assert b.actor_by_alias("demo/echo") == ECHO
    assert b.actor(ACTOR) == ECHO
    assert b.actor_by_alias("nope") is None
    got = events(b)
    assert ActorsChanged(NA) in got
    assert any(isinstance(e, HostStateChanged) and "addr" in e.keys for e in got)
    view = b.host(NA)
    assert view is not None and view.actors[ACTOR] == (ECHO, 3) and view.addr == "10.0.0.1:4000"
    assert b.hosts() == sorted([NA, NB])
    clock.advance(10)
    a.set_load(2.0)
    a.set_address("10.0.0.9:4000")
    a.set_actor(ECHO, 5)
    gossip(a, b)
    assert b.hosts_running(ACTOR) == [ActorLocation(NA, 5, 2.0, "10.0.0.9:4000")]
    b.hosts_running(ACTOR).clear()  # callers get a copy
    assert len(b.hosts_running(ACTOR)) == 1


def test_locations_is_one_object_until_the_actors_hosts_change(pair, clock):
    # the caller's _locate reuses its candidates while this identity holds
    a, b = pair
    a.set_actor(ECHO, 1)
    gossip(a, b)
    first = b.locations(ACTOR)
    assert [(loc.host_id, loc.instances) for loc in first] == [(NA, 1)]
    assert b.locations(ACTOR) is first and b.hosts_running(ACTOR) == list(first)
    clock.advance(10)
    a.set_actor(ECHO, 2)
    gossip(a, b)
    second = b.locations(ACTOR)
    assert second is not first and second[0].instances == 2
    clock.advance(10)
    a.set_load(1.5)
    gossip(a, b)
    assert b.locations(ACTOR) is not second and b.locations(ACTOR)[0].load == 1.5


def test_asking_about_unknown_actors_caches_nothing(pair):
    # a caller (or a peer naming bogus targets) must not grow the directory
    a, b = pair
    a.set_actor(ECHO, 1)
    gossip(a, b)
    for i in range(2000):
        bogus = f"M{i:055d}"
        assert b.locations(bogus) == () and b.actor(bogus) is None
    index = b._actors
    assert set(index._locations) <= {ACTOR} and set(index._summaries) <= {ACTOR}
    assert b.actor(ACTOR) is not None and len(b.locations(ACTOR)) == 1


def test_stopping_an_actor_removes_the_location_everywhere(pair):
    a, b = pair
    a.set_actor(ECHO, 2)
    gossip(a, b)
    a.set_actor(ECHO, 0)
    gossip(a, b)
    assert b.hosts_running(ACTOR) == []
    assert a.hosts_running(ACTOR) == []


def test_providers_labels_and_version_appear_in_the_host_view(pair):
    a, b = pair
    a.set_provider(ProviderRecord("V" + "K" * 55, "wasmcloud:keyvalue", "default", "kv"))
    a.set_labels({"zone": "east"})
    a.set_version("0.1.0")
    gossip(a, b)
    view = b.host(NA)
    assert view.labels == {"zone": "east"} and view.version == "0.1.0"
    assert b.host_labels() == {NA: {"zone": "east"}, NB: {}}
    assert [p.contract_id for p in view.providers] == ["wasmcloud:keyvalue"]
    a.remove_provider("V" + "K" * 55)
    gossip(a, b)
    assert b.host(NA).providers == ()


def test_link_put_and_delete_spread_with_events(pair):
    a, b = pair
    link = LinkDefinition(ACTOR, "wasmcloud:keyvalue", "default", "VKV", {"URL": "redis://"})
    a.put_link(link)
    assert events(a) == [LinkPut(link)]
    gossip(a, b)
    assert b.links() == [link]
    assert b.link(ACTOR, "wasmcloud:keyvalue") == link
    assert events(b) == [LinkPut(link)]
    assert b.delete_link(ACTOR, "wasmcloud:keyvalue", "")  # "" means default
    gossip(b, a)
    assert a.links() == []
    assert events(a) == [LinkDeleted(ACTOR, "wasmcloud:keyvalue", "default")]


def test_config_and_manifest_namespaces(pair):
    a, b = pair
    a.config_put("db", {"url": "sqlite://x"})
    a.put("manifest", "shop/v1", b"{}")
    gossip(a, b)
    assert b.config_get("db") == {"url": "sqlite://x"}
    assert b.items("manifest") == [("shop/v1", b"{}")]
    got = events(b)
    assert ConfigChanged("db", {"url": "sqlite://x"}) in got
    assert EntryChanged("manifest", "shop/v1", b"{}") in got
    assert a.config_delete("db") and not a.config_delete("never-set")
    gossip(a, b)
    assert b.config_get("db") is None
    assert ConfigChanged("db", None) in events(b)


def test_a_large_manifest_travels_in_pieces_that_fit_a_packet(clock):
    a = Directory(NA, clock=clock)
    b = Directory(NB, clock=clock)
    manifest = bytes(random.Random(1).randbytes(20_000))
    a.put("manifest", "big/v1", manifest)
    sizes = []
    for _ in range(400):
        payloads = a.broadcasts(1100)
        if not payloads:
            break
        sizes.extend(len(p) for p in payloads)
        for p in reversed(payloads):  # out of order on purpose
            b.notify_message(NA, p)
    assert max(sizes) <= a.config.piggyback_bytes
    assert b.get("manifest", "big/v1") == manifest


def test_a_write_supersedes_a_value_stamped_by_a_clock_far_ahead(clock):
    a = Directory(NA, clock=clock)
    future = Stamp(int(clock() * 1000) + 10 * 60_000, 0, NB)  # 10 minutes ahead
    a.notify_message(NB, encode(LwwDelta((LwwEntry("config", "k", future, "from the future"),))))
    assert a.config_get("k") == "from the future"  # merged: every host orders it the same
    got = events(a)
    assert any(isinstance(e, ClockSkewDetected) and e.writer == NB for e in got)
    assert a.clock.last.wall_ms < future.wall_ms - MAX_DRIFT_MS  # our clock did not follow
    stamp = a.config_put("k", "now")
    assert stamp > future and a.config_get("k") == "now"
    assert a.delete("config", "k") and a.config_get("k") is None


def test_dead_hosts_leave_and_stale_gossip_does_not_bring_them_back(clock):
    a, b, c = (Directory(n, clock=clock) for n in (NA, NB, NC))
    a.set_actor(ECHO, 1)
    gossip(a, b)
    push_pull(a, c)
    events(b)
    b.forget_host(NA)  # membership: MemberDead(NA)
    assert b.hosts_running(ACTOR) == [] and NA not in b.hosts()
    got = events(b)
    assert ActorsChanged(NA) in got and HostRemoved(NA) in got
    push_pull(c, b)  # c has not heard yet: its state still holds NA
    assert b.hosts_running(ACTOR) == []
    assert b.pending_broadcasts == 0 or all(NA.encode() not in p for p in b.broadcasts(65_000))
    b.host_alive(NA)  # membership: MemberJoined(NA), the same process came back
    push_pull(a, b)
    assert [loc.host_id for loc in b.hosts_running(ACTOR)] == [NA]


def test_a_restarted_host_replaces_its_old_life(clock):
    a1, b = Directory(NA, clock=clock), Directory(NB, clock=clock)
    a1.set_actor(ECHO, 1)
    gossip(a1, b)
    clock.advance(5)
    a2 = Directory(NA, clock=clock)  # restarted: no actors yet
    a2.set_address("10.0.0.1:1")
    gossip(a2, b)
    assert b.hosts_running(ACTOR) == []
    assert b.host(NA).addr == "10.0.0.1:1"


def test_a_host_restarted_with_a_clock_gone_back_starts_a_newer_life(clock):
    a1, b = Directory(NA, clock=clock), Directory(NB, clock=clock)
    a1.set_actor(ECHO, 1)
    gossip(a1, b)
    clock.advance(-3600)
    a2 = Directory(NA, clock=clock)
    a2.set_address("x:1")
    gossip(a2, b)
    assert b.host(NA).addr == ""  # b keeps the life it believes newer
    push_pull(b, a2)  # a2 sees that peers remember a newer life of itself
    gossip(a2, b)
    assert b.host(NA).addr == "x:1" and b.hosts_running(ACTOR) == []


@given(st.binary(max_size=300))
@settings(max_examples=200)
def test_bad_bytes_from_peers_never_raise_and_are_reported(data):
    d = Directory(NA, clock=lambda: 1000.0)
    d.notify_message(NB, data)
    d.notify_message(NB, bytearray(data))
    d.notify_message(NB, "not bytes")  # type: ignore[arg-type]
    d.merge_remote_state(NB, data)
    assert d.bad_messages >= 2
    got = events(d)
    assert any(isinstance(e, PeerMisbehaved) and e.sender_id == NB for e in got)


def test_broadcasts_respect_the_byte_limit_and_the_transmit_limit(clock):
    d = Directory(
        NA, clock=clock, config=DirectoryConfig(broadcast_overhead_bytes=10), member_count=lambda: 9
    )
    for i in range(20):
        d.config_put(f"key-{i}", "v" * 50)
    batch = d.broadcasts(300)
    assert batch and sum(len(p) + 10 for p in batch) <= 300
    sent = 0
    while d.broadcasts(65_000):
        sent += 1
    assert sent <= 4 * 1  # retransmit_mult * ceil(log10(9 + 1)) = 4
    assert d.pending_broadcasts == 0


def test_newest_value_of_a_key_replaces_the_queued_older_one(clock):
    d = Directory(NA, clock=clock)
    for zone in ("a", "b", "c"):
        d.set_labels({"zone": zone})
    assert d.pending_broadcasts == 1
    b = Directory(NB, clock=clock)
    gossip(d, b)
    assert b.host(NA).labels == {"zone": "c"}


def test_load_is_published_at_most_every_interval_and_the_last_value_wins(clock):
    d = Directory(NA, clock=clock, config=DirectoryConfig(load_interval_s=2.0))
    b = Directory(NB, clock=clock)
    assert d.set_load(0.5)
    assert not d.set_load(0.7) and not d.set_load(0.9)  # too soon: held back
    gossip(d, b)
    assert b.host(NA).load == 0.5
    clock.advance(1.0)
    d.tick()
    gossip(d, b)
    assert b.host(NA).load == 0.5
    clock.advance(1.0)
    d.tick()  # the interval passed: the newest held value goes out
    gossip(d, b)
    assert b.host(NA).load == 0.9
    clock.advance(5.0)
    assert not d.set_load(0.9001)  # rounds to the published value: nothing to send
    assert d.pending_broadcasts == 0


def test_invalid_writes_raise_actionable_errors(clock):
    d = Directory(NA, clock=clock)
    with pytest.raises(DirectoryValueError, match="use delete"):
        d.put("config", "k", None)
    with pytest.raises(DirectoryValueError, match="cannot be stored"):
        d.put("config", "k", {1, 2})
    with pytest.raises(DirectoryValueError, match="key must be"):
        d.put("config", "", "v")
    with pytest.raises(DirectoryValueError, match="limit is"):
        d.put("manifest", "huge", b"x" * 300_000)
    with pytest.raises(DirectoryValueError, match="fit one gossip packet"):
        d.set_labels({f"k{i}": "v" * 20 for i in range(50)})
    with pytest.raises(DirectoryValueError, match="must not contain '/'"):
        d.put_link(LinkDefinition("M/1", "wasmcloud:keyvalue"))


def test_tombstones_are_collected_after_the_horizon(clock):
    d = Directory(NA, clock=clock, config=DirectoryConfig(tombstone_horizon_s=60.0))
    d.config_put("k", "v")
    d.config_delete("k")
    d.tick()
    assert d.stamp_of("config", "k") is not None
    clock.advance(61)
    d.tick()
    assert d.stamp_of("config", "k") is None


ops = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["put", "del", "actor", "load"]),
        st.sampled_from(["a", "b"]),
        st.integers(0, 3),
        st.floats(0, 2),
    ),
    max_size=25,
)


@given(ops, st.randoms(use_true_random=False))
@settings(max_examples=60)
def test_directories_converge_whatever_subset_and_order_of_messages_arrives(steps, rnd):
    t = [1000.0]
    ds = [Directory(n, clock=lambda: t[0]) for n in (NA, NB, NC)]
    inflight: list[tuple[int, bytes]] = []
    for who, op, key, val, dt in steps:
        t[0] += dt
        d = ds[who]
        if op == "put":
            d.config_put(key, val)
        elif op == "del":
            d.config_delete(key)
        elif op == "actor":
            d.set_actor(ActorSummary("M" + key * 55), val)
        else:
            d.set_load(val)
        inflight.extend((who, p) for p in d.broadcasts(1100))
        if inflight and rnd.random() < 0.5:  # deliver some, duplicated and reordered
            for src, p in rnd.sample(inflight, k=min(3, len(inflight))):
                ds[rnd.choice([i for i in range(3) if i != src])].notify_message(ds[src].host_id, p)
    for a in ds:
        for b in ds:
            if a is not b:
                push_pull(a, b)
    snaps = [d.snapshot() for d in ds]
    assert snaps[0] == snaps[1] == snaps[2]
    assert ds[0].hosts_running("M" + "a" * 55) == ds[2].hosts_running("M" + "a" * 55)


def test_digest_driven_sync_sends_only_what_the_peer_lacks(clock):
    a, b, c = (Directory(n, clock=clock) for n in (NA, NB, NC))
    a.set_actor(ECHO, 1)
    a.set_address("10.0.0.1:1")
    c.set_address("10.0.0.3:1")
    push_pull(a, b)
    push_pull(c, b)
    a.set_load(0.7)  # b missed this one
    answer = a.answer_sync(b.sync_request())
    state = decode_state(answer)
    by_owner = {s.owner: s for s in state.hosts}
    assert [e.key for e in by_owner[NA].entries] == ["load"]  # only the missing change
    assert set(by_owner) == {NA}  # b is up to date on itself; a never heard of c
    b.merge_sync_answer(NA, answer)
    assert b.host(NA).load == 0.7
    again = a.answer_sync(b.sync_request())
    assert again == a.answer_sync(b.sync_request())  # answering changes nothing
    with pytest.raises(DirectoryDecodeError):
        a.answer_sync(b"\xc1")


def test_membership_liveness_lifts_a_forget_block_before_host_alive_is_called(clock):
    a, b = Directory(NA, clock=clock), Directory(NB, clock=clock)
    a.set_actor(ECHO, 1)
    push_pull(a, b)
    b.forget_host(NA)
    live: set[str] = set()
    b.attach_membership(is_live=live.__contains__)
    push_pull(a, b)
    assert b.hosts_running(ACTOR) == []  # membership still says dead: stale, ignored
    live.add(NA)  # SWIM merged the push-pull's members first: NA is alive again
    push_pull(a, b)
    assert [loc.host_id for loc in b.hosts_running(ACTOR)] == [NA]


def test_a_forged_end_of_time_stamp_cannot_crash_a_local_write(clock):
    a = Directory(NA, clock=clock)
    end = Stamp(MAX_WALL_MS, MAX_LOGICAL, NB)
    a.notify_message(NB, encode(LwwDelta((LwwEntry("config", "k", end, "stuck"),))))
    with pytest.raises(DirectoryValueError, match="cannot overwrite config/k"):
        a.config_put("k", "mine")


def test_every_piggyback_message_fits_the_configured_size(clock):
    d = Directory(NA, clock=clock)
    d.set_labels({f"label-{i}": "x" * 8 for i in range(20)})
    d.set_provider(ProviderRecord("V" + "P" * 55, "wasmcloud:httpserver", "a" * 100, "http"))
    d.set_actor(
        ActorSummary(
            ACTOR, "n" * 64, tuple(f"wasmcloud:cap{i}" for i in range(10)), "a/b", "A" * 56
        ),
        7,
    )
    d.put("manifest", "m" * 400, b"z" * 5000)  # long key and large value
    d.put("config", "c" * 500, "v")  # longest key
    sizes = []
    while batch := d.broadcasts(10_000):
        sizes.extend(len(p) for p in batch)
    assert sizes and max(sizes) <= d.config.piggyback_bytes


def test_repeated_messages_are_skipped_but_welcome_again_after_a_host_comes_back(clock):
    a, b = Directory(NA, clock=clock), Directory(NB, clock=clock)
    a.set_actor(ECHO, 1)
    payloads = a.broadcasts(10_000)
    for p in payloads * 3:
        b.notify_message(NA, p)
    assert b.duplicates == 2 * len(payloads)
    b.forget_host(NA)
    for p in payloads:
        b.notify_message(NA, p)  # stale: skipped or blocked
    assert b.hosts_running(ACTOR) == []
    b.host_alive(NA)
    for p in payloads:
        b.notify_message(NA, p)
    assert [loc.host_id for loc in b.hosts_running(ACTOR)] == [NA]


def test_alias_lookup_follows_actors_coming_and_going_on_many_hosts(clock):
    a, b, c = (Directory(n, clock=clock) for n in (NA, NB, NC))
    other = ActorSummary("M" + "Z" * 55, "other", (), "demo/echo")  # same alias, larger id
    a.set_actor(ECHO, 1)
    b.set_actor(other, 1)
    b.set_actor(ActorSummary("M" + "C" * 55, "x", (), "demo/x"), 1)
    push_pull(a, c)
    push_pull(b, c)
    assert c.actor_by_alias("demo/echo") == ECHO  # smallest id wins, on every host
    assert c.actor_by_alias("demo/x").name == "x"
    a.set_actor(ECHO, 0)
    push_pull(a, c)
    assert c.actor_by_alias("demo/echo") == other
    c.forget_host(NB)
    assert c.actor_by_alias("demo/echo") is None
    assert c.actor_by_alias("demo/x") is None and c.actor_by_alias("") is None


def test_a_host_forgotten_by_a_peer_gossips_its_state_again(clock):
    a, b, c = (Directory(n, clock=clock) for n in (NA, NB, NC))
    a.set_actor(ECHO, 1)
    gossip(a, b)
    gossip(a, c)
    assert a.pending_broadcasts == 0
    b.forget_host(NA)  # b and c declared a dead while it was cut off
    c.forget_host(NA)
    b.host_alive(NA)
    c.host_alive(NA)
    a.merge_remote_state(NB, b.local_state())  # a sees b has forgotten it
    assert a.pending_broadcasts > 0
    gossip(a, c)  # ... so a re-announces, and c (no push-pull with a) learns again
    assert [loc.host_id for loc in c.hosts_running(ACTOR)] == [NA]
    a.merge_remote_state(NC, c.local_state())  # c is up to date: nothing more to say
    assert a.pending_broadcasts == 0
    a.set_address("10.0.0.1:1")
    while a.broadcasts(10_000):  # sent, but lost on the way to c
        pass
    a.merge_remote_state(NC, c.local_state())  # c lacks only the address
    assert a.pending_broadcasts == 1


def test_pieces_of_a_large_value_are_passed_on_before_the_value_is_complete(clock):
    a, b, c = (Directory(n, clock=clock) for n in (NA, NB, NC))
    a.put("control.manifests", "shop@v1", b"m" * 5000)
    first = a.broadcasts(1100)
    for p in first:
        b.notify_message(NA, p)
        b.notify_message(NA, p)  # a repeat is not queued twice
    assert b.get("control.manifests", "shop@v1") is None  # incomplete so far
    forwarded = b.broadcasts(10_000)
    assert sorted(forwarded) == sorted(first)
    while batch := a.broadcasts(10_000):  # the other pieces reach c directly
        for p in batch:
            if p not in first:
                c.notify_message(NA, p)
    assert c.get("control.manifests", "shop@v1") is None  # c missed the first pieces ...
    for p in forwarded:
        c.notify_message(NB, p)  # ... and gets them from b
    assert c.get("control.manifests", "shop@v1") == b"m" * 5000


def test_a_link_to_a_call_alias_is_stored_gossiped_and_deleted(pair):
    """wasmCloud call aliases contain '/': a link naming one as its contract id works."""
    a, b = pair
    link = LinkDefinition(ACTOR, "wasmcloud/echo", "default")
    a.put_link(link)
    assert events(a) == [LinkPut(link)]
    gossip(a, b)
    assert b.links() == [link] and b.link(ACTOR, "wasmcloud/echo") == link
    assert events(b) == [LinkPut(link)]
    assert b.delete_link(ACTOR, "wasmcloud/echo", "default")
    gossip(b, a)
    assert a.links() == []
    assert events(a) == [LinkDeleted(ACTOR, "wasmcloud/echo", "default")]


def test_link_keys_keep_the_old_form_and_never_collide():
    # every key written before call-alias links is unchanged
    assert link_key(ACTOR, "wasmcloud:keyvalue", "") == f"{ACTOR}/wasmcloud:keyvalue/default"
    assert parse_link_key(f"{ACTOR}/wasmcloud:keyvalue/a/b") == (ACTOR, "wasmcloud:keyvalue", "a/b")
    # a contract id with '/' cannot be confused with a link name holding one
    assert link_key(ACTOR, "x/y", "z") != link_key(ACTOR, "x", "y/z")
    assert link_key(ACTOR, "x/y", "z") != link_key(ACTOR, "x%2Fy", "z")
    assert parse_link_key("no-slash") is None
    assert parse_link_key(f"{ACTOR}//bad%zz/default") is None


@given(
    st.text(st.characters(blacklist_characters="/"), min_size=1, max_size=8),
    st.text(min_size=1, max_size=8),
    st.text(max_size=8),
)
@settings(max_examples=300)
def test_link_key_round_trips(actor: str, contract: str, name: str) -> None:
    key = link_key(actor, contract, name)
    assert parse_link_key(key) == (actor, contract, name or "default")
