"""`kill -9` of a host serving an actor while calls to it run: no call hangs, the survivor serves.

Echo and the test's sleeper (a `Sleep` call takes 3.5 s) run on hosts a
and c.  From b, two loops of `meshhost call --timeout 3` call echo and four
`Sleep` calls (`--timeout 10`) are made; a is killed with SIGKILL once it
has answered an echo and while it runs a `Sleep`.  Every call must exit
within its deadline plus a margin for starting the CLI, either answered (by
a or c) or with one clear error line; once b has declared a dead every call
is answered by c.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import (
    CLI_MARGIN_S,
    SLEEP_MS,
    SLEEP_SUBJECT,
    CliResult,
    HostProc,
    ProcLattice,
    parallel,
)

pytestmark = [pytest.mark.netns, pytest.mark.slow]

DEADLINE_S = 3.0
LOOPS = 2
CALLS_AFTER_DETECTION = 2
"""Per loop, after b has marked a dead: these must all be answered by c."""
SLEEPS = 4
"""`Sleep` calls in flight at the kill; b's router spreads them over a and c by load."""
SLEEP_DEADLINE_S = 10.0
FROZEN_MAX_CALLS = 12
"""A random pick between two equal hosts misses the frozen one 12 times in 1/4096 runs."""
FAILOVER_SEEN_MS = 500
"""An echo on loopback answers in a few ms; one that took this long waited for a time-out."""


class CallLoop(threading.Thread):
    """Calls echo from ``caller`` back to back until stopped; records every call."""

    def __init__(self, caller: HostProc, actor: str) -> None:
        super().__init__(daemon=True)
        self.caller, self.actor = caller, actor
        self.stop = threading.Event()
        self.calls: list[tuple[float, float, CliResult | AssertionError]] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            began = time.monotonic()
            try:
                outcome: CliResult | AssertionError = self.caller.call(
                    self.actor, "Echo", f"call {n}", deadline_s=DEADLINE_S
                )
            except AssertionError as hung:  # run_cli's subprocess timeout: the call hung
                outcome = hung
            self.calls.append((began, time.monotonic(), outcome))

    def count_since(self, t: float) -> int:
        return sum(1 for began, _, _ in self.calls if began >= t)


