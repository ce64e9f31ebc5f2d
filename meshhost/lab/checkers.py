"""Jepsen-style checkers over recorded histories (simulated or real hosts).

A history is a list of :class:`Op` records as clients saw them: an
``invoke`` when a request was made, then ``ok`` (it succeeded, with its
result), ``fail`` (it certainly did not take effect) or ``info`` (the client
cannot know: it timed out).  ``handled`` records, made by the callee, say
that the request really ran there (to find duplicates).  Records of one
request share its ``id``.  Times are seconds on one clock (virtual time in
the simulator, the test driver's monotonic clock on real hosts).

Each checker returns a :class:`CheckResult`; :meth:`CheckResult.raise_if_invalid`
raises :class:`~meshhost.errors.HistoryViolation` listing the violations, so
a scenario that calls it fails its seed (and the sweep prints the replay
command).  The API (``Op``, ``CheckResult``, the three ``check_*``
functions and their arguments) is stable: the real-host lab uses it too.

* :func:`check_invocations` — every invocation completes (``ok`` or
  ``fail``) within its deadline, nothing completes that was not invoked, and
  a request runs (``handled``) at most once unless at-least-once delivery
  allows duplicates.
* :func:`check_kv` — no acknowledged write is lost: a read that starts after
  a write was acknowledged returns that write's value or a newer one, never
  an older value, nothing, or the value of a write that failed.
* :func:`check_directory` — every host converged to the same entries, and
  each entry is the write with the highest stamp (last writer wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshhost.errors import HistoryViolation

__all__ = [
    "CheckResult",
    "DirectoryWrite",
    "Op",
    "check_directory",
    "check_invocations",
    "check_kv",
]

OP_TYPES = ("invoke", "ok", "fail", "info", "handled")


@dataclass(frozen=True, slots=True)
class Op:
    """One record of a history.

    ``type``: one of ``invoke``, ``ok``, ``fail``, ``info``, ``handled``.
    ``id``: the request this record belongs to.  ``f``: the operation
    (``call``, ``write``, ``read``, ...).  ``key`` / ``value``: what a
    key-value operation wrote or read (a read's value is on its ``ok``).
    ``process``: who recorded it (a client, a host).
    """

    type: str
    id: str
    time: float
    f: str = "call"
    key: str | None = None
    value: Any = None
    process: str = ""

    def __post_init__(self) -> None:
        if self.type not in OP_TYPES:
            raise ValueError(f"Op.type must be one of {', '.join(OP_TYPES)}, not {self.type!r}")


@dataclass(frozen=True, slots=True)
class CheckResult:
    checker: str
    valid: bool
    violations: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    """What the checker looked at (operations, reads, keys, hosts ...)."""

    def raise_if_invalid(self) -> CheckResult:
        if not self.valid:
            shown = "; ".join(self.violations[:5])
            more = f" (and {len(self.violations) - 5} more)" if len(self.violations) > 5 else ""
            raise HistoryViolation(
                f"{self.checker}: {len(self.violations)} violations: {shown}{more}"
            )
        return self

    def observation(self) -> dict[str, Any]:
        """As sweep observation fields: ``<checker>_valid`` and ``<checker>_violations``."""
        return {
            f"{self.checker}_valid": self.valid,
            f"{self.checker}_violations": len(self.violations),
        }


def _result(checker: str, violations: list[str], **counts: int) -> CheckResult:
    return CheckResult(checker, not violations, tuple(violations), counts)


def _by_id(history: Iterable[Op]) -> dict[str, list[Op]]:
    ops: dict[str, list[Op]] = {}
    for op in history:
        ops.setdefault(op.id, []).append(op)
    return ops


def check_invocations(
    history: Iterable[Op], deadline_s: float, *, at_least_once: bool = False
) -> CheckResult:
    """Every invocation answered (``ok``) or failed (``fail``) within ``deadline_s``.

    Violations: no completion, or only ``info`` (the client never learned
    the outcome); a completion later than the deadline; a completion with no
    invocation; two completions of one request; more than one ``handled``
    for one request unless ``at_least_once``.
    """
    violations: list[str] = []
    invoked = answered = failed = duplicates = 0
    for rid, ops in _by_id(history).items():
        invokes = [o for o in ops if o.type == "invoke"]
        done = [o for o in ops if o.type in ("ok", "fail")]
        handled = [o for o in ops if o.type == "handled"]
        if not invokes:
            violations.append(f"request {rid}: completed or handled but never invoked")
            continue
        invoked += 1
        start = invokes[0].time
        if len(invokes) > 1:
            violations.append(f"request {rid}: invoked {len(invokes)} times under one id")
        if not done:
            unknown = any(o.type == "info" for o in ops)
            violations.append(
                f"request {rid} ({invokes[0].f} at t={start:.3f}): "
                + ("outcome unknown (info)" if unknown else "never answered")
            )
        else:
            if len(done) > 1:
                violations.append(f"request {rid}: completed {len(done)} times")
            first = min(done, key=lambda o: o.time)
            answered += first.type == "ok"
            failed += first.type == "fail"
            if first.time - start > deadline_s:
                violations.append(
                    f"request {rid}: {first.type} after {first.time - start:.3f} s, "
                    f"past its {deadline_s:g} s deadline"
                )
        if len(handled) > 1:
            duplicates += 1
            if not at_least_once:
                hosts = ", ".join(sorted({o.process for o in handled}))
                violations.append(f"request {rid}: ran {len(handled)} times ({hosts})")
    return _result(
        "invocations",
        violations,
        invoked=invoked,
        ok=answered,
        failed=failed,
        duplicated=duplicates,
    )


def check_kv(history: Iterable[Op]) -> CheckResult:
    """No acknowledged write is lost (``f`` is ``write`` or ``read``, per ``key``).

    A read (its ``ok`` carries the value, ``None`` for absent) invoked after
    write W's ``ok`` must return the value of W or of a write not known to
    be older than W: a write whose ``ok`` came before W's invocation is
    older.  Reading a value no write wrote, or one only a ``fail``-ed write
    wrote, is a violation too.  Writes with ``info`` (unknown outcome) may
    or may not have happened, so reading them is fine.
    """
    violations: list[str] = []
    writes: list[
        tuple[str, Any, float, float | None, str]
    ] = []  # key, value, start, ok time, outcome
    reads: list[tuple[str, float, Any, str]] = []
    for rid, ops in _by_id(history).items():
        inv = next((o for o in ops if o.type == "invoke"), None)
        if inv is None or inv.f not in ("write", "read"):
            continue
        end = next((o for o in ops if o.type in ("ok", "fail", "info")), None)
        if inv.f == "write":
            outcome = end.type if end else "info"
            writes.append(
                (
                    str(inv.key),
                    inv.value,
                    inv.time,
                    end.time if end and end.type == "ok" else None,
                    outcome,
                )
            )
        elif end is not None and end.type == "ok":
            reads.append((str(inv.key), inv.time, end.value, rid))
    by_key: dict[str, list[tuple[str, Any, float, float | None, str]]] = {}
    for w in writes:
        by_key.setdefault(w[0], []).append(w)
    for key, start, value, rid in reads:
        mine = by_key.get(key, [])
        acked = [w for w in mine if w[3] is not None and w[3] < start]
        if not acked:
            continue  # nothing acknowledged before this read began: any value may be seen
        newest_start = max(w[2] for w in acked)
        candidates = [w for w in mine if w[1] == value and w[4] != "fail"]
        if value is None or not candidates:
            what = "nothing" if value is None else f"{value!r}, which no successful write wrote"
            violations.append(f"read {rid} of {key!r}: returned {what} after an acknowledged write")
            continue
        # The read is fine if some write of this value is not older than every
        # acknowledged one: it completed after (or is still open at) the start
        # of the newest acknowledged write.
        if all(w[3] is not None and w[3] < newest_start for w in candidates):
            lost = max(acked, key=lambda w: w[2])
            violations.append(
                f"read {rid} of {key!r}: returned the older {value!r}; the acknowledged "
                f"write of {lost[1]!r} (t={lost[2]:.3f}) was lost"
            )
    return _result("kv", violations, writes=len(writes), reads=len(reads), keys=len(by_key))


@dataclass(frozen=True, slots=True)
class DirectoryWrite:
    """One write to the directory: ``stamp`` orders writes (last writer wins);
    ``value`` None is a delete."""

    key: str
    value: Any
    stamp: Any
    host: str = ""


def check_directory(
    states: Mapping[str, Mapping[str, Any]], writes: Sequence[DirectoryWrite]
) -> CheckResult:
    """Every host holds the same entries, each the value of its highest-stamped write.

    ``states``: host -> key -> value as that host holds it (absent keys are
    not in the mapping).  Violations: a host differing from the most common
    state, an entry whose value is not its last writer's, an entry no write
    made, a deleted key still present.
    """
    violations: list[str] = []
    if not states:
        return _result("directory", ["no host states to compare"], hosts=0, keys=0)
    frozen = {h: tuple(sorted((k, repr(v)) for k, v in s.items())) for h, s in states.items()}
    counts: dict[tuple[tuple[str, str], ...], int] = {}
    for f in frozen.values():
        counts[f] = counts.get(f, 0) + 1
    majority = max(counts, key=lambda f: (counts[f], f))
    reference = dict(majority)
    for host, f in sorted(frozen.items()):
        if f != majority:
            mine = dict(f)
            diff = sorted(k for k in set(mine) | set(reference) if mine.get(k) != reference.get(k))
            violations.append(f"host {host} differs from the others on {', '.join(diff[:5])}")
    last: dict[str, DirectoryWrite] = {}
    for w in writes:
        if w.key not in last or w.stamp > last[w.key].stamp:
            last[w.key] = w
    some_state = next(s for h, s in states.items() if frozen[h] == majority)
    for key in sorted(set(last) | set(some_state)):
        want = last.get(key)
        if want is None:
            violations.append(f"entry {key!r} holds {some_state[key]!r}, which no write made")
        elif want.value is None and key in some_state:
            violations.append(
                f"entry {key!r} was deleted last (by {want.host}) but holds {some_state[key]!r}"
            )
        elif want.value is not None and some_state.get(key) != want.value:
            violations.append(
                f"entry {key!r} holds {some_state.get(key)!r}, not the last "
                f"write {want.value!r} (by {want.host or 'unknown'})"
            )
    return _result(
        "directory", violations, hosts=len(states), keys=len(last), agreeing=counts[majority]
    )
