"""The SWIM core driven by hand: a few cores wired together, time stepped explicitly."""

import random

import msgpack
import pytest

from meshhost.config import PROFILES, MembershipConfig
from meshhost.errors import MembershipUsageError
from meshhost.identity.nkeys import KeyPair, Prefix
from meshhost.membership import (
    MemberAlive,
    MemberDead,
    MemberJoined,
    MemberLeft,
    MemberState,
    MemberSuspect,
    MemberUpdated,
    PeerMisbehaved,
    Swim,
)
from meshhost.membership.messages import (
    MAX_META_BYTES,
    Alive,
    Dead,
    IndirectPing,
    Ping,
    Suspect,
    decode_packet,
    encode,
)
from meshhost.membership.signing import sign_alive

CFG = PROFILES["lan"]().membership
LIMIT = CFG.udp_packet_bytes


def key(i):
    return KeyPair(Prefix.SERVER, bytes([i]) * 32)


class Net:
    """Cores by address; datagrams are delivered instantly unless dropped."""

    def __init__(self, config: MembershipConfig = CFG):
        self.config = config
        self.cores: dict[tuple[str, int], Swim] = {}
        self.events: dict[str, list] = {}
        self.down: set[tuple[str, int]] = set()
        self.now = 1000.0
        self.sent: list[tuple[tuple[str, int], tuple[str, int], bytes]] = []

    def add(self, i, meta=b"", now=None, delegate=None, config=None):
        addr = (f"10.0.0.{i}", 7946)
        core = Swim(
            key(i),
            addr,
            config or self.config,
            random.Random(i),
            self.now if now is None else now,
            meta=meta,
            delegate=delegate,
        )
        self.cores[addr] = core
        self.events.setdefault(core.id, [])
        return core

    def pump(self):
        """Deliver until quiet (no time passes)."""
        for _ in range(1000):
            moved = False
            for addr, core in list(self.cores.items()):
                while (ev := core.next_event()) is not None:
                    self.events[core.id].append(ev)
                for dst, data in core.datagrams_to_send():
                    assert len(data) <= LIMIT - 64, "datagram too large to seal"
                    self.sent.append((addr, dst, data))
                    moved = True
                    target = self.cores.get(dst)
                    if target is not None and dst not in self.down and addr not in self.down:
                        target.receive_datagram(data, addr, self.now)
                while (pp := core.push_pull_due(self.now)) is not None:
                    moved = True
                    other = self.cores.get(pp)
                    if other is None or pp in self.down or addr in self.down:
                        continue
                    reply = other.push_pull_payload(self.now)
                    other.merge_push_pull(core.push_pull_payload(self.now), addr, self.now)
                    core.merge_push_pull(reply, pp, self.now)
            if not moved:
                return
        raise AssertionError("network never went quiet")

    def run(self, seconds, step=0.05):
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for addr, core in self.cores.items():
                if addr in self.down:
                    continue
                t = core.get_timer()
                if t is not None and t <= self.now:
                    core.handle_timer(self.now)
            self.pump()

    def of(self, core, kind):
        return [e for e in self.events[core.id] if type(e) is kind]


def formed(n=3, config=CFG):
    net = Net(config)
    cores = [net.add(i + 1) for i in range(n)]
    for c in cores[1:]:
        c.join([cores[0].addr], net.now)
    net.pump()
    net.run(3)
    return net, cores


def test_hosts_that_join_a_seed_see_each_other_alive():
    net, (a, b, c) = formed()
    for core in (a, b, c):
        assert core.alive_ids() == {a.id, b.id, c.id}
        assert {m.state for m in core.members()} == {MemberState.ALIVE}
    joined = {e.member.id for e in net.of(a, MemberJoined)}
    assert joined == {b.id, c.id}
    assert all(
        m.addr == (f"10.0.0.{i}", 7946)
        for i, m in enumerate(sorted(a.members(), key=lambda m: m.addr), start=1)
    )


def test_healthy_probes_raise_no_suspicion():
    net, cores = formed()
    net.run(30)
    for core in cores:
        assert core.stats["probes"] >= 25
        assert core.stats["probe_failures"] == 0
        assert core.awareness == 0
        assert not net.of(core, MemberSuspect)


