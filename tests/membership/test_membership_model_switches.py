"""Each Lifeguard part and each meshhost addition switched on and off.

Pure Lifeguard arithmetic as tables; each switch's behaviour on a few cores
driven by hand (datagrams are handed over explicitly, or dropped).
"""

import dataclasses
import random

import pytest

from meshhost.config import MEMBERSHIP_MODELS, MembershipConfig, membership_model
from meshhost.errors import ConfigError
from meshhost.identity.nkeys import KeyPair, Prefix
from meshhost.membership import MemberDead, MemberState, Swim
from meshhost.membership.awareness import probe_failure_delta
from meshhost.membership.messages import (
    Ack,
    Alive,
    IndirectPing,
    Ping,
    Suspect,
    decode_packet,
    encode,
    encode_compound,
)
from meshhost.membership.suspicion import suspicion_bounds

CFG = MembershipConfig()
SWITCHES = (
    "lifeguard_awareness",
    "lifeguard_suspicion",
    "lifeguard_buddy",
    "lifeguard_nacks",
    "refute_at_once",
    "last_chance",
)
T0 = 1000.0


@pytest.mark.parametrize(
    ("mult", "max_mult", "n", "interval", "dynamic", "expected"),
    [
        (4, 6, 100, 1.0, True, (2, 8.0, 48.0)),  # LAN at 100 hosts: 8 s .. 48 s, k = 2
        (4, 6, 100, 1.0, False, (0, 8.0, 8.0)),  # SWIM: fixed 8 s, confirmations ignored
        (4, 6, 3, 1.0, True, (0, 4.0, 24.0)),  # too few hosts to confirm: k = 0
        (4, 6, 3, 1.0, False, (0, 4.0, 4.0)),
        (6, 6, 1000, 5.0, True, (4, 90.0, 540.0)),  # WAN numbers at 1000 hosts
        (6, 6, 1000, 5.0, False, (0, 90.0, 90.0)),
    ],
)
def test_suspicion_bounds(mult, max_mult, n, interval, dynamic, expected):
    k, lo, hi = suspicion_bounds(mult, max_mult, n, interval, dynamic)
    assert (k, lo, hi) == (expected[0], pytest.approx(expected[1]), pytest.approx(expected[2]))


@pytest.mark.parametrize(
    ("expected_nacks", "nacks", "delta"),
    [
        (0, 0, 1),  # no relays (or nacks off): any failure counts 1
        (3, 0, 3),  # no relay answered: our packets are not getting out
        (3, 2, 1),
        (3, 3, 0),  # every relay nacked: the target is the sick one
        (3, 4, 0),  # a duplicated nack never lowers the score
    ],
)
def test_probe_failure_delta(expected_nacks, nacks, delta):
    assert probe_failure_delta(expected_nacks, nacks) == delta


def test_models_and_defaults():
    assert membership_model("meshhost") == MembershipConfig()  # production is unchanged
    swim = membership_model("swim")
    assert not any(getattr(swim, s) for s in SWITCHES)
    ml = membership_model("memberlist")
    assert ml.lifeguard_awareness and ml.lifeguard_suspicion
    assert ml.lifeguard_buddy and ml.lifeguard_nacks
    assert not ml.refute_at_once and not ml.last_chance
    base = MembershipConfig(probe_interval_s=2.0, probe_timeout_s=1.0)
    assert membership_model("swim", base).probe_interval_s == 2.0
    assert set(MEMBERSHIP_MODELS) == {"swim", "memberlist", "meshhost"}
    with pytest.raises(ConfigError, match="unknown membership model 'serf'; known: memberlist"):
        membership_model("serf")


def _cores(n, config):
    cores = [
        Swim(
            KeyPair(Prefix.SERVER, bytes([i + 1]) * 32),
            (f"10.0.0.{i + 1}", 7946),
            config,
            random.Random(i),
            T0,
        )
        for i in range(n)
    ]
    for core in cores:
        for other in cores:
            if other is not core:
                core.merge_push_pull(other.push_pull_payload(T0), other.addr, T0)
    for core in cores:
        core.datagrams_to_send()
        while core.next_event():
            pass
        core._queue.clear()  # a formed lattice has nothing left to gossip
    return cores


def _parts(datagrams, dst):
    return [m for d, data in datagrams if d == dst for m in decode_packet(data, 1200)[0]]


def _run_alone(core, until, log=None):
    """Fire ``core``'s timers up to ``until``; everything it sends is lost."""
    events = []
    while (t := core.get_timer()) is not None and t <= until:
        core.handle_timer(t)
        out = core.datagrams_to_send()
        if log is not None:
            log.extend((t, d, data) for d, data in out)
        while (ev := core.next_event()) is not None:
            events.append((t, ev))
    return events


