"""`meshhost up --processes 2`: two lattice members from one command, both serving calls.

The worker is a host of its own (own key, data dir DATA_DIR/workers/1); a
caller on another host gets answers from both processes; a worker that dies
is started again; the worker leaves with the primary (SIGTERM) and dies with
it (SIGKILL of the primary: no orphan).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import HostProc, ProcLattice

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def worker_events(host: HostProc) -> list[dict[str, object]]:
    """The "worker" events the primary printed (its log holds its stdout)."""
    events = []
    for line in host.log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"worker"' in line:
            record = json.loads(line)
            if record.get("event") == "worker":
                events.append(record)
    return events


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def test_two_processes_serve_calls_and_stop_together(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    a = lattice.add("a", extra_args=("--processes", "2"))
    b = lattice.add("b")
    lattice.wait_for(
        lambda: bool(worker_events(a)) and b.status() is not None,
        "a announces its worker and b is up",
    )
    worker = worker_events(a)[0]
    worker_id, worker_pid = str(worker["id"]), int(str(worker["pid"]))
    assert worker["worker"] == 1 and worker_id != a.host_id
    assert (a.data_dir / "workers" / "1" / "host.seed").exists()
    lattice.wait_for(
        lambda: b.alive_ids() == {a.host_id, worker_id, b.host_id},
        "b sees the primary and the worker alive",
    )

    echo_path, echo_id = modules["echo"]
    for host_id in (a.host_id, worker_id):
        a.cli("start", str(echo_path), "--host", host_id).ok()
    answered: set[str] = set()

    def both_answer() -> bool:
        result = b.call(echo_id, "Echo", "hi", deadline_s=3)
        if result.returncode == 0:
            answered.add(result.json()["host"])
        return answered == {a.host_id, worker_id}

    lattice.wait_for(both_answer, "calls from b are answered by both processes of a")

    os.kill(worker_pid, signal.SIGKILL)
    lattice.wait_for(lambda: len(worker_events(a)) == 2, "a starts its killed worker again")
    restarted = worker_events(a)[1]
    assert restarted["id"] == worker_id and restarted["pid"] != worker_pid
    new_pid = int(str(restarted["pid"]))

    assert a.terminate() == 0
    assert gone(new_pid), "the worker outlived the primary's graceful stop"
    lattice.wait_for(lambda: b.alive_ids() == {b.host_id}, "b sees both processes of a leave")

    a.start()  # the same data dir: same identities
    lattice.wait_for(lambda: len(worker_events(a)) == 3, "a starts its worker again")
    last_pid = int(str(worker_events(a)[2]["pid"]))
    a.kill9()
    lattice.wait_for(lambda: gone(last_pid), "the worker dies with its killed primary")
