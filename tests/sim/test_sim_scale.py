"""Big lattices: the O(n) converged build over one shared view, and skewed clocks."""

import random
from collections import Counter

import pytest

from meshhost.config import MembershipConfig
from meshhost.errors import MembershipUsageError
from meshhost.membership.events import MemberDead
from meshhost.membership.shared import LazyShuffle, SharedIdList, SharedView
from meshhost.sim import build_cluster, view_disagreements
from meshhost.sim.cluster import wait_for_one_view

CFG = MembershipConfig()


class _Alive:
    def __init__(self, i):
        self.node = f"N{i}"
        self.addr = (f"10.0.0.{i}", 1)


def _view(n):
    return SharedView([_Alive(i) for i in range(n)])


def test_shared_id_list_is_a_set_with_uniform_choice():
    ids = SharedIdList(_view(6), without=["N0"])
    assert len(ids) == 5 and "N0" not in ids and set(ids) == {"N1", "N2", "N3", "N4", "N5"}
    ids.discard("N3")
    ids.add("X")
    ids.add("N0")
    ids.add("X")
    assert set(ids) == ids.to_set() == {"N0", "N1", "N2", "N4", "N5", "X"}
    assert len(ids) == 6
    ids.discard("X")
    assert "X" not in ids and len(ids) == 5
    rng = random.Random(1)
    counts = Counter(ids.choice(rng) for _ in range(5000))
    assert set(counts) == {"N0", "N1", "N2", "N4", "N5"}  # never a removed id
    assert min(counts.values()) > 850  # ~1000 each


def test_lazy_shuffle_draws_every_id_once_including_late_ones():
    rng = random.Random(2)
    order = LazyShuffle(tuple("abcdefgh"), ["i"])
    drawn = [order.next(rng) for _ in range(4)]
    order.insert("z")
    while (x := order.next(rng)) is not None:
        drawn.append(x)
    assert sorted(drawn) == sorted("abcdefghiz")
    firsts = Counter(LazyShuffle(tuple("abcd")).next(rng) for _ in range(4000))
    assert min(firsts.values()) > 850  # each first about a quarter of the time


def test_converged_build_shares_one_view_and_holds_only_what_it_touched():
    n = 300
    sim, _ = build_cluster(1, n, CFG)
    assert view_disagreements(sim) == 0
    assert all(h.core.owned_records == 1 for h in sim.hosts)  # only itself so far
    assert all(len(h.core.members()) == n for h in sim.hosts[:3])
    sim.run_for(20.0)
    assert view_disagreements(sim) == 0
    owned = [h.core.owned_records for h in sim.hosts]
    # about 20 probes sent and 20 received each: a small part of the 300 records
    assert max(owned) < n // 3, max(owned)
    with pytest.raises(MembershipUsageError, match="fresh core"):
        sim.hosts[0].core.adopt_shared_view(SharedView([sim.hosts[0].core.own_alive]), 0.0)


@pytest.mark.parametrize("bootstrap", ["converged", "merged"])
def test_a_crash_is_detected_the_same_over_either_build(bootstrap):
    sim, _ = build_cluster(3, 40, CFG, bootstrap=bootstrap)
    sim.run_for(3.0)
    victim = sim.hosts[7]
    dead = set()
    sim.observers.append(
        lambda s, h, ev: (
            dead.add(h.index) if type(ev) is MemberDead and ev.member.id == victim.node_id else None
        )
    )
    sim.crash(victim)
    sim.run_for(60.0, stop=lambda: len(dead) == 39)
    assert len(dead) == 39
    # and a restart (same key) rejoins the shared lattice
    sim.restart(victim)
    assert wait_for_one_view(sim, 30.0) is not None


def test_skewed_drifting_clocks_keep_one_view():
    sim, _ = build_cluster(4, 30, CFG, clock_skew_s=3600.0, clock_drift=1e-3)
    offsets = [h.clock_offset for h in sim.hosts]
    drifts = [h.clock_drift for h in sim.hosts]
    assert all(-3600 <= o <= 3600 for o in offsets) and max(offsets) - min(offsets) > 1000
    assert all(-1e-3 <= d <= 1e-3 for d in drifts) and len(set(drifts)) == 30
    sim.run_for(60.0)
    assert view_disagreements(sim) == 0
    sim.crash(sim.hosts[0])
    assert wait_for_one_view(sim, 60.0) is not None  # failure detection on local clocks


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"bootstrap": "magic"}, "bootstrap must be 'join', 'converged' or 'merged'"),
        ({"clock_skew_s": -1.0}, "clock_skew_s must be a finite number >= 0"),
        ({"clock_drift": 1.5}, r"clock_drift must be in \[0, 1\)"),
    ],
)
def test_build_cluster_refuses_bad_arguments(kw, message):
    with pytest.raises(ValueError, match=message):
        build_cluster(1, 3, CFG, **kw)
