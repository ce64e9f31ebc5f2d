"""Every shipped example runs: one command builds and signs every example actor,
and each manifest in examples/manifests/ applies as shipped to a small real
lattice (two `meshhost up` processes in a private namespace) until each of its
components runs as many instances as it asks for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import ProcLattice

pytestmark = [pytest.mark.netns, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MANIFESTS = sorted((EXAMPLES / "manifests").glob("*.yaml"))
RUNNING = {
    "counter": {"counter": 3},
    "echo": {"echo": 4},
    "edge": {"recorder": 2, "pinger": 2},  # a recorder on each host labelled role=edge
    "kvcounter": {"counter": 4},
}
"""App name -> component -> instances the shipped manifest asks for on these two hosts."""


def test_one_command_builds_every_example_and_every_manifest_runs(
    lattice: ProcLattice, tmp_path: Path
) -> None:
    assert {m.stem for m in MANIFESTS} == {"counter", "echo", "edge-daemon", "kvcounter"}
    folder = tmp_path / "manifests"
    built = subprocess.run(
        [sys.executable, str(EXAMPLES / "build.py"), "--out", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    ids = {
        line.split()[0].rsplit("/", 1)[-1].removesuffix(".wasm"): line.split()[2]
        for line in built.stdout.splitlines()
    }
    assert set(ids) == {"echo", "kvcounter", "recorder", "pinger"}, built.stdout
    for manifest in MANIFESTS:  # as shipped, beside the modules they name
        shutil.copy(manifest, folder / manifest.name)

    east = lattice.add("east", extra_args=("--label", "zone=east", "--label", "role=edge"))
    west = lattice.add("west", extra_args=("--label", "zone=west", "--label", "role=edge"))
    lattice.wait_for(lambda: bool(east.status() and west.status()), "both hosts are up")
    both = {east.host_id, west.host_id}
    lattice.wait_for(
        lambda: east.alive_ids() == west.alive_ids() == both, "the two hosts see each other"
    )

    def running(app: str) -> dict[str, int]:
        # Exit 1 is also "failed (yet)" with the status shown, or "its manifest has
        # not reached this host yet" with nothing on stdout: ask again.
        status = west.cli("app", "status", app, "--json")
        if status.returncode not in (0, 1) or not status.stdout.strip():
            return {}
        return {c["component"]: c["running"] for c in json.loads(status.stdout)["components"]}

    def actors() -> int:
        return sum(
            a["instances"]
            for h in (east, west)
            for a in h.cli("inventory", "--json").json()["actors"]
        )

    # One at a time, as a person trying them would: counter.yaml and kvcounter.yaml
    # both run the kvcounter actor and set its links.
    apps = {
        "counter.yaml": "counter",
        "echo.yaml": "echo",
        "edge-daemon.yaml": "edge",
        "kvcounter.yaml": "kvcounter",
    }
    for manifest in MANIFESTS:
        app = apps[manifest.name]
        east.cli("apply", str(folder / manifest.name)).ok()
        lattice.wait_for(
            lambda app=app: running(app) == RUNNING[app],
            f"app {app} runs {RUNNING[app]}",
            timeout_s=60,
        )
        if app == "edge":
            # The actor-to-actor link works: Ping comes back by way of the recorder.
            answer = west.call(ids["pinger"], "Ping", "hello", as_json=False)
            assert answer.ok().stdout.strip() == "hello", answer.describe()
        east.cli("app", "delete", app).ok()
        lattice.wait_for(lambda: actors() == 0, f"app {app} is gone from both hosts")
