"""Router: local first, spread by load, failed hosts on probation."""

import random
from collections import Counter

from meshhost.rpc.router import PROBATION_INITIAL_S, Candidate, Router


def test_local_host_comes_first_when_it_runs_the_actor() -> None:
    router = Router("A", random.Random(1))
    order = router.candidates([Candidate("B", 1), Candidate("A", 1), Candidate("C", 1)], now=0)
    assert order[0] == "A"
    assert sorted(order) == ["A", "B", "C"]


def test_dead_hosts_and_hosts_without_instances_are_never_candidates() -> None:
    router = Router("A", random.Random(1))
    placements = [Candidate("B", 1, alive=False), Candidate("C", 0), Candidate("D", 2)]
    assert router.candidates(placements, now=0) == ["D"]
    assert router.candidates([], now=0) == []


def test_calls_spread_over_remote_hosts_by_calls_in_flight() -> None:
    router = Router("A", random.Random(7))
    placements = [Candidate(h, 1) for h in "BCDE"]
    chosen = Counter()
    for _ in range(400):
        host = router.candidates(placements, now=0)[0]
        router.started(host)  # calls stay in flight: the router must balance them
        chosen[host] += 1
    assert set(chosen) == set("BCDE")
    assert max(chosen.values()) - min(chosen.values()) <= 2


def test_more_instances_take_more_calls() -> None:
    router = Router("A", random.Random(3))
    placements = [Candidate("B", 1), Candidate("C", 3)]
    for _ in range(200):
        router.started(router.candidates(placements, now=0)[0])
    assert router.in_flight("C") > 2 * router.in_flight("B")


def test_unreachable_host_goes_on_probation_then_returns() -> None:
    router = Router("A", random.Random(1))
    placements = [Candidate("B", 1), Candidate("C", 1)]
    router.started("B")
    router.finished("B", reachable=False, now=10.0)
    for _ in range(20):
        assert router.candidates(placements, now=10.0 + PROBATION_INITIAL_S / 2) == ["C", "B"]
    # Probation over, equal cost: ties go to the lower host id again.
    assert router.candidates(placements, now=10.0 + PROBATION_INITIAL_S + 0.01)[0] == "B"
    router.started("B")
    router.finished("B", reachable=False, now=20.0)
    router.started("B")
    router.finished("B", reachable=False, now=20.0)
    # Second consecutive failure doubles the probation.
    assert router.candidates(placements, now=20.0 + PROBATION_INITIAL_S * 1.5)[-1] == "B"
    router.started("B")
    router.finished("B", reachable=True, now=30.0)
    assert router.in_flight("B") == 0


def test_same_seed_same_choices() -> None:
    placements = [Candidate(h, 1) for h in "BCDEFG"]
    runs = []
    for _ in range(2):
        router = Router("A", random.Random(42))
        runs.append([router.candidates(placements, now=0)[0] for _ in range(50)])
    assert runs[0] == runs[1]
