"""Three `meshhost up` processes (mDNS in a private namespace): start anywhere, call from anywhere.

Everything goes through the CLI a user types: `start` on host A, `call`
from B and C, `link put` on C, `hosts`, `inventory` and `link list` anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import (
    CliResult,
    HostProc,
    ProcLattice,
    http_request_payload,
    kv_count,
    parallel,
)

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def poll_call(
    lattice: ProcLattice, host: HostProc, actor: str, operation: str, payload: str, until, what: str
) -> tuple[CliResult, float]:
    """Call from ``host`` until ``until(result)``; (that result, seconds it took)."""
    last: list[CliResult] = []

    def check() -> bool:
        last[:] = [host.call(actor, operation, payload, deadline_s=3)]
        return bool(until(last[0]))

    try:
        took = lattice.wait_for(check, what, timeout_s=15)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast call: {last[0].describe() if last else '-'}") from None
    return last[0], took


def test_an_actor_started_on_a_answers_calls_from_b_and_c(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    (a, b, c), formed_s = lattice.start_hosts("a", "b", "c")
    print(f"3 hosts formed a lattice by mDNS in {formed_s:.2f} s (process start included)")
    echo_path, echo_id = modules["echo"]

    started = a.cli("start", str(echo_path), "--json").json()
    assert started["actor"] == echo_id and started["host"] == a.host_id

    _, spread_s = poll_call(
        lattice,
        b,
        echo_id,
        "Echo",
        "x",
        lambda r: r.returncode == 0,
        "b can call the echo started on a",
    )
    print(f"echo on a callable from b {spread_s:.2f} s after `start` returned")
    from_b, from_c, plain, hosts, inventory = parallel(
        lambda: b.call(echo_id, "Echo", "hello from b").json(),
        lambda: c.call(echo_id, "Echo", "hello from c").json(),
        # Without --json the answer is written as is and stderr names the host.
        lambda: c.call(echo_id, "Echo", "plain", as_json=False).ok(),
        lambda: c.cli("hosts", "--json").json(),
        # A host id abbreviated to a unique prefix names the same host.
        lambda: b.cli("inventory", a.host_id[:6], "--json").json(),
    )
    assert from_b["host"] == a.host_id and bytes.fromhex(from_b["payload"]) == b"hello from b"
    assert from_c["host"] == a.host_id and bytes.fromhex(from_c["payload"]) == b"hello from c"
    assert plain.stdout == "plain" and f"answered by {a.host_id[:12]}" in plain.stderr
    assert {r["id"]: r["state"] for r in hosts} == {h.host_id: "alive" for h in (a, b, c)}, hosts
    assert {r["id"]: r["actors"] for r in hosts}[a.host_id] == 1
    assert inventory["host"] == a.host_id
    assert [(x["id"], x["instances"]) for x in inventory["actors"]] == [(echo_id, 1)]


def test_a_link_made_on_c_lets_the_counter_on_a_count_calls_from_b(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    (a, b, c), _ = lattice.start_hosts("a", "b", "c")
    kv_path, kv_id = modules["kvcounter"]
    request = http_request_payload(tmp_path / "request.msgpack")
    operation = "HttpServer.HandleRequest"

    a.cli("start", str(kv_path)).ok()
    # Before any link the actor is denied key-value: a clear error, not a hang.
    denied, _ = poll_call(
        lattice,
        b,
        kv_id,
        operation,
        request,
        lambda r: r.returncode == 1 and "link" in r.stderr,
        "b's call reaches the counter on a and is refused key-value",
    )
    assert "wasmcloud:keyvalue" in denied.failed_cleanly()

    c.cli("link", "put", kv_id, "wasmcloud:keyvalue").ok()
    first, linked_s = poll_call(
        lattice,
        b,
        kv_id,
        operation,
        request,
        lambda r: r.returncode == 0,
        "the link made on c reaches a",
    )
    print(f"link put on c took effect on a within {linked_s:.2f} s")
    assert first.json()["host"] == a.host_id
    counted = [kv_count(first)]
    counted += [kv_count(b.call(kv_id, operation, request)) for _ in range(2)]
    assert counted == [1, 2, 3]

    expected = [(kv_id, "wasmcloud:keyvalue", "default")]
    assert parallel(a.links, b.links, c.links) == [expected] * 3
