"""The issue's acceptance figures, measured on the real SWIM core in virtual time.

Every figure is printed (run with ``-s`` to see them); assertions compare
simulated seconds, never wall time.  The 1000-host runs live in
``simulations/``; here each figure has one moderately sized test.
"""

import statistics

from meshhost.config import PROFILES
from meshhost.sim import run_seeded, seeds
from meshhost.sim.cluster import percentile
from meshhost.sim.scenarios import (
    broadcast_reach,
    crash_detection,
    false_dead_under_loss_and_pauses,
    partition_heal,
    restart_all,
)

LAN = PROFILES["lan"]().membership
LOCAL = PROFILES["local"]().membership


def test_crash_is_detected_by_every_host_of_100_on_lan_within_the_figures():
    times = []
    for seed in seeds([11, 12, 13]):
        got = run_seeded(lambda s: crash_detection(s, 100, LAN), seed)
        assert all(t != float("inf") for t in got), f"SEED={seed}: some host never noticed"
        times += got
    median, p99 = statistics.median(times), percentile(times, 0.99)
    print(
        f"\ncrash detection, 100 hosts LAN: median {median:.2f} s, p99 {p99:.2f} s, "
        f"max {max(times):.2f} s over {len(times)} observations"
    )
    # The suspicion timeout alone is 4 * log10(100) * 1 s = 8 s.
    assert 8.0 <= median <= 11.0
    assert p99 <= 20.0


def test_crash_is_detected_by_10_hosts_on_the_local_profile_within_5_s_median():
    times = []
    for seed in seeds(list(range(20, 32))):
        times += run_seeded(lambda s: crash_detection(s, 10, LOCAL), seed)
    median = statistics.median(times)
    print(
        f"\ncrash detection, 10 hosts LOCAL: median {median:.2f} s, "
        f"p99 {percentile(times, 0.99):.2f} s over {len(times)} observations"
    )
    assert median <= 5.0
    assert max(times) < 20.0


def test_no_false_dead_over_10_minutes_with_10_percent_loss_and_a_host_stalling():
    for seed in seeds([5, 8, 13]):
        r = run_seeded(lambda s: false_dead_under_loss_and_pauses(s, 20, LAN), seed)
        print(
            f"\n10 simulated minutes, 20 hosts, 10 % loss, one host paused 5 s every 30 s: "
            f"{r.dead_declarations} dead declarations, {r.suspicions} suspicion events, "
            f"{r.refutations} refutations, {r.pauses} pauses"
        )
        assert r.pauses >= 19
        assert r.suspicions > 0, "the loss should have caused (refuted) suspicions"
        assert r.dead_declarations == 0, f"SEED={seed}"


def _heal(minority, one_way):
    kind = "one-way" if one_way else "symmetric"
    for seed in seeds([3]):
        r = run_seeded(
            lambda s: partition_heal(s, 100, LAN, minority, one_way, cut_s=40.0, horizon_s=60.0),
            seed,
        )
        print(
            f"\n{kind} partition {minority}/{100 - minority} of 100 LAN hosts: "
            f"split={r.split_views}, one view {r.heal_s} s after the cut was removed"
        )
        assert r.split_views, f"SEED={seed}: the cut did not split the lattice"
        assert r.heal_s is not None and r.heal_s <= 30.0, f"SEED={seed}"


def test_symmetric_50_50_partition_heals_within_30_s():
    _heal(50, False)


def test_one_way_50_50_partition_heals_within_30_s():
    _heal(50, True)


def test_symmetric_1_99_partition_heals_within_30_s():
    _heal(1, False)


def test_one_way_1_99_partition_heals_within_30_s():
    _heal(1, True)


def test_all_hosts_restarted_at_once_reform_one_lattice():
    for seed in seeds([4]):
        took = run_seeded(lambda s: restart_all(s, 50, LAN), seed)
        print(f"\nall 50 LAN hosts restarted at once: one view after {took} s")
        assert took is not None and took <= 30.0, f"SEED={seed}"
        took = run_seeded(lambda s: restart_all(s, 10, LOCAL), seed)
        print(f"all 10 LOCAL hosts restarted at once: one view after {took} s")
        assert took is not None and took <= 10.0, f"SEED={seed}"


def test_a_broadcast_reaches_99_9_percent_of_300_hosts_within_2_s():
    # simulations/broadcast.py runs the 1000-host version.
    for seed in seeds([9]):
        r = run_seeded(lambda s: broadcast_reach(s, 300, LAN, warmup_s=5.0), seed)
        t999 = r.time_to_fraction(0.999)
        print(
            f"\nbroadcast (new metadata), 300 LAN hosts: 50 % in {r.time_to_fraction(0.5):.2f} s,"
            f" 99.9 % in {t999:.2f} s, reached {r.reached}/{r.hosts - 1}"
        )
        assert t999 <= 2.0, f"SEED={seed}"


def test_every_profile_forms_a_lattice_by_joining_and_detects_a_crash():
    from meshhost.sim import build_cluster
    from meshhost.sim.invariants import view_disagreements

    for name in ("lan", "local", "wan", "sim"):
        cfg = PROFILES[name]().membership
        sim, _ = build_cluster(2, 8, cfg, bootstrap="join")
        assert view_disagreements(sim) == 0
        formed_at = sim.now
        victim = sim.hosts[3]
        sim.crash(victim)
        limit = cfg.suspicion_max_timeout_mult * 6 * cfg.probe_interval_s
        sim.run_for(limit)
        survivors = [h for h in sim.hosts if h is not victim]
        assert all(victim.node_id not in h.core.live_ids() for h in survivors), name
        print(f"\n{name}: 8 hosts formed by joining in {formed_at:.2f} s; crash noticed by all")
