"""The churn generator, and probes observed per ping (SWIM's first-detection definitions)."""

import statistics

import pytest

from meshhost.config import MembershipConfig
from meshhost.membership.events import MemberSuspect
from meshhost.sim import build_cluster
from meshhost.sim.churn import churn
from meshhost.sim.cluster import wait_for_one_view
from meshhost.sim.probes import ProbeLog

CFG = MembershipConfig()


def test_churn_crashes_leaves_and_restarts_and_the_lattice_recovers():
    sim, _ = build_cluster(6, 20, CFG)
    log = churn(sim, 0.2, until_s=60.0, down_s=(5.0, 15.0), leave=0.3, wipe=0.3, max_down=4)
    assert log == []  # filled as the run goes
    sim.run_until(60.0)
    actions = [a for _, _, a in log]
    assert "crash" in actions and "leave" in actions and "restart" in actions
    assert 6 <= len([a for a in actions if a != "restart"]) <= 25  # ~12 failures at 0.2/s
    assert all(t <= 60.0 + 16.0 for t, _, _ in log)
    sim.run_for(20.0)  # everyone is back
    assert all(h.up for h in sim.hosts)
    assert wait_for_one_view(sim, 120.0) is not None
    again, _ = build_cluster(6, 20, CFG)
    log2 = churn(again, 0.2, until_s=60.0, down_s=(5.0, 15.0), leave=0.3, wipe=0.3, max_down=4)
    again.run_until(60.0)
    assert log2 == [e for e in log if e[0] <= 60.0]  # replays from the seed
    with pytest.raises(ValueError, match="rate_per_s"):
        churn(sim, 0.0, until_s=1.0)


def test_first_detection_per_ping_in_both_definitions():
    periods, asyncs = [], []
    for seed in range(12):
        sim, _ = build_cluster(seed, 60, CFG)
        sim.run_for(5.0)
        victim = sim.hosts[seed]
        log = ProbeLog.install(sim, victim)
        sim.run_for(10.0)  # about one ping a second: none in 10 s has odds e**-10
        assert log.pings and log.acks  # a live host is pinged and answers
        assert {seq for _, _, seq in log.acks} <= {seq for _, _, seq in log.pings}
        crash = sim.now
        first_suspect = []
        sim.observers.append(
            lambda s, h, ev, v=victim, f=first_suspect: (
                f.append(s.now)
                if type(ev) is MemberSuspect and ev.member.id == v.node_id and not f
                else None
            )
        )
        sim.crash(victim)
        sim.run_for(10.0, stop=lambda f=first_suspect: bool(f))
        periods.append(log.swim_periods(crash, CFG.probe_interval_s))
        asyncs.append((first_suspect[0] - crash) / CFG.probe_interval_s)
        assert first_suspect[0] > log.first_ping_after(crash)
    # SWIM's synchronous definition: mean 1 / (1 - 1/e) = 1.58 periods
    assert 1.0 <= statistics.mean(periods) <= 2.3
    # asynchronous: the wait for a ping plus the rest of that probe's period, ~2
    assert statistics.mean(asyncs) > statistics.mean(periods) - 0.5
    assert 1.3 <= statistics.mean(asyncs) <= 2.8
