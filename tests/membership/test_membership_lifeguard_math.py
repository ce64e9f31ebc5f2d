"""Lifeguard and SWIM arithmetic as table tests (values worked out by hand)."""

import math

import pytest

from meshhost.membership.awareness import Awareness
from meshhost.membership.suspicion import (
    Suspicion,
    expected_confirmations,
    remaining_suspicion_time,
    retransmit_limit,
    suspicion_timeout,
)


@pytest.mark.parametrize(
    ("mult", "n", "interval", "expected"),
    [
        (3, 1, 1.0, 3.0),  # log10 floor of 1: one interval per multiple
        (3, 5, 1.0, 3.0),  # log10(5) < 1 still counts as 1
        (3, 10, 1.0, 3.0),
        (3, 50, 1.0, 5.094),  # 3 * 1.698
        (3, 100, 1.0, 6.0),
        (3, 1000, 1.0, 9.0),
        (4, 100, 1.0, 8.0),  # the LAN profile at 100 hosts: the 8 s
        (4, 100, 0.5, 4.0),
        (4, 0, 1.0, 4.0),  # an empty view never gives less than mult intervals
    ],
)
def test_suspicion_timeout_minimum(mult, n, interval, expected):
    assert suspicion_timeout(mult, n, interval) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("confirmations", "k", "elapsed", "expected"),
    [
        (0, 3, 0.0, 30.0),  # nobody confirmed: the maximum
        (1, 3, 2.0, 14.0),  # log(2)/log(4) = 1/2 of the way: 16 s, 2 s gone
        (2, 3, 3.0, 4.81),  # log(3)/log(4) of the way: 7.81 s, 3 s gone
        (3, 3, 4.0, -2.0),  # all k confirmations: the minimum, overdue
        (4, 3, 5.0, -3.0),  # beyond k never goes below the minimum
        (5, 3, 10.0, -8.0),
        (0, 0, 1.0, 1.0),  # k = 0: the minimum from the start
    ],
)
def test_remaining_suspicion_time_shrinks_on_a_log_scale(confirmations, k, elapsed, expected):
    got = remaining_suspicion_time(confirmations, k, elapsed, 2.0, 30.0)
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("mult", "n", "expected"),
    [
        (4, 2, 0),  # only us and the suspect: nobody can confirm
        (4, 3, 0),  # one possible confirmer < k = 2
        (4, 4, 2),
        (4, 100, 2),
        (3, 3, 1),
        (6, 10, 4),
        (2, 50, 0),  # mult 2: k = 0, the minimum timeout from the start
    ],
)
def test_expected_confirmations_is_mult_minus_two_when_enough_hosts(mult, n, expected):
    assert expected_confirmations(mult, n) == expected


@pytest.mark.parametrize(
    ("mult", "n", "expected"),
    [(3, 0, 0), (3, 1, 3), (3, 9, 3), (3, 99, 6), (4, 100, 12), (4, 1000, 16), (2, 10, 4)],
)
def test_retransmit_limit(mult, n, expected):
    assert retransmit_limit(mult, n) == expected == mult * math.ceil(math.log10(n + 1))


def test_suspicion_counts_each_independent_confirmation_once():
    s = Suspicion("accuser", k=2, min_s=8.0, max_s=48.0, start=100.0)
    assert s.deadline == pytest.approx(148.0)
    assert not s.confirm("accuser")  # the accuser is not a confirmation
    assert s.confirm("b")
    assert not s.confirm("b")  # the same host twice counts once
    assert 108.0 < s.deadline < 148.0
    assert s.confirm("c")
    assert s.deadline == pytest.approx(108.0)
    assert not s.confirm("d")  # beyond k: nothing left to shrink


def test_suspicion_without_expected_confirmations_uses_the_minimum():
    s = Suspicion("a", k=0, min_s=3.0, max_s=18.0, start=10.0)
    assert s.deadline == pytest.approx(13.0)
    assert not s.confirm("b")


@pytest.mark.parametrize(
    ("deltas", "score", "scaled"),
    [
        ([], 0, 0.5),
        ([1], 1, 1.0),
        ([1, 1, 1], 3, 2.0),
        ([3, -1], 2, 1.5),
        ([-5], 0, 0.5),  # never below healthy
        ([100], 7, 4.0),  # capped at max_multiplier - 1
        ([100, -2], 5, 3.0),
    ],
)
def test_awareness_score_stretches_timeouts(deltas, score, scaled):
    a = Awareness(8)
    for d in deltas:
        a.apply_delta(d)
    assert a.score == score
    assert a.scale(0.5) == pytest.approx(scaled)


def test_awareness_rejects_a_useless_maximum():
    with pytest.raises(ValueError):
        Awareness(0)
