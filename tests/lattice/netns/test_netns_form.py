"""Three hosts, each in its own namespace on a bridge, find each other by mDNS and serve.

Default profile, no seeds, no --bind or --advertise: what a user gets by
typing `meshhost up` on three machines of one LAN.  A fourth host with
another secret sits on the same bridge and must see nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lattice.netns.bridge_lattice import SUBNET, BridgedLattice
from tests.lattice.processes.proc_lattice import http_request_payload, kv_count, parallel, run_cli

pytestmark = [pytest.mark.netns, pytest.mark.slow]

MDNS_GROUP = "224.0.0.251"


def test_hosts_on_a_bridge_form_a_lattice_by_mdns_call_across_it_and_ignore_a_stranger(
    bridged: BridgedLattice, modules: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    other = run_cli(["lattice", "new", "--json"], timeout_s=30).json()
    stranger = bridged.add("stranger", secret=other["secret"])
    (a, b, c), formed_s = bridged.start_hosts("a", "b", "c")
    print(
        f"3 hosts in 3 namespaces formed a lattice by mDNS in {formed_s:.2f} s "
        "(process start included)"
    )

    # What a host binds and advertises by default, with one LAN interface.
    for host in (a, b, c):
        status = host.status()
        assert status is not None
        address, port = status["addr"]
        assert address == bridged.addresses[host.name], status["addr"]
        sockets = bridged.sockets(host.name)
        assert ("tcp", "0.0.0.0", port) in sockets and ("udp", "0.0.0.0", port) in sockets, (
            f"{host.name} should listen on every interface at port {port}: {sockets}"
        )
        assert MDNS_GROUP in bridged.multicast_groups(host.name, "eth0"), (
            f"{host.name} did not join the mDNS group on eth0"
        )
        peers = {m["id"]: m["addr"] for m in status["members"]}
        assert peers == {
            h.host_id: f"{bridged.addresses[h.name]}:{h.status()['addr'][1]}" for h in (a, b, c)
        }, peers
        assert all(addr.startswith(f"{SUBNET}.") for addr in peers.values())

    # An actor started on a answers calls made on c.
    echo_path, echo_id = modules["echo"]
    a.cli("start", str(echo_path)).ok()
    bridged.wait_for(
        lambda: c.call(echo_id, "Echo", "x", deadline_s=3).returncode == 0,
        "c can call the echo started on a",
        timeout_s=15,
    )
    answer = c.call(echo_id, "Echo", "across the bridge").json()
    assert answer["host"] == a.host_id
    assert bytes.fromhex(answer["payload"]) == b"across the bridge"

    # A link made on c takes effect on a: the counter on a may use key-value.
    kv_path, kv_id = modules["kvcounter"]
    request = http_request_payload(tmp_path / "request.msgpack")
    operation = "HttpServer.HandleRequest"
    a.cli("start", str(kv_path)).ok()
    bridged.wait_for(
        lambda: "wasmcloud:keyvalue" in b.call(kv_id, operation, request, deadline_s=3).stderr,
        "b reaches the counter on a, which is refused key-value",
        timeout_s=15,
    )
    c.cli("link", "put", kv_id, "wasmcloud:keyvalue").ok()
    bridged.wait_for(
        lambda: b.call(kv_id, operation, request, deadline_s=3).returncode == 0,
        "the link made on c reaches a",
        timeout_s=15,
    )
    counted = b.call(kv_id, operation, request)
    assert counted.json()["host"] == a.host_id and kv_count(counted) >= 2

    # The stranger heard the lattice (and was heard) but nobody let anyone in.
    bridged.wait_for(
        lambda: stranger.stat("mdns.other_lattice") >= 3,
        "the stranger hears (and ignores) the three hosts' mDNS records",
    )
    bridged.wait_for(
        lambda: all(h.stat("mdns.other_lattice") >= 1 for h in (a, b, c)),
        "the hosts hear (and ignore) the stranger's mDNS record",
    )
    seen_by_stranger, seen_by_a, call = parallel(
        lambda: stranger.cli("hosts", "--json").json(),
        lambda: a.cli("hosts", "--json").json(),
        lambda: stranger.call(echo_id, "Echo", "x", deadline_s=3),
    )
    assert [r["id"] for r in seen_by_stranger] == [stranger.host_id]
    assert {r["id"] for r in seen_by_a} == {a.host_id, b.host_id, c.host_id}
    assert "runs actor" in call.failed_cleanly()
    for host in (a, b, c):
        assert stranger.host_id not in host.view()
    assert set(stranger.view()) == {stranger.host_id}
