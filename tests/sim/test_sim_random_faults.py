"""Hypothesis drives random fault schedules; invariants are checked after every event.

Safety phase: for 50 virtual seconds the lattice suffers a random mix of
crashes and restarts (with and without disk), stalls, symmetric and one-way
partitions, loss, duplication, reordering and skewed clocks, while
:class:`~meshhost.sim.invariants.SwimInvariants` checks every event.
Liveness phase: every fault is lifted and the running hosts must converge
to one view.  A failure prints ``SEED=...`` and hypothesis shrinks the
schedule.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from meshhost.config import PROFILES
from meshhost.errors import SimulationError
from meshhost.sim import LinkModel, NetworkModel, Simulator, SwimInvariants, swim_factory
from meshhost.sim.cluster import invariant_window_s, wait_for_one_view

LOCAL = PROFILES["local"]().membership
FAULTS_END_S = 50.0

crash = st.tuples(
    st.just("crash"), st.floats(0, 30), st.integers(0, 99), st.booleans(), st.floats(0.1, 15)
)
pause = st.tuples(st.just("pause"), st.floats(0, 30), st.integers(0, 99), st.floats(0.1, 8))
cut = st.tuples(
    st.just("cut"), st.floats(0, 30), st.integers(1, 99), st.booleans(), st.floats(0.5, 20)
)
schedules = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32),
        "n": st.integers(3, 6),
        "loss": st.sampled_from([0.0, 0.0, 0.05, 0.2]),
        "duplicate": st.sampled_from([0.0, 0.1]),
        "reorder": st.sampled_from([0.0, 0.3]),
        "skews": st.lists(st.tuples(st.floats(-50, 50), st.floats(-0.001, 0.001)), max_size=6),
        "faults": st.lists(st.one_of(crash, pause, cut), max_size=6),
    }
)


def run(schedule):
    seed, n = schedule["seed"], schedule["n"]
    network = NetworkModel(
        LinkModel(
            loss=schedule["loss"], duplicate=schedule["duplicate"], reorder=schedule["reorder"]
        )
    )
    sim = Simulator(seed, network)
    inv = SwimInvariants(invariant_window_s(LOCAL, n)).install(sim)
    booted = []

    def pick_seeds(host):
        pool = [a for a in booted if a != host.addr] if host.restarts else list(booted)
        if not host.restarts:
            booted.append(host.addr)
        return sim.rng.sample(pool, min(3, len(pool)))

    factory = swim_factory(LOCAL, seeds=pick_seeds)
    skews = schedule["skews"]
    hosts = []
    for i in range(n):
        offset, drift = skews[i] if i < len(skews) else (0.0, 0.0)
        hosts.append(sim.add_host(factory, clock_offset=offset, clock_drift=drift, start=False))
    for i, h in enumerate(hosts):
        sim.at(i * 0.05, sim.boot, h)
    for fault in schedule["faults"]:
        kind, at = fault[0], fault[1]
        if kind == "crash":
            host, disk, down = hosts[fault[2] % n], fault[3], fault[4]
            sim.at(at, sim.crash, host)
            sim.at(at + down, lambda h=host, d=disk: h.up or sim.restart(h, wipe_disk=not d))
        elif kind == "pause":
            sim.at(at, sim.pause, hosts[fault[2] % n], fault[3])
        else:
            split, one_way, length = fault[2] % (n - 1) + 1, fault[3], fault[4]

            def start_cut(split=split, one_way=one_way, length=length):
                cut_id = sim.partition(hosts[:split], hosts[split:], one_way=one_way)
                sim.after(length, sim.heal, cut_id)

            sim.at(at, start_cut)
    sim.run_until(FAULTS_END_S)
    # Liveness: lift every fault.
    sim.set_default_link(LinkModel())
    sim.heal()
    for h in hosts:
        if not h.up:
            sim.restart(h)
    took = wait_for_one_view(sim, 90.0)
    if took is None:
        raise SimulationError(f"SEED={seed}: no single view 90 s after every fault was lifted")
    assert inv.checks > 0
    return took


@settings(deadline=None)
@given(schedules)
def test_random_fault_schedules_keep_invariants_and_converge(schedule):
    try:
        run(schedule)
    except Exception:
        print(f"SEED={schedule['seed']} schedule={schedule}")
        raise


def test_a_hand_picked_nasty_schedule():
    took = run(
        {
            "seed": 99,
            "n": 6,
            "loss": 0.2,
            "duplicate": 0.1,
            "reorder": 0.3,
            "skews": [(-50.0, 0.001), (50.0, -0.001)],
            "faults": [
                ("cut", 2.0, 3, True, 20.0),
                ("crash", 5.0, 1, False, 10.0),
                ("pause", 6.0, 2, 8.0),
                ("crash", 7.0, 3, True, 2.0),
                ("cut", 25.0, 1, False, 10.0),
            ],
        }
    )
    print(f"\nnasty schedule: one view {took} s after faults were lifted")