@pytest.mark.parametrize("on", [True, False])
def test_awareness_switch(on):
    a, *_ = _cores(4, dataclasses.replace(CFG, lifeguard_awareness=on))
    _run_alone(a, T0 + 10)  # nobody ever answers a
    assert a.stats["probe_failures"] >= 3
    assert (a.awareness > 0) is on


@pytest.mark.parametrize("on", [True, False])
def test_suspicion_switch(on):
    a, b, c, _d, e = _cores(5, dataclasses.replace(CFG, lifeguard_suspicion=on))
    a.receive_datagram(encode(Suspect(e.id, e.incarnation, b.id)), b.addr, T0)
    s = a._members[e.id].suspicion
    before = s.deadline
    a.receive_datagram(encode(Suspect(e.id, e.incarnation, c.id)), c.addr, T0)
    # k = 2 at five hosts: the first confirmation moves the deadline, unless fixed
    assert (s.deadline < before) is on
    assert s.deadline - T0 >= 4.0
    if not on:
        assert s.deadline == pytest.approx(T0 + 4.0)  # 4 x log10(5) floored to 1 x 1 s


@pytest.mark.parametrize("on", [True, False])
def test_buddy_switch(on):
    cfg = dataclasses.replace(CFG, lifeguard_buddy=on)
    a, b = _cores(2, cfg)
    a.receive_datagram(encode(Suspect(b.id, b.incarnation, a.id)), b.addr, T0)
    a.datagrams_to_send()
    a._queue.clear()  # the suspicion's own gossip is spent
    log = []
    _run_alone(a, T0 + 1.0, log)
    pings = [
        parts
        for _, d, data in log
        if d == b.addr
        for parts in [decode_packet(data, 1200)[0]]
        if any(type(p) is Ping for p in parts)
    ]
    assert pings
    assert all(any(type(p) is Suspect and p.node == b.id for p in parts) is on for parts in pings)


@pytest.mark.parametrize("on", [True, False])
def test_nacks_switch(on):
    a, *_ = _cores(5, dataclasses.replace(CFG, lifeguard_nacks=on, lifeguard_awareness=True))
    log = []
    _run_alone(a, T0 + 0.99 + CFG.probe_timeout_s, log)  # the first probe and its timeout
    indirect = [
        m for _, _, data in log for m in decode_packet(data, 1200)[0] if type(m) is IndirectPing
    ]
    assert len(indirect) == CFG.indirect_checks
    assert all(m.want_nack is on for m in indirect)
    _run_alone(a, T0 + 2.0)
    assert a.stats["probe_failures"] == 1
    # three silent relays cost 3 with nacks asked, 1 without
    assert a.awareness == (3 if on else 1)


@pytest.mark.parametrize("on", [True, False])
def test_refute_at_once_switch(on):
    a, _b, c = _cores(3, dataclasses.replace(CFG, refute_at_once=on))
    before = c.incarnation
    c.receive_datagram(encode(Suspect(c.id, c.incarnation, a.id)), a.addr, T0)
    assert c.incarnation == before + 1  # refutes either way (by gossip)
    back = _parts(c.datagrams_to_send(), a.addr)
    assert any(type(m) is Alive and m.node == c.id for m in back) is on
    # a ping riding with an accusation is answered after it (the ack carries the
    # new alive), or in order (the ack goes out before the refutation exists)
    packet = encode_compound([encode(Ping(7, c.id, a.id)), encode(Suspect(c.id, before + 1, a.id))])
    c.receive_datagram(packet, a.addr, T0 + 5)
    assert c.incarnation == before + 2
    (ack,) = [
        parts
        for d, data in c.datagrams_to_send()
        for parts in [decode_packet(data, 1200)[0]]
        if any(type(m) is Ack for m in parts)
    ]
    assert any(type(m) is Alive and m.incarnation == before + 2 for m in ack) is on


@pytest.mark.parametrize("on", [True, False])
def test_last_chance_switch(on):
    cfg = dataclasses.replace(CFG, last_chance=on, refute_at_once=False, lifeguard_buddy=False)
    a, b, c = _cores(3, cfg)
    a.receive_datagram(encode(Suspect(b.id, b.incarnation, c.id)), c.addr, T0)
    a.datagrams_to_send()
    log = []
    events = _run_alone(a, T0 + 5, log)
    dead = [t for t, ev in events if type(ev) is MemberDead and ev.member.id == b.id]
    assert dead == [pytest.approx(T0 + 4.0)]  # k = 0 at three hosts: the minimum, 4 s
    reminders = [
        t
        for t, d, data in log
        if d == b.addr
        and Suspect in (kinds := [type(m) for m in decode_packet(data, 1200)[0]])
        and Ping not in kinds
    ]
    assert (pytest.approx(T0 + 4.0 - CFG.probe_timeout_s) in reminders) is on
    assert a.member(b.id).state is MemberState.DEAD