def test_a_silent_host_is_probed_indirectly_suspected_then_declared_dead():
    net, (a, b, c, d) = formed(4)
    net.down.add(d.addr)
    net.run(60)
    for core in (a, b, c):
        sus = net.of(core, MemberSuspect)
        dead = net.of(core, MemberDead)
        assert [e.member.id for e in sus] == [d.id]
        assert [e.member.id for e in dead] == [d.id]
        assert core.member(d.id).state is MemberState.DEAD
        assert core.alive_ids() == {a.id, b.id, c.id}
    indirect = [
        m
        for _, _, data in net.sent
        for m in decode_packet(data, LIMIT)[0]
        if type(m) is IndirectPing and m.target == d.id
    ]
    assert indirect, "nobody asked a relay to probe the silent host"
    assert all(m.want_nack for m in indirect)


def test_a_suspected_host_refutes_with_a_higher_incarnation():
    net, (a, b, c) = formed()
    before = c.incarnation
    a.receive_datagram(encode(Suspect(c.id, c.incarnation, b.id)), b.addr, net.now)
    assert a.member(c.id).state is MemberState.SUSPECT
    net.run(1)  # a's next gossip round carries the suspicion to c
    assert c.incarnation == before + 1
    assert c.stats["refutations"] == 1
    for core in (a, b):
        assert core.member(c.id).state is MemberState.ALIVE
        assert core.member(c.id).incarnation == before + 1
    assert [e.member.id for e in net.of(a, MemberAlive)] == [c.id]
    net.run(60)
    assert not net.of(a, MemberDead) and not net.of(b, MemberDead)


def test_a_host_declared_dead_that_is_alive_refutes_and_comes_back():
    net, (a, b, c) = formed()
    a.receive_datagram(encode(Dead(c.id, c.incarnation, b.id)), b.addr, net.now)
    assert a.member(c.id).state is MemberState.DEAD
    net.run(1)
    assert a.member(c.id).state is MemberState.ALIVE
    assert [type(e) for e in net.of(a, MemberDead) + net.of(a, MemberJoined)][-1] is MemberJoined


def test_forged_alive_changes_nothing_and_is_counted():
    net, (a, b, c) = formed()
    forger = key(99)
    forged = sign_alive(forger, b.id, ("6.6.6.6", 1), b.incarnation + 10, b"evil")
    a.receive_datagram(encode(forged), c.addr, net.now)
    assert a.stats["forged_alive"] == 1
    assert a.member(b.id).addr == b.addr and a.member(b.id).meta == b""
    misbehaved = [e for e in [a.next_event()] if e is not None]
    assert misbehaved and type(misbehaved[0]) is PeerMisbehaved
    assert misbehaved[0].addr == c.addr and "forged" in misbehaved[0].reason
    # Nobody can speak for us either.
    forged_self = sign_alive(forger, a.id, ("6.6.6.6", 1), a.incarnation + 10, b"")
    inc = a.incarnation
    a.receive_datagram(encode(forged_self), c.addr, net.now)
    assert a.incarnation == inc and a.stats["forged_alive"] == 2


def test_stale_incarnations_change_nothing_and_are_counted():
    net, (a, b, c) = formed()
    old = sign_alive(key(2), b.id, ("10.9.9.9", 1), b.incarnation - 1, b"old")
    a.receive_datagram(encode(old), c.addr, net.now)
    a.receive_datagram(encode(Suspect(b.id, b.incarnation - 1, c.id)), c.addr, net.now)
    a.receive_datagram(encode(Dead(b.id, b.incarnation - 1, c.id)), c.addr, net.now)
    assert a.stats["stale"] == 3
    m = a.member(b.id)
    assert (m.state, m.addr, m.meta) == (MemberState.ALIVE, b.addr, b"")
    assert a.next_event() is None


@pytest.mark.parametrize(
    ("data", "counter"),
    [
        (b"", "malformed"),
        (b"\xc1", "malformed"),
        (b"\xff" * 40, "malformed"),
        (msgpack.packb([5, "N" * 56, "h"]), "malformed"),
        (b"\x00" * (LIMIT + 1), "oversized"),
    ],
)
def test_bad_packets_change_nothing_and_are_counted(data, counter):
    net, (a, b, _c) = formed()
    before = a.members()
    a.receive_datagram(data, b.addr, net.now)
    assert a.stats[counter] == 1
    assert a.members() == before
    ev = a.next_event()
    assert type(ev) is PeerMisbehaved and ev.addr == b.addr


def test_truncated_real_packets_change_nothing():
    net, (a, b, _c) = formed()
    alive = sign_alive(key(2), b.id, b.addr, b.incarnation + 1, b"new")
    wire = encode(alive)
    before = a.members()
    for cut in range(len(wire)):
        a.receive_datagram(wire[:cut], b.addr, net.now)
    assert a.members() == before
    assert a.stats["malformed"] == len(wire)


