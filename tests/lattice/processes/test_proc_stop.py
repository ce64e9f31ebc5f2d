"""`meshhost host stop`: the host leaves gracefully and the call it is running still finishes.

A `Sleep` call (the test's sleeper actor waits 3.5 s without using CPU)
runs on a, called from b; while it is in flight, `meshhost host stop` is
sent to a.  The call is answered by a, a exits 0, b and c see a as
`left` (not dead), `meshhost events` on c reports it, and a later call says
plainly that no host runs the actor any more.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import (
    SLEEP_MS,
    SLEEP_SUBJECT,
    CliResult,
    HostProc,
    ProcLattice,
)

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_host_stop_drains_the_call_in_flight_and_the_others_see_it_leave(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    (a, b, c), _ = lattice.start_hosts("a", "b", "c")
    follower = subprocess.Popen(
        [sys.executable, "-m", "meshhost", "events", "--data-dir", str(c.data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stop_while_a_call_runs(lattice, modules, a, b, c)
    finally:
        if follower.poll() is None:
            follower.send_signal(signal.SIGINT)
        try:
            out, err = follower.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            follower.kill()
            out, err = follower.communicate()
            err += "\n(meshhost events ignored SIGINT for 10 s and was killed)"
    assert follower.returncode == 130 and "Traceback" not in err, err  # 128 + SIGINT
    events = [json.loads(line) for line in out.splitlines()]
    assert {"kind": "host_left", "host": a.host_id} in [
        {k: e.get(k) for k in ("kind", "host")} for e in events
    ], events


def stop_while_a_call_runs(
    lattice: ProcLattice,
    modules: dict[str, tuple[Path, str]],
    a: HostProc,
    b: HostProc,
    c: HostProc,
) -> None:
    sleeper_path, sleeper_id = modules["sleeper"]
    a.cli("start", str(sleeper_path), "--count", "2").ok()
    a.cli(
        "link", "put", sleeper_id, "wasmcloud:messaging", "--value", f"SUBSCRIPTION={SLEEP_SUBJECT}"
    ).ok()
    lattice.wait_for(
        lambda: b.call(sleeper_id, "Ping", deadline_s=3).returncode == 0,
        "b can call the sleeper on a",
        timeout_s=15,
    )

    outcome: list[CliResult | AssertionError] = []
    answered_at: list[float] = []

    def sleep_call() -> None:
        try:
            outcome.append(b.call(sleeper_id, "Sleep", deadline_s=10))
        except AssertionError as hung:
            outcome.append(hung)
        answered_at.append(time.monotonic())

    caller = threading.Thread(target=sleep_call, daemon=True)
    caller.start()
    try:
        lattice.wait_for(
            lambda: a.stat("actors.in_flight") >= 1 or bool(outcome),
            "a runs the Sleep call",
            timeout_s=15,
        )
        assert not outcome, f"the Sleep call ended before it was seen in flight: {outcome}"
        stop = a.cli("host", "stop").ok()
        stopped_at = time.monotonic()
        assert "stopping" in stop.stdout
    finally:
        caller.join(timeout=30)
    answer = outcome[0]
    assert isinstance(answer, CliResult), str(answer)
    result = answer.json()
    assert result["host"] == a.host_id and bytes.fromhex(result["payload"]) == b"slept", result
    assert answered_at[0] > stopped_at, "the call ended before a began to stop"
    assert result["ms"] >= SLEEP_MS - 100, f"the call was cut short: {result}"

    assert a.wait_exit(timeout_s=20) == 0, a.log_tail()
    lattice.wait_for(
        lambda: b.view().get(a.host_id) == "left" and c.view().get(a.host_id) == "left",
        "b and c see a as left",
    )
    print(
        f"host stop: the call in flight answered {answered_at[0] - stopped_at:.2f} s after "
        f"the stop command returned; b and c saw a as left within "
        f"{time.monotonic() - stopped_at:.2f} s of it"
    )
    gone = b.call(sleeper_id, "Sleep", deadline_s=3).failed_cleanly()
    assert "no host in lattice 'default' runs actor" in gone, gone
