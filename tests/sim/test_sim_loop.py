"""The simulator itself: determinism, network model, faults, clocks, generic cores."""

import hashlib
import random

import pytest

from meshhost.config import PROFILES
from meshhost.errors import SimulationError
from meshhost.membership.events import MemberDead, MemberJoined
from meshhost.sim import (
    LinkModel,
    NetworkModel,
    Simulator,
    build_cluster,
    fixed_latency,
    run_seeded,
    swim_factory,
    uniform_latency,
)

LAN = PROFILES["lan"]().membership
LOCAL = PROFILES["local"]().membership
A, B, C = ("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.3", 1)


class Echo:
    """A minimal sans-IO core: echoes datagrams, ticks a timer, reports what it saw."""

    def __init__(self, addr, now, period=1.0):
        self.addr = addr
        self.period = period
        self.next = now + period
        self.out = []
        self.events = []
        self.seen = []
        self.ticks = []

    def receive_datagram(self, data, addr, now):
        self.seen.append((data, addr, now))
        self.events.append(("got", data))
        if data.startswith(b"ping"):
            self.out.append((addr, b"pong" + data[4:]))

    def handle_timer(self, now):
        self.ticks.append(now)
        self.next = now + self.period

    def get_timer(self):
        return self.next

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def next_event(self):
        return self.events.pop(0) if self.events else None


def echo_sim(seed=1, network=None, **host_kw):
    sim = Simulator(seed, network)
    hosts = [
        sim.add_host(lambda h, now, rng: Echo(h.addr, now), addr, **host_kw) for addr in (A, B)
    ]
    return sim, hosts


def test_any_sans_io_core_runs_in_the_simulator():
    sim, (a, _b) = echo_sim(network=NetworkModel(LinkModel(latency=fixed_latency(0.01))))
    seen = []
    sim.observers.append(lambda s, h, ev: seen.append((h.index, ev, round(s.now, 6))))
    a.core.out.append((B, b"ping1"))
    sim.pump(a)
    sim.run_until(3.5)
    assert (1, ("got", b"ping1"), 0.01) in seen
    assert (0, ("got", b"pong1"), 0.02) in seen
    assert a.core.ticks == pytest.approx([1.0, 2.0, 3.0])


def test_clock_skew_and_drift_are_what_the_core_sees():
    sim = Simulator(1, NetworkModel(LinkModel(latency=fixed_latency(0.0))))
    h = sim.add_host(lambda h, now, rng: Echo(h.addr, now), A, clock_offset=100.0, clock_drift=0.5)
    sim.run_until(4.0)
    # The core's clock runs 1.5x from 100: it ticks every local second,
    # i.e. every 2/3 virtual second, and always sees its own clock.
    assert h.core.ticks == pytest.approx([101.0, 102.0, 103.0, 104.0, 105.0, 106.0])
    assert h.local(4.0) == pytest.approx(106.0)


def test_loss_duplication_and_reordering_follow_the_link_model():
    rng = random.Random(5)
    lossy = NetworkModel(LinkModel(loss=0.3))
    lost = sum(not lossy.arrivals(A, B, 0.0, rng) for _ in range(10_000))
    assert 2700 < lost < 3300
    dup = NetworkModel(LinkModel(duplicate=0.5))
    copies = sum(len(dup.arrivals(A, B, 0.0, rng)) for _ in range(10_000))
    assert 14_500 < copies < 15_500
    jitter = NetworkModel(LinkModel(latency=uniform_latency(0.001, 0.05)))
    times = [jitter.arrivals(A, B, i * 0.001, rng)[0] for i in range(100)]
    assert times != sorted(times)  # sent in order, arrive out of order
    with pytest.raises(ValueError):
        LinkModel(loss=1.5)


def test_symmetric_and_one_way_cuts():
    net = NetworkModel()
    rng = random.Random(1)
    one = net.cut([A], [B], one_way=True)
    assert net.arrivals(A, B, 0.0, rng) == [] and net.arrivals(B, A, 0.0, rng)
    assert not net.connected(A, B) and net.connected(A, C)
    both = net.cut([A], [C])
    assert net.arrivals(C, A, 0.0, rng) == [] and net.arrivals(A, C, 0.0, rng) == []
    net.heal(one)
    assert net.arrivals(A, B, 0.0, rng) and not net.connected(A, C)
    net.heal(both)
    assert net.connected(A, C) and not net.cuts