def test_a_flood_of_garbage_does_not_grow_the_event_queue_without_bound():
    net, (a, b, _c) = formed()
    for _ in range(10_000):
        a.receive_datagram(b"\xc1", b.addr, net.now)
    events = []
    while (e := a.next_event()) is not None:
        events.append(e)
    assert a.stats["malformed"] == 10_000
    assert 0 < len(events) <= 64


def test_ping_for_another_host_at_our_address_is_not_answered():
    net, (a, b, c) = formed()
    a.receive_datagram(encode(Ping(5, c.id, b.id)), b.addr, net.now)
    assert a.stats["wrong_target"] == 1
    assert a.datagrams_to_send() == []


def test_leave_is_announced_and_not_refuted():
    net, (a, b, c) = formed()
    c.leave(net.now)
    net.run(5)
    for core in (a, b):
        assert [e.member.id for e in net.of(core, MemberLeft)] == [c.id]
        assert core.member(c.id).state is MemberState.LEFT
        assert core.alive_ids() == {a.id, b.id}
    assert c.stats["refutations"] == 0
    net.run(CFG.dead_tombstone_s + 120)
    assert a.member(c.id) is None  # the tombstone was reaped
    assert not net.of(a, MemberDead)


def test_update_meta_reaches_every_host_with_a_new_incarnation():
    net, (a, b, c) = formed()
    inc = c.incarnation
    c.update_meta(b"labels=gpu", net.now)
    assert c.incarnation > inc
    net.run(2)
    for core in (a, b):
        assert core.member(c.id).meta == b"labels=gpu"
        assert [e.member.meta for e in net.of(core, MemberUpdated)] == [b"labels=gpu"]
    with pytest.raises(MembershipUsageError):
        c.update_meta(b"x" * (MAX_META_BYTES + 1), net.now)


def test_constructor_rejects_wrong_keys_and_oversized_meta():
    with pytest.raises(MembershipUsageError):
        Swim(KeyPair(Prefix.MODULE, b"\x01" * 32), ("h", 1), CFG, random.Random(1), 0.0)
    with pytest.raises(MembershipUsageError):
        Swim(key(1), ("h", 1), CFG, random.Random(1), 0.0, meta=b"x" * (MAX_META_BYTES + 1))


def test_push_pull_alone_forms_the_lattice():
    net = Net()
    a, b = net.add(1), net.add(2)
    payload = b.push_pull_payload(net.now)
    a.merge_push_pull(payload, b.addr, net.now)
    b.merge_push_pull(a.push_pull_payload(net.now), a.addr, net.now)
    assert a.alive_ids() == b.alive_ids() == {a.id, b.id}
    bad = b"\x95\x09garbage"
    a.merge_push_pull(bad, b.addr, net.now)
    assert a.stats["push_pull_malformed"] == 1
    assert a.alive_ids() == {a.id, b.id}


def test_push_pull_is_due_for_seeds_then_periodically():
    net = Net()
    a = net.add(1)
    a.join([("10.0.0.2", 7946), ("10.0.0.3", 7946), a.addr], net.now)
    due = []
    while (addr := a.push_pull_due(net.now)) is not None:
        due.append(addr)
    assert due == [("10.0.0.2", 7946), ("10.0.0.3", 7946)]  # never ourselves


def test_a_restarted_host_outranks_its_previous_life():
    net, (a, b, c) = formed()
    net.down.add(c.addr)
    net.run(70)
    assert a.member(c.id).state is MemberState.DEAD
    old_inc = a.member(c.id).incarnation
    # Restart with the same key; the new process's clock reads *earlier*
    # (a monotonic clock after a reboot), so its start incarnation is lower.
    del net.cores[c.addr]
    net.down.discard(c.addr)
    c2 = net.add(3, now=5.0)
    assert c2.incarnation < old_inc
    c2.join([a.addr], net.now)
    net.pump()
    net.run(5)
    assert c2.incarnation > old_inc
    for core in (a, b):
        assert core.member(c2.id).state is MemberState.ALIVE
        assert [type(e) for e in net.events[core.id]][-1] in (MemberJoined, MemberAlive)
    assert c2.alive_ids() == {a.id, b.id, c2.id}


