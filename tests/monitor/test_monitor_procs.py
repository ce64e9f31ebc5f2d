"""Three `meshhost up --metrics` processes: calls, a failover and a denial move the counters.

Each host's /metrics is scraped over HTTP (inside the lattice's private
namespace) and parsed with prometheus_client.parser; counters are compared
before and after each step, so the test holds whatever ran before it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshhost.control.api import ControlError
from tests.lattice.processes.proc_lattice import ProcLattice, http_request_payload
from tests.monitor.monitor_helpers import control_calls, metrics_url, scrape, start_monitored

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_counters_of_three_hosts_follow_calls_a_failover_and_a_denial(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    a, b, c = start_monitored(lattice, "a", "b", "c")
    echo_path, echo_id = modules["echo"]
    kv_path, kv_id = modules["kvcounter"]
    a.cli("start", str(echo_path)).ok()
    b.cli("start", str(echo_path)).ok()
    b.cli("start", str(kv_path)).ok()
    lattice.wait_for(
        lambda: (
            {r["id"]: r["actors"] for r in c.cli("hosts", "--json").json()}
            == {a.host_id: 1, b.host_id: 2, c.host_id: 0}
        ),
        "c sees echo on a and b, the counter on b",
    )

    # Calls: every one made by c is counted once by c (remote, ok) and once by
    # the host that ran it (peer c).
    before = {h.name: scrape(lattice, h) for h in (a, b, c)}
    answered = control_calls(c, echo_id, "Echo", b"x", 20)
    assert set(answered) <= {a.host_id, b.host_id}, answered
    after = {h.name: scrape(lattice, h) for h in (a, b, c)}
    made = "meshhost_invocations_total"
    labels = {"actor": echo_id, "operation": "Echo", "where": "remote", "outcome": "ok"}
    assert after["c"].value(made, **labels) - before["c"].value(made, **labels) == 20
    ran = "meshhost_actor_calls_total"
    for h in (a, b):
        delta = after[h.name].value(ran, actor=echo_id, peer=c.host_id, outcome="ok") - before[
            h.name
        ].value(ran, actor=echo_id, peer=c.host_id, outcome="ok")
        assert delta == answered.count(h.host_id), (h.name, delta, answered)
    assert (
        after["c"].value("meshhost_invocation_duration_seconds_count", actor=echo_id)
        - before["c"].value("meshhost_invocation_duration_seconds_count", actor=echo_id)
    ) == 20
    assert after["a"].value("meshhost_actor_instances", actor=echo_id) == 1
    assert after["c"].value("meshhost_members", state="alive") == 3
    assert after["c"].value("meshhost_transport_sessions") >= 2
    assert after["c"].value("meshhost_membership_packets_total", direction="out") > 0

    # A denial: the counter on b has no key-value link; b counts why it refused.
    request = http_request_payload(tmp_path / "request.msgpack")
    denied = c.call(kv_id, "HttpServer.HandleRequest", request, deadline_s=5)
    assert "wasmcloud:keyvalue" in denied.failed_cleanly()
    b_now, c_now = scrape(lattice, b), scrape(lattice, c)
    assert b_now.value("meshhost_denials_total", actor=kv_id, reason="no_link") == 1
    assert c_now.value(made, actor=kv_id, outcome="ok") == 0
    assert c_now.value(made, actor=kv_id) == 1

    # A failover: a dies; c's calls that pick a move to b, and c counts them.
    a.kill9()
    answered = control_calls(c, echo_id, "Echo", b"y", 30)
    assert not [x for x in answered if isinstance(x, ControlError)], answered
    assert set(answered) == {b.host_id}
    c_end, b_end = scrape(lattice, c), scrape(lattice, b)
    assert c_end.value("meshhost_invocation_failovers_total", actor=echo_id) >= 1
    assert c_end.value("meshhost_invocation_retries_total", actor=echo_id, reason="failover") >= 1
    assert (
        b_end.value(ran, actor=echo_id, peer=c.host_id)
        - after["b"].value(ran, actor=echo_id, peer=c.host_id)
    ) == 30

    # `meshhost metrics` from c answers for b (forwarded), with the same figures.
    forwarded = c.cli("metrics", "--host", b.host_id[:8], "--json").json()
    assert forwarded["host"] == b.host_id
    families = {f["name"]: f for f in forwarded["metrics"]}
    [denial] = families["meshhost_denials"]["samples"]
    assert denial["labels"]["reason"] == "no_link" and denial["value"] == 1
    # As a person reads it: one row per sample, the host and lattice labels left out.
    table = c.cli("metrics", "--host", b.host_id[:8], "--filter", "denials").ok().stdout
    assert f"host {b.host_id}" in table and "ready" in table
    [row] = [line for line in table.splitlines() if "meshhost_denials_total" in line]
    assert f"actor={kv_id}" in row and "reason=no_link" in row and row.split()[-1] == "1"
    assert "lattice=" not in table
    # Health and readiness on the metrics listener.
    health = lattice.http_get(metrics_url(c, "/readyz"))
    assert health["status"] == 200 and json.loads(health["body"])["ready"] is True, health
