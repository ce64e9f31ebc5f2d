"""Strangers learn nothing and cost little: a real `meshhost up` process, knocked on.

A client in the test's namespace (``knock.py``) sends handshake message 1s to
the host's TCP port: made with a secret the host does not hold (no byte
comes back, the connection is closed, and 2,000 of them cost the host well
under a second of CPU, read from /proc), replayed (the second copy gets
nothing), or faster than the per-source handshake rate (the excess is closed
unanswered).  proto/spec/transport.md, "Strangers".
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lattice.processes.proc_lattice import CLI_MARGIN_S, HostProc, ProcLattice, run_cli

pytestmark = [pytest.mark.netns, pytest.mark.slow]

KNOCK = Path(__file__).resolve().parent / "knock.py"
FLOOD = 2000
CPU_BUDGET_S = 1.0
"""What the issue allows 2,000 wrong-PSK handshakes to cost the responder."""


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def knock(lattice: ProcLattice, host: HostProc, *args: str, timeout_s: float = 120) -> Any:
    assert lattice.netns is not None
    addr = host.status()["addr"]  # type: ignore[index]
    done = lattice.netns.run(
        [sys.executable, str(KNOCK), addr[0], str(addr[1]), lattice.lattice_name, *args],
        timeout_s=timeout_s + CLI_MARGIN_S,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start_one(lattice: ProcLattice, tmp_path: Path, transport_toml: str) -> HostProc:
    config = tmp_path / "host.toml"
    config.write_text("[transport]\n" + transport_toml)
    host = lattice.add("a", extra_args=("--config", str(config)))
    lattice.wait_for(lambda: host.status() is not None, "the host is up")
    return host


def test_a_stranger_gets_no_byte_a_replay_gets_nothing_and_a_flood_costs_little(
    lattice: ProcLattice, tmp_path: Path
) -> None:
    # No rate limit here: every one of the 2,000 goes through the MAC check.
    host = start_one(lattice, tmp_path, "handshake_rate_per_s = 0.0\n")
    stranger = run_cli(["lattice", "new", "--json"], timeout_s=30).json()["secret"]

    replay = knock(lattice, host, "replay", lattice.secret)
    assert replay["first"] > 0, "the genuine message 1 got no message 2"
    assert replay == {"first": replay["first"], "second": 0, "second_closed": True}
    lattice.wait_for(
        lambda: host.stat("transport.handshakes_replayed") == 1, "the host counts the replay"
    )

    idle_start, idle_wall = cpu_s(host.pid), time.monotonic()
    time.sleep(2.0)
    idle_rate = (cpu_s(host.pid) - idle_start) / (time.monotonic() - idle_wall)
    before, wall = cpu_s(host.pid), time.monotonic()
    flood = knock(lattice, host, "stranger", str(FLOOD), stranger)
    spent, took = cpu_s(host.pid) - before, time.monotonic() - wall
    assert flood == {"connections": FLOOD, "bytes_back": 0, "closed": FLOOD, "hung": 0}
    print(
        f"{FLOOD} wrong-PSK handshakes cost the host {spent:.3f} s CPU over {took:.1f} s "
        f"(idle: {idle_rate * took:.3f} s for as long)"
    )
    assert spent < CPU_BUDGET_S + idle_rate * took
    lattice.wait_for(
        lambda: host.stat("transport.handshake_failures") >= FLOOD,
        "the host counts every refused handshake",
    )
    assert host.stat("transport.handshakes_completed") == 0
    assert host.running


def test_connections_over_the_per_source_rate_are_closed_unanswered(
    lattice: ProcLattice, tmp_path: Path
) -> None:
    host = start_one(lattice, tmp_path, "handshake_rate_per_s = 0.5\nhandshake_burst = 20\n")
    burst = knock(lattice, host, "burst", "60", lattice.secret)
    assert burst["hung"] == 0, burst
    # 20 at once, plus one every 2 s while the 60 arrive.
    assert 20 <= burst["answered"] < 40 and burst["answered"] + burst["silent"] == 60, burst
    lattice.wait_for(
        lambda: host.stat("transport.connections_refused_rate") >= 20,
        "the host counts the refused connections",
    )
    refused = host.stat("transport.connections_refused_rate")
    families = host.cli("metrics", "--json").json()["metrics"]
    (family,) = [f for f in families if f["name"] == "meshhost_transport_connections_refused"]
    by_reason = {
        s["labels"]["reason"]: s["value"] for s in family["samples"] if s["name"].endswith("_total")
    }
    assert by_reason["rate"] >= refused and by_reason["replay"] == 0
    assert host.running


LOG_LINES_BUDGET = 20
"""Log lines 4,000 bad connections may add: one per kind per interval, not one each."""


def test_bad_handshakes_by_the_thousand_add_a_few_log_lines_and_the_host_still_serves(
    lattice: ProcLattice, tmp_path: Path
) -> None:
    # No rate limit: every connection reaches the handshake code and its logging.
    host = start_one(lattice, tmp_path, "handshake_rate_per_s = 0.0\n")
    stranger = run_cli(["lattice", "new", "--json"], timeout_s=30).json()["secret"]
    before = host.log.read_text(errors="replace").count("\n")

    flood = knock(lattice, host, "stranger", str(FLOOD), stranger)
    assert flood["bytes_back"] == 0 and flood["hung"] == 0, flood
    garbage = knock(lattice, host, "garbage", str(FLOOD), lattice.secret)
    assert garbage["bytes_back"] == 0 and garbage["hung"] == 0, garbage
    lattice.wait_for(
        lambda: host.stat("transport.handshake_failures") >= FLOOD,
        "the host counts the refused handshakes",
    )

    added = host.log.read_text(errors="replace").splitlines()[before:]
    print(f"{2 * FLOOD} bad connections added {len(added)} log lines:\n" + "\n".join(added))
    assert len(added) <= LOG_LINES_BUDGET, host.log_tail()
    # Still serving: a new host joins it and both see each other alive.
    assert host.running
    other = lattice.add("b")
    lattice.wait_for(
        lambda: host.alive_ids() == other.alive_ids() == {host.host_id, other.host_id},
        "a new host finds and joins the flooded one",
    )