class Recorder:
    def __init__(self, name):
        self.name = name
        self.outbox = [f"{name}-hello".encode()]
        self.heard = []
        self.merged = []

    def broadcasts(self, limit_bytes):
        out, self.outbox = self.outbox, []
        assert sum(map(len, out)) <= limit_bytes
        return out

    def notify_message(self, sender_id, payload):
        self.heard.append((sender_id, payload))

    def local_state(self):
        return f"{self.name}-state".encode()

    def merge_remote_state(self, sender_id, data):
        self.merged.append((sender_id, data))


def test_delegate_payloads_ride_on_gossip_and_push_pull():
    net = Net()
    ra, rb = Recorder("a"), Recorder("b")
    a = net.add(1, delegate=ra)
    b = net.add(2, delegate=rb)
    b.join([a.addr], net.now)
    net.pump()
    net.run(2)
    assert (b.id, b"b-hello") in ra.heard
    assert (a.id, b"a-hello") in rb.heard
    assert (b.id, b"b-state") in ra.merged and (a.id, b"a-state") in rb.merged


def test_missing_nacks_raise_local_health_score():
    net, (a, _b, _c, _d) = formed(4)
    # a's packets reach nobody: every probe fails and no relay answers.
    net.down.add(a.addr)
    for _ in range(3):
        t = a.get_timer()
        net.now = max(net.now, t)
        a.handle_timer(net.now)
        a.datagrams_to_send()
    net.run(3)
    assert a.awareness > 0
    assert a.stats["probe_failures"] >= 1


def test_local_profile_is_faster_than_lan():
    local = PROFILES["local"]().membership
    assert local.probe_timeout_s < CFG.probe_timeout_s
    _net, cores = formed(3, local)
    assert all(c.alive_ids() == {x.id for x in cores} for c in cores)


def test_every_datagram_fits_even_with_the_largest_metadata():
    net = Net()
    big = b"m" * MAX_META_BYTES
    cores = [net.add(i + 1, meta=big) for i in range(12)]
    for c in cores[1:]:
        c.join([cores[0].addr], net.now)
    net.pump()  # asserts every datagram's size
    net.run(5)
    assert all(len(c.alive_ids()) == 12 for c in cores)
    assert max(len(d) for _, _, d in net.sent) <= LIMIT - 64


def test_alive_of_ourselves_from_the_past_is_ignored_when_older():
    net, (a, b, _c) = formed()
    mine = a.members()
    old = sign_alive(key(1), a.id, a.addr, a.incarnation - 5, b"")
    a.receive_datagram(encode(old), b.addr, net.now)
    assert a.members() == mine and a.stats["stale"] == 1
    same = Alive(
        a.id,
        a.addr,
        a.incarnation,
        a.meta,
        sign_alive(key(1), a.id, a.addr, a.incarnation, a.meta).signature,
    )
    a.receive_datagram(encode(same), b.addr, net.now)
    assert a.stats["refutations"] == 0


def test_push_pull_turns_remote_dead_into_suspicion_and_remembers_unknown_dead_quietly():
    net, (a, b, c) = formed()
    ghost = net.add(9)  # a host only b has heard of, already dead
    b.receive_datagram(
        encode(sign_alive(key(9), ghost.id, ghost.addr, ghost.incarnation, b"")), c.addr, net.now
    )
    b.receive_datagram(encode(Dead(ghost.id, ghost.incarnation, c.id)), c.addr, net.now)
    b.receive_datagram(encode(Dead(c.id, c.incarnation, b.id)), c.addr, net.now)  # refuted later
    del net.cores[ghost.addr]
    while b.next_event() is not None:
        pass
    events_before = len(net.events[a.id])
    a.merge_push_pull(b.push_pull_payload(net.now), b.addr, net.now)
    assert a.member(c.id).state is MemberState.SUSPECT  # hearsay "dead" is only a suspicion
    assert a.member(ghost.id).state is MemberState.DEAD
    new = []
    while (e := a.next_event()) is not None:
        new.append(e)
    assert [type(e) for e in new] == [MemberSuspect]  # nothing about the ghost
    assert len(net.events[a.id]) == events_before


def test_groups_that_never_met_merge_by_retrying_their_seeds():
    net = Net(PROFILES["local"]().membership)
    a, b, c, d = (net.add(i) for i in (1, 2, 3, 4))
    net.down.add(c.addr)  # c and d are unreachable while a and b join
    a.join([b.addr, c.addr], net.now)
    d.join([c.addr], net.now)
    net.pump()
    net.run(1)
    assert a.alive_ids() == {a.id, b.id}
    net.down.clear()
    net.run(3 * net.config.reconnect_interval_s)
    for core in (a, b, c, d):
        assert core.alive_ids() == {a.id, b.id, c.id, d.id}


