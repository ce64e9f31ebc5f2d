"""Fault models of the simulator: bursty (Gilbert-Elliott) loss and slow hosts (CPU)."""

import itertools
import random

import pytest

from meshhost.config import MembershipConfig
from meshhost.membership.events import MemberSuspect
from meshhost.sim import GilbertElliott, LinkModel, NetworkModel, Simulator, build_cluster

A, B = ("10.0.0.1", 1), ("10.0.0.2", 1)


def _losses(model, n=20000, gap_s=0.01):
    net = NetworkModel(model)
    rng = random.Random(5)
    return [not net.arrivals(A, B, i * gap_s, rng) for i in range(n)]


def test_gilbert_elliott_loses_its_mean_share_in_bursts():
    ge = GilbertElliott(mean_good_s=0.9, mean_bad_s=0.1)
    assert ge.mean_loss == pytest.approx(0.1)
    bursty = _losses(LinkModel(burst=ge))
    plain = _losses(LinkModel(loss=0.1))
    for lost in (bursty, plain):
        assert sum(lost) / len(lost) == pytest.approx(0.1, abs=0.02)

    def after_loss(lost):
        pairs = [b for a, b in itertools.pairwise(lost) if a]
        return sum(pairs) / len(pairs)

    assert after_loss(plain) < 0.15  # independent: a loss says nothing about the next
    assert after_loss(bursty) > 0.8  # bursty: 10 ms apart, mostly in the same 100 ms burst
    assert NetworkModel(LinkModel(burst=ge)).lossy


@pytest.mark.parametrize(
    "kw",
    [
        {"mean_good_s": 0.0, "mean_bad_s": 1.0},
        {"mean_good_s": 1.0, "mean_bad_s": float("inf")},
        {"mean_good_s": 1.0, "mean_bad_s": 1.0, "loss_bad": 1.5},
    ],
)
def test_gilbert_elliott_refuses_bad_parameters(kw):
    with pytest.raises(ValueError, match="GilbertElliott"):
        GilbertElliott(**kw)


class Sink:
    """Records when each datagram was read (a core that only listens)."""

    def __init__(self):
        self.read = []
        self.ticks = []
        self.timer = None

    def receive_datagram(self, data, addr, now):
        self.read.append((data, now))

    def handle_timer(self, now):
        self.ticks.append(now)
        self.timer = None

    def get_timer(self):
        return self.timer

    def datagrams_to_send(self):
        return []

    def next_event(self):
        return None


def test_a_slow_host_reads_its_queue_one_service_time_apart_and_drops_the_overflow():
    sim = Simulator(1, NetworkModel(LinkModel(latency=lambda rng: 0.0)))
    sink = Sink()
    host = sim.add_host(lambda h, now, rng: sink)
    sim.set_cpu(host, 0.01, queue_limit=5)
    sink.timer = 0.005  # due while the host works through its queue
    sim.pump(host)
    for i in range(8):
        sim._deliver(host.addr, A, b"d%d" % i)
    sim.run_until(1.0)
    assert [d for d, _ in sink.read] == [b"d0", b"d1", b"d2", b"d3", b"d4"]
    assert [round(t, 6) for _, t in sink.read] == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert host.cpu_dropped == 3
    assert sink.ticks == [pytest.approx(0.05)]  # the timer waited for the queue
    with pytest.raises(ValueError, match="queue_limit"):
        sim.set_cpu(host, 0.01, queue_limit=0)


def test_a_very_slow_host_is_suspected_and_a_fast_one_not():
    def suspects(service_s):
        sim, _ = build_cluster(2, 12, MembershipConfig(), invariants=False)
        slow = sim.hosts[3]
        if service_s:
            sim.set_cpu(slow, service_s, queue_limit=4)
        hits = []
        sim.observers.append(
            lambda s, h, ev: (
                hits.append(h.index)
                if type(ev) is MemberSuspect and ev.member.id == slow.node_id
                else None
            )
        )
        sim.run_for(30.0)
        return hits

    assert suspects(0.0) == []
    assert suspects(0.6)  # acks leave after the probe timeout