def test_per_link_overrides():
    net = NetworkModel()
    net.set_link(A, B, LinkModel(loss=1.0))
    rng = random.Random(1)
    assert net.arrivals(A, B, 0.0, rng) == [] and net.arrivals(B, A, 0.0, rng)
    assert net.lossy_for(A) and not net.lossy_for(C)
    net.set_link(A, B, None)
    assert net.arrivals(A, B, 0.0, rng)


def test_a_paused_host_reads_its_buffered_datagrams_on_resume_before_timers():
    sim, (a, b) = echo_sim(network=NetworkModel(LinkModel(latency=fixed_latency(0.01))))
    sim.run_until(0.5)
    sim.pause(b, 2.0)
    a.core.out.append((B, b"ping-while-paused"))
    sim.pump(a)
    sim.run_until(2.4)
    assert b.core.seen == [] and b.core.ticks == []  # stalled: nothing ran
    sim.run_until(2.6)
    assert [s[0] for s in b.core.seen] == [b"ping-while-paused"]
    assert b.core.seen[0][2] == pytest.approx(2.5)  # read when it woke up
    assert b.core.ticks == [pytest.approx(2.5)]  # the overdue timer fired late, once
    sim.run_until(2.6)
    assert [s[0] for s in a.core.seen] == [b"pong-while-paused"]


def test_datagrams_arriving_while_a_host_is_down_are_lost():
    sim, (a, b) = echo_sim(network=NetworkModel(LinkModel(latency=fixed_latency(0.1))))
    first = b.core
    a.core.out.append((B, b"lost"))
    sim.pump(a)
    sim.crash(b)
    sim.run_until(0.2)
    sim.restart(b)
    a.core.out.append((B, b"ping"))  # the new life gets what arrives after it booted
    sim.pump(a)
    sim.run_until(1.0)
    assert b.core is not first
    assert [s[0] for s in b.core.seen] == [b"ping"]
    assert b.restarts == 1


def test_restart_with_disk_keeps_the_host_key_and_without_it_gets_a_new_one():
    sim = Simulator(3)
    factory = swim_factory(LOCAL)
    h = sim.add_host(factory)
    first = h.node_id
    sim.restart(h)
    assert h.node_id == first
    sim.restart(h, wipe_disk=True)
    assert h.node_id != first


def trace(seed):
    sim, _ = build_cluster(
        seed,
        12,
        LOCAL,
        bootstrap="join",
        network=NetworkModel(LinkModel(loss=0.05, duplicate=0.02, reorder=0.1)),
    )
    digest = hashlib.sha256()
    sim.observers.append(
        lambda s, h, ev: digest.update(f"{s.now:.9f} {h.index} {type(ev).__name__}".encode())
    )
    sim.at(sim.now + 3, sim.crash, sim.hosts[4])
    sim.at(sim.now + 4, sim.pause, sim.hosts[5], 3.0)
    sim.run_for(30)
    return digest.hexdigest(), sim.steps, sim.datagrams_sent


def test_a_run_is_a_pure_function_of_its_seed():
    first, replay, other_seed = trace(7), trace(7), trace(8)
    assert replay == first
    assert other_seed != first


def test_a_broken_invariant_names_the_seed(capsys):
    def scenario(seed):
        sim, _ = build_cluster(seed, 3, LOCAL, bootstrap="join")

        def lie(s, host):
            if s.now > 1.0:
                raise SimulationError(f"SEED={s.seed}: made-up failure")

        sim.invariants.append(lie)
        sim.run_for(5)

    with pytest.raises(SimulationError, match="SEED=42"):
        run_seeded(scenario, 42)
    assert "SEED=42" in capsys.readouterr().err


def test_invariants_catch_a_false_dead_declaration():
    sim, inv = build_cluster(1, 5, LOCAL)
    victim, observer = sim.hosts[1], sim.hosts[2]
    sim.run_for(200)  # long past any disturbance
    # Make the observer wrongly declare a reachable host dead, as a buggy core would.
    with pytest.raises(SimulationError, match="dead"):
        inv.check_event(sim, observer, MemberDead(victim.core.member(victim.node_id)))
    assert inv.false_dead == 1
    # A crashed host may be declared dead.
    sim.crash(victim)
    dead = observer.core.member(victim.node_id)
    inv.check_event(sim, observer, MemberDead(dead))
    fake = dead.__class__(dead.id, dead.addr, dead.state, dead.incarnation + 10**9, dead.meta)
    with pytest.raises(SimulationError, match="incarnation"):
        inv.check_event(sim, observer, MemberJoined(fake))
