"""Jepsen-style checks of a real lab run's history (``history.jsonl``).

Invocations and the directory are judged by :mod:`meshhost.lab.checkers`
(the checkers that judge the simulator's runs), the run's records turned
into their histories; the counter is judged here.  Each verdict is
JSON-able: ``{"ok": bool, "violations": [...], ...counts}``.

``invocations``
    :func:`~meshhost.lab.checkers.check_invocations`: every call ended --
    answered, or failed cleanly with an ``error:`` line -- within its
    deadline plus the CLI's start-up margin (each call is a fresh
    ``meshhost call`` process); a hung or crashed call has an unknown outcome.
    At-least-once: duplicates are allowed.
``counter``
    kvcounter's acknowledged counts, checked here (a counter is not the
    register :func:`~meshhost.lab.checkers.check_kv` judges: increments that
    ran but were never acknowledged leave gaps whose times nobody knows):
    no two acknowledged calls saw the same count (one increment would be
    lost), no call saw a count at or below one acknowledged before it
    *started* (the value went backwards), and the final read was answered.
    Counts applied but never acknowledged (failed calls that did run, or
    at-least-once re-deliveries) are reported, not failed.
``directory``
    :func:`~meshhost.lab.checkers.check_directory`: after the heal every host
    holds the same links and config, each the last write of its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshhost.lab import checkers
from meshhost.lab.checkers import CheckResult, DirectoryWrite, Op

__all__ = ["check_all", "check_counter", "check_directory", "check_invocations"]

History = Sequence[dict[str, Any]]


def _verdict(result: CheckResult, **extra: Any) -> dict[str, Any]:
    return {
        "ok": result.valid,
        "violations": list(result.violations),
        **dict(result.counts),
        **extra,
    }


def _calls(history: History) -> list[dict[str, Any]]:
    return [e for e in history if e["op"] == "call"]


def check_invocations(history: History) -> dict[str, Any]:
    ops = []
    bound = 0.0
    for i, e in enumerate(_calls(history)):
        rid = f"{e['host']}-{i}"
        bound = max(bound, e["deadline_s"] + e["margin_s"])
        ops.append(Op("invoke", rid, e["start"], process=e["host"]))
        # hung (killed at deadline + margin) or crashed: the client cannot know.
        kind = {"ok": "ok", "fail": "fail"}.get(e["outcome"], "info")
        ops.append(Op(kind, rid, e["end"], process=e["host"]))
    by_phase: dict[str, dict[str, int]] = {}
    for e in _calls(history):
        counts = by_phase.setdefault(e["phase"], {})
        counts[e["outcome"]] = counts.get(e["outcome"], 0) + 1
    return _verdict(checkers.check_invocations(ops, bound, at_least_once=True), by_phase=by_phase)


def check_directory(history: History) -> dict[str, Any]:
    views = [e["views"] for e in history if e["op"] == "directory"]
    if not views:
        return {"ok": False, "violations": ["no directory was read after the heal"]}
    states: dict[str, dict[str, Any]] = {}
    for host, view in views[-1].items():
        state: dict[str, Any] = {f"link {' '.join(link)}": "linked" for link in view["links"] or []}
        state.update({f"config {k}": v for k, v in view["config"].items() if v is not None})
        states[host] = state
    writes = []
    for e in history:
        if e["op"] == "link_put" and e["outcome"] == "ok":
            key = f"link {e['actor']} {e['contract']} {e['link_name']}"
            writes.append(DirectoryWrite(key, "linked", e["time"], e["host"]))
        elif e["op"] == "config_put" and e["outcome"] == "ok":
            writes.append(DirectoryWrite(f"config {e['key']}", e["value"], e["time"], e["host"]))
    return _verdict(checkers.check_directory(states, writes))


def check_counter(history: History) -> dict[str, Any]:
    acked = sorted(
        (
            e
            for e in history
            if e["op"] == "call" and e["outcome"] == "ok" and e["count"] is not None
        ),
        key=lambda e: e["end"],
    )
    violations = []
    seen: dict[int, dict[str, Any]] = {}
    for e in acked:
        other = seen.get(e["count"])
        if other is not None:
            violations.append(
                f"count {e['count']} acknowledged twice (calls from "
                f"{other['host']} and {e['host']}): an increment was lost"
            )
        seen.setdefault(e["count"], e)
        before = [a["count"] for a in acked if a["end"] < e["start"]]
        if before and e["count"] <= max(before):
            violations.append(
                f"call from {e['host']} at {e['start']:.2f} s saw {e['count']}, "
                f"but {max(before)} was acknowledged before it started"
            )
    final = [e for e in acked if e["phase"] == "final"]
    if not acked:
        return {
            "ok": False,
            "violations": ["no call was acknowledged: nothing to check"],
            "acknowledged": 0,
        }
    if not final:
        violations.append("the final read was not answered: cannot tell whether writes survived")
    unacked = sum(1 for e in history if e["op"] == "call" and e["outcome"] != "ok")
    top = max(e["count"] for e in acked)
    return {
        "ok": not violations,
        "violations": violations,
        "acknowledged": len(acked),
        "final": final[-1]["count"] if final else None,
        "applied_unacknowledged": top - len(acked),
        "unacknowledged_calls": unacked,
    }


def check_all(history: History) -> dict[str, Any]:
    """Every check; ``ok`` only if all pass."""
    checks = {
        "invocations": check_invocations(history),
        "counter": check_counter(history),
        "directory": check_directory(history),
    }
    return {"ok": all(c["ok"] for c in checks.values()), **checks}
