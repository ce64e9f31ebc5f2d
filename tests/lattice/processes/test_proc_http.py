"""HTTP through kvcounter on three hosts, and the port taken over after `kill -9` of its holder.

Every host runs kvcounter; one `link put ... wasmcloud:httpserver --value
ADDRESS=127.0.0.1:PORT` makes every host try to serve that address.  On one
machine (one namespace) only one binds it; the others retry.  After the
holder is killed with SIGKILL, another host binds the port and serves.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import ProcLattice, parallel

pytestmark = [pytest.mark.netns, pytest.mark.slow]

TAKEOVER_S = 20.0
"""Bound of the failover wait; the design says a survivor takes the port within ~10 s."""


def test_http_is_served_and_another_host_takes_the_port_after_kill_9_of_its_holder(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    hosts, _ = lattice.start_hosts("a", "b", "c")
    _, b, c = hosts
    kv_path, kv_id = modules["kvcounter"]
    parallel(*(lambda h=h: h.cli("start", str(kv_path)).ok() for h in hosts))
    port = random.randrange(20000, 30000)  # a fresh namespace: below the ephemeral range
    url = f"http://127.0.0.1:{port}/hello"
    parallel(
        lambda: c.cli("link", "put", kv_id, "wasmcloud:keyvalue").ok(),
        lambda: b.cli(
            "link", "put", kv_id, "wasmcloud:httpserver", "--value", f"ADDRESS=127.0.0.1:{port}"
        ).ok(),
    )

    answers: list[dict] = []

    def served() -> bool:
        answers[:] = [lattice.http_get(url)]
        return answers[0]["status"] == 200

    try:
        lattice.wait_for(served, f"GET {url} answers 200", timeout_s=15)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast answer: {answers}") from None
    body = json.loads(answers[0]["body"])
    assert body["count"] >= 1, body
    holder_pid = lattice.tcp_listener_pid(port)
    by_pid = {h.pid: h for h in hosts}
    assert holder_pid in by_pid, f"port {port} is held by pid {holder_pid}, not a host"
    holder = by_pid[holder_pid]

    holder.kill9()
    killed_at = time.monotonic()
    lattice.wait_for(served, f"another host serves {url} after the kill", timeout_s=TAKEOVER_S)
    takeover_s = time.monotonic() - killed_at
    new_pid = lattice.tcp_listener_pid(port)
    assert new_pid in by_pid and new_pid != holder_pid, (holder_pid, new_pid)
    assert json.loads(answers[0]["body"])["count"] >= 1
    print(
        f"HTTP port {port}: held by {holder.name}; after its kill -9, "
        f"{by_pid[new_pid].name} served it {takeover_s:.2f} s later"
    )