def test_a_restarted_host_whose_clock_went_back_is_shown_its_old_life_over_udp_alone():
    net, (a, _b, c) = formed()
    old_inc = c.incarnation
    del net.cores[c.addr]
    c2 = net.add(3, now=1.0, meta=b"new labels")  # same key, clock reset: lower incarnation
    # No push-pull: only the UDP hello reaches the seed.
    c2.join([a.addr], net.now)
    while c2.push_pull_due(net.now) is not None:
        pass
    net.pump()
    net.run(3)
    assert c2.incarnation > old_inc
    assert a.member(c2.id).meta == b"new labels"


def test_metadata_must_fit_the_configured_packet_size():
    import dataclasses

    small = dataclasses.replace(CFG, udp_packet_bytes=576)
    with pytest.raises(MembershipUsageError, match="udp_packet_bytes"):
        Swim(key(1), ("h", 1), small, random.Random(1), 0.0, meta=b"x" * MAX_META_BYTES)
    core = Swim(key(1), ("h", 1), small, random.Random(1), 0.0, meta=b"x" * 100)
    with pytest.raises(MembershipUsageError):
        core.update_meta(b"x" * 400, 1.0)


def test_a_suspect_that_sends_to_us_is_told_at_once_and_refutes():
    # The suspicion reached a while c was cut off, so no gossip of it will reach c.
    net, (a, b, c) = formed()
    before = c.incarnation
    a.receive_datagram(encode(Suspect(c.id, c.incarnation, b.id)), b.addr, net.now)
    a.datagrams_to_send()  # a's gossip of it is lost
    assert a.member(c.id).state is MemberState.SUSPECT
    # c sends a any packet (here an alive it already sent): a tells c at once
    a.receive_datagram(c._self_entry.alive_bytes, c.addr, net.now)
    told = [
        msgs
        for dst, data in a.datagrams_to_send()
        if dst == c.addr
        for msgs in [decode_packet(data, LIMIT)[0]]
    ]
    assert any(type(m) is Suspect and m.node == c.id for msgs in told for m in msgs)
    for msgs in told:
        for m in msgs:
            c.receive_datagram(encode(m), a.addr, net.now)
    assert c.incarnation == before + 1
    net.pump()
    assert a.member(c.id).state is MemberState.ALIVE
    # at most once per probe interval
    a.receive_datagram(encode(Suspect(c.id, c.incarnation, b.id)), b.addr, net.now)
    a.datagrams_to_send()
    a.receive_datagram(c._self_entry.alive_bytes, c.addr, net.now)
    assert not [d for d, _ in a.datagrams_to_send() if d == c.addr]


def _idle_news_delay(seed: int) -> float:
    """Seconds from news queued at a random moment on an idle host to its first datagram."""
    import dataclasses

    # Probes so rare that only gossip can carry the news in the window measured.
    cfg = dataclasses.replace(CFG, probe_interval_s=1000.0, probe_timeout_s=1.0)
    net = Net(cfg)
    a = Swim(key(1), ("10.0.0.1", 7946), cfg, random.Random(seed), net.now)
    b = net.add(2)
    net.cores[a.addr] = a
    net.events[a.id] = []
    a.join([b.addr], net.now)
    net.pump()
    net.run(10)  # the join's gossip is sent out and the queue empties
    assert a.member(b.id) is not None
    t = net.now + random.Random(-seed).uniform(0, 5)
    a.update_meta(b"news", t)
    while True:
        due = a.get_timer()
        assert due is not None and due < t + 10
        a.handle_timer(due)
        if a.datagrams_to_send():
            return due - t


def test_news_queued_on_an_idle_host_waits_half_a_gossip_interval_on_average():
    # Gossip ticks on a fixed grid at a random phase (memberlist's ticker):
    # the news leaves at the next tick, not a full interval after it was
    # queued (which made a lossless lattice spread slower than a lossy one,
    # whose queue is rarely empty).
    interval = CFG.gossip_interval_s
    delays = [_idle_news_delay(seed) for seed in range(120)]
    assert max(delays) <= interval + 1e-9
    assert 0.4 * interval < sum(delays) / len(delays) < 0.6 * interval
    assert min(delays) < 0.1 * interval
