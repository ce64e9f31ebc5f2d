"""Minimal Jepsen-style checks of a real lab run's history (``history.jsonl``).

These are the lab's own small checkers, kept apart from the simulator's
(:mod:`meshhost.lab.checkers`, being written at the same time) so either can
change alone.  Each takes the recorded history and returns a JSON-able
verdict ``{"ok": bool, "violations": [...], ...figures}``.

``invocations``
    Every call ended -- answered, or failed cleanly with an ``error:`` line --
    within its deadline plus the CLI's start-up margin; none hung or crashed.
``counter``
    kvcounter's acknowledged values: no two acknowledged calls saw the same
    count (one increment would be lost), no call saw a count below one
    acknowledged before it *started* (the value went backwards), and the
    final read is above every acknowledged value.  Counts applied but never
    acknowledged (failed or timed-out calls that did run, or at-least-once
    re-deliveries) are reported, not failed: at-least-once allows them.
``directory``
    After the heal every host holds the same links and config, and every
    config write acknowledged during the cut is there with its value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["check_all", "check_counter", "check_directory", "check_invocations"]

History = Sequence[dict[str, Any]]


def check_invocations(history: History) -> dict[str, Any]:
    calls = [e for e in history if e["op"] == "call"]
    violations = []
    for e in calls:
        bound = e["deadline_s"] + e["margin_s"]
        if e["outcome"] in ("hung", "crash"):
            violations.append(f"call from {e['host']} at {e['start']:.2f} s {e['outcome']}: "
                              f"{e.get('error') or 'no output'}")
        elif e["end"] - e["start"] > bound:
            violations.append(f"call from {e['host']} at {e['start']:.2f} s took "
                              f"{e['end'] - e['start']:.2f} s, over {bound:g} s")
    by_phase: dict[str, dict[str, int]] = {}
    for e in calls:
        counts = by_phase.setdefault(e["phase"], {})
        counts[e["outcome"]] = counts.get(e["outcome"], 0) + 1
    return {"ok": not violations, "violations": violations, "calls": len(calls),
            "by_phase": by_phase}


def check_counter(history: History) -> dict[str, Any]:
    acked = sorted((e for e in history if e["op"] == "call" and e["outcome"] == "ok"
                    and e["count"] is not None), key=lambda e: e["end"])
    violations = []
    seen: dict[int, dict[str, Any]] = {}
    for e in acked:
        other = seen.get(e["count"])
        if other is not None:
            violations.append(f"count {e['count']} acknowledged twice (calls from "
                              f"{other['host']} and {e['host']}): an increment was lost")
        seen.setdefault(e["count"], e)
        before = [a["count"] for a in acked if a["end"] < e["start"]]
        if before and e["count"] <= max(before):
            violations.append(f"call from {e['host']} at {e['start']:.2f} s saw {e['count']}, "
                              f"but {max(before)} was acknowledged before it started")
    final = [e for e in acked if e["phase"] == "final"]
    if not acked:
        return {"ok": False, "violations": ["no call was acknowledged: nothing to check"],
                "acknowledged": 0}
    if not final:
        violations.append("the final read was not answered: cannot tell whether writes survived")
    unacked = sum(1 for e in history if e["op"] == "call" and e["outcome"] != "ok")
    top = max(e["count"] for e in acked)
    return {"ok": not violations, "violations": violations, "acknowledged": len(acked),
            "final": final[-1]["count"] if final else None,
            "applied_unacknowledged": top - len(acked), "unacknowledged_calls": unacked}


def check_directory(history: History) -> dict[str, Any]:
    views = [e["views"] for e in history if e["op"] == "directory"]
    if not views:
        return {"ok": False, "violations": ["no directory was read after the heal"]}
    final = views[-1]
    violations = []
    distinct = {repr(v) for v in final.values()}
    if len(distinct) > 1:
        violations.append("hosts disagree after the heal: " + "; ".join(
            f"{name}: {view}" for name, view in sorted(final.items())))
    for e in history:
        if e["op"] == "config_put" and e["outcome"] == "ok":
            missing = [n for n, v in final.items() if v["config"].get(e["key"]) != e["value"]]
            if missing:
                violations.append(f"config {e['key']}={e['value']} (acknowledged on "
                                  f"{e['host']} during the {e['phase']}) is not on "
                                  f"{', '.join(sorted(missing))}")
    return {"ok": not violations, "violations": violations, "hosts": len(final)}


def check_all(history: History) -> dict[str, Any]:
    """Every check; ``ok`` only if all pass."""
    checks = {"invocations": check_invocations(history), "counter": check_counter(history),
              "directory": check_directory(history)}
    return {"ok": all(c["ok"] for c in checks.values()), **checks}
