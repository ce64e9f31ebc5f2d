"""Each checker passes a history that keeps its property and flags one that breaks it."""

from __future__ import annotations

import pytest

from meshhost.errors import HistoryViolation
from meshhost.lab.checkers import (
    DirectoryWrite,
    Op,
    check_directory,
    check_invocations,
    check_kv,
)


def test_invocations_answered_within_their_deadline_pass() -> None:
    history = [
        Op("invoke", "1", 0.0),
        Op("handled", "1", 0.1, process="h1"),
        Op("ok", "1", 0.2),
        Op("invoke", "2", 1.0),
        Op("fail", "2", 1.9),  # failed, but said so in time
    ]
    result = check_invocations(history, deadline_s=1.0)
    assert result.valid and result.counts == {"invoked": 2, "ok": 1, "failed": 1, "duplicated": 0}
    assert result.raise_if_invalid() is result


def test_invocations_late_unanswered_unknown_or_duplicated_are_violations() -> None:
    history = [
        Op("invoke", "late", 0.0),
        Op("ok", "late", 2.5),
        Op("invoke", "lost", 0.0),
        Op("invoke", "unknown", 0.0),
        Op("info", "unknown", 1.0),
        Op("invoke", "dup", 0.0),
        Op("handled", "dup", 0.1, process="h1"),
        Op("handled", "dup", 0.2, process="h2"),
        Op("ok", "dup", 0.3),
        Op("ok", "ghost", 0.5),
    ]
    result = check_invocations(history, deadline_s=1.0)
    text = "\n".join(result.violations)
    assert not result.valid and len(result.violations) == 5
    assert "request late: ok after 2.500 s, past its 1 s deadline" in text
    assert "request lost (call at t=0.000): never answered" in text
    assert "outcome unknown (info)" in text
    assert "request dup: ran 2 times (h1, h2)" in text
    assert "request ghost: completed or handled but never invoked" in text
    with pytest.raises(HistoryViolation, match="invocations: 5 violations"):
        result.raise_if_invalid()
    # At-least-once delivery allows the duplicate run, nothing else.
    assert len(check_invocations(history, 1.0, at_least_once=True).violations) == 4


def _kv(*ops: tuple[str, str, str, object, float, float, str]) -> list[Op]:
    """(id, f, key, value, start, end, outcome) -> invoke + completion records."""
    history = []
    for rid, f, key, value, start, end, outcome in ops:
        history.append(Op("invoke", rid, start, f, key, value if f == "write" else None))
        history.append(Op(outcome, rid, end, f, key, value if f == "read" else None))
    return history


def test_kv_reads_of_the_latest_or_a_concurrent_write_pass() -> None:
    history = _kv(
        ("w1", "write", "k", "a", 0.0, 1.0, "ok"),
        ("w2", "write", "k", "b", 2.0, 3.0, "ok"),
        ("r1", "read", "k", "b", 4.0, 4.1, "ok"),
        ("w3", "write", "k", "c", 5.0, 9.0, "info"),  # may or may not have happened
        ("r2", "read", "k", "c", 6.0, 6.1, "ok"),
        ("r3", "read", "k", "b", 6.2, 6.3, "ok"),
        ("r0", "read", "j", None, 0.0, 0.1, "ok"),  # nothing acknowledged yet
    )
    result = check_kv(history)
    assert result.valid, result.violations
    assert result.counts == {"writes": 3, "reads": 4, "keys": 1}


def test_kv_a_lost_acknowledged_write_is_a_violation() -> None:
    history = _kv(
        ("w1", "write", "k", "a", 0.0, 1.0, "ok"),
        ("w2", "write", "k", "b", 2.0, 3.0, "ok"),
        ("r1", "read", "k", "a", 4.0, 4.1, "ok"),  # b was acknowledged, a is older
        ("r2", "read", "k", None, 4.0, 4.1, "ok"),  # gone altogether
        ("wf", "write", "k", "x", 5.0, 5.1, "fail"),
        ("r3", "read", "k", "x", 6.0, 6.1, "ok"),  # a failed write must not show
    )
    result = check_kv(history)
    text = "\n".join(result.violations)
    assert len(result.violations) == 3
    assert "read r1 of 'k': returned the older 'a'; the acknowledged write of 'b'" in text
    assert "read r2 of 'k': returned nothing after an acknowledged write" in text
    assert "read r3 of 'k': returned 'x', which no successful write wrote" in text


WRITES = [
    DirectoryWrite("link/a", "v1", (1, "h1"), "h1"),
    DirectoryWrite("link/a", "v2", (2, "h2"), "h2"),
    DirectoryWrite("config/x", "on", (1, "h1"), "h1"),
    DirectoryWrite("config/x", None, (3, "h3"), "h3"),  # deleted last
]


def test_directory_converged_on_the_last_writers_passes() -> None:
    states = {h: {"link/a": "v2"} for h in ("h1", "h2", "h3")}
    result = check_directory(states, WRITES)
    assert result.valid, result.violations
    assert result.counts == {"hosts": 3, "keys": 2, "agreeing": 3}


def test_directory_divergent_or_not_last_writer_wins_is_a_violation() -> None:
    states = {
        "h1": {"link/a": "v1", "config/x": "on"},  # lost both later writes
        "h2": {"link/a": "v1", "config/x": "on"},
        "h3": {"link/a": "v2"},
    }
    result = check_directory(states, WRITES)
    text = "\n".join(result.violations)
    assert not result.valid
    assert "host h3 differs from the others on config/x, link/a" in text
    assert "entry 'link/a' holds 'v1', not the last write 'v2' (by h2)" in text
    assert "entry 'config/x' was deleted last (by h3) but holds 'on'" in text
    invented = check_directory({"h1": {"k": 1}}, [])
    assert invented.violations == ("entry 'k' holds 1, which no write made",)
    assert not check_directory({}, WRITES).valid