def test_kill_9_of_a_serving_host_fails_calls_over_or_fails_them_clearly_and_none_hangs(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    (a, b, c), _ = lattice.start_hosts("a", "b", "c")
    echo_path, echo_id = modules["echo"]
    sleeper_path, sleeper_id = modules["sleeper"]
    parallel(
        *(lambda h=h: h.cli("start", str(echo_path)).ok() for h in (a, c)),
        *(lambda h=h: h.cli("start", str(sleeper_path), "--count", "2").ok() for h in (a, c)),
        lambda: b.cli(
            "link",
            "put",
            sleeper_id,
            "wasmcloud:messaging",
            "--value",
            f"SUBSCRIPTION={SLEEP_SUBJECT}",
        ).ok(),
    )

    def b_sees_both() -> bool:
        rows = b.cli("hosts", "--json").json()
        return {r["id"]: r["actors"] for r in rows} == {a.host_id: 3, b.host_id: 0, c.host_id: 3}

    lattice.wait_for(b_sees_both, "b sees echo and the sleeper on a and on c", timeout_s=15)

    # Someone follows a's events: when a dies the follower must say so and fail.
    follower = subprocess.Popen(
        [sys.executable, "-m", "meshhost", "events", "--data-dir", str(a.data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    loops = [CallLoop(b, echo_id) for _ in range(LOOPS)]
    sleeps: list[tuple[float, CliResult | AssertionError]] = []

    def sleep_call() -> None:
        try:
            outcome: CliResult | AssertionError = b.call(
                sleeper_id, "Sleep", deadline_s=SLEEP_DEADLINE_S
            )
        except AssertionError as hung:
            outcome = hung
        sleeps.append((time.monotonic(), outcome))

    sleepers = [threading.Thread(target=sleep_call, daemon=True) for _ in range(SLEEPS)]
    for loop in loops:
        loop.start()
    try:
        # Kill a once it has answered an echo and while it runs a Sleep.
        lattice.wait_for(
            lambda: (
                all(loop.calls for loop in loops)
                and any(
                    isinstance(o, CliResult) and o.returncode == 0 and o.json()["host"] == a.host_id
                    for loop in loops
                    for _, _, o in list(loop.calls)
                )
            ),
            "a has answered an echo",
        )
        for thread in sleepers:
            thread.start()
        lattice.wait_for(
            lambda: a.stat("actors.in_flight") >= 1 or bool(sleeps), "a runs a Sleep call"
        )
        assert not sleeps, "a Sleep call ended before a was seen running one"
        killed_at = time.monotonic()
        a.kill9()
        detect_s = lattice.wait_for(
            lambda: b.view().get(a.host_id) == "dead", "b declares the killed host dead"
        )
        detected_at = time.monotonic()
        lattice.wait_for(
            lambda: all(loop.count_since(detected_at) >= CALLS_AFTER_DETECTION for loop in loops),
            f"each loop made {CALLS_AFTER_DETECTION} calls after the detection",
            timeout_s=CALLS_AFTER_DETECTION * (DEADLINE_S + CLI_MARGIN_S) + 5,
        )
    finally:
        for loop in loops:
            loop.stop.set()
        for thread in [*loops, *sleepers]:
            if thread.is_alive():
                thread.join(timeout=SLEEP_DEADLINE_S + CLI_MARGIN_S + 5)
        try:
            _, follower_err = follower.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            follower.kill()
            _, follower_err = follower.communicate()
            follower_err += "\n(`meshhost events` still followed a 10 s after it was killed)"

    calls = sorted((call for loop in loops for call in loop.calls), key=lambda x: x[0])
    hung = [str(o) for _, _, o in calls if isinstance(o, AssertionError)]
    assert not hung, "calls hung:\n" + "\n".join(hung)
    answered: dict[str, int] = {}
    errors: list[str] = []
    for began, _, outcome in calls:
        assert isinstance(outcome, CliResult)
        if outcome.returncode == 0:
            answer = outcome.json()
            assert answer["host"] in (a.host_id, c.host_id), answer
            assert answer["ms"] <= DEADLINE_S * 1000 + 500, answer  # the host kept the deadline
            answered[answer["host"]] = answered.get(answer["host"], 0) + 1
            if began >= detected_at:
                assert answer["host"] == c.host_id, "a dead host answered a call"
        else:
            errors.append(outcome.failed_cleanly())
            assert began < detected_at, f"a call after the detection failed: {errors[-1]}"
    during = [o for began, _, o in calls if killed_at <= began < detected_at]
    slowest = max(end - began for began, end, _ in calls)
    print(
        f"kill -9 detected by b after {detect_s:.2f} s; {len(calls)} calls "
        f"({len(during)} between the kill and the detection), answered by "
        f"a={answered.get(a.host_id, 0)} c={answered.get(c.host_id, 0)}, "
        f"{len(errors)} clear errors {errors}, slowest CLI call {slowest:.2f} s"
    )

    # The Sleep calls: a's were cut by the kill and must be answered by c (the
    # kill loses the connection at once) or fail clearly, within their deadline.
    assert len(sleeps) == SLEEPS, "a Sleep call did not finish"
    slept, sleep_errors = [], []
    for _, outcome in sleeps:
        assert not isinstance(outcome, AssertionError), str(outcome)
        if outcome.returncode == 0:
            answer = outcome.json()
            assert answer["host"] == c.host_id, answer
            assert SLEEP_MS - 100 <= answer["ms"] <= SLEEP_DEADLINE_S * 1000 + 500, answer
            slept.append(round(answer["ms"]))
        else:
            sleep_errors.append(f"{outcome.failed_cleanly()} after {outcome.elapsed_s:.2f} s")
    print(
        f"Sleep calls in flight at the kill: answered by c in {sorted(slept)} ms; "
        f"failed clearly: {sleep_errors}"
    )

    # The dead host's own CLI says plainly that nothing runs there.
    stale = a.cli("hosts").failed_cleanly()
    assert "no meshhost host is running" in stale, stale
    assert follower.returncode == 1, follower_err
    assert "Traceback" not in follower_err and "host" in follower_err, follower_err


def test_calls_to_a_frozen_host_fail_over_on_timeout_within_the_deadline(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    """SIGSTOP, unlike SIGKILL, leaves a's sockets open: only a timeout can tell."""
    (a, b, c), _ = lattice.start_hosts("a", "b", "c")
    echo_path, echo_id = modules["echo"]
    parallel(
        lambda: a.cli("start", str(echo_path)).ok(), lambda: c.cli("start", str(echo_path)).ok()
    )

    def b_sees_both() -> bool:
        rows = b.cli("hosts", "--json").json()
        return {r["id"]: r["actors"] for r in rows} == {a.host_id: 1, b.host_id: 0, c.host_id: 1}

    lattice.wait_for(b_sees_both, "b sees echo on a and on c", timeout_s=15)

    # b's router picks a or c at random (equal load): call until one call has tried a,
    # seen as an answer from c that waited for a's time-out first.
    assert a.popen is not None
    a.popen.send_signal(signal.SIGSTOP)
    answers = []
    try:
        while len(answers) < FROZEN_MAX_CALLS and not any(
            x["ms"] >= FAILOVER_SEEN_MS for x in answers
        ):
            answers.append(b.call(echo_id, "Echo", "x", deadline_s=DEADLINE_S).json())
        answers.append(b.call(echo_id, "Echo", "x", deadline_s=DEADLINE_S).json())
    finally:
        a.popen.send_signal(signal.SIGCONT)
    assert [x["host"] for x in answers] == [c.host_id] * len(answers), answers
    assert all(x["ms"] < DEADLINE_S * 1000 for x in answers), answers
    assert any(x["ms"] >= FAILOVER_SEEN_MS for x in answers), (
        f"in {FROZEN_MAX_CALLS} calls b never tried the frozen host: {answers}"
    )
    print(f"calls while a was frozen answered by c in {[x['ms'] for x in answers]} ms")
    # Thawed, a refutes any suspicion and is alive again everywhere.
    ids = {a.host_id, b.host_id, c.host_id}
    lattice.wait_for(lambda: all(h.alive_ids() == ids for h in (a, b, c)), "a is alive again")
