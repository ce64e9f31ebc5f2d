"""Two hosts in this process: transport rekeys and streams, HTTP and key-value figures."""

from __future__ import annotations

from pathlib import Path

import trio
from prometheus_client import generate_latest

from meshhost.host import Host
from meshhost.testing import alive, client, make_host, signed_example, wait_until
from tests.monitor.monitor_helpers import Scrape, http_get


def scrape(host: Host) -> Scrape:
    assert host.monitor is not None
    return Scrape(generate_latest(host.monitor.registry).decode())


async def test_rekeys_streams_http_requests_and_key_value_operations_are_counted(
    tmp_path: Path,
) -> None:
    transport = {"rekey_after_messages": 4}
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0, transport=transport)
        addr = await nursery.start(a.serve)
        b = make_host(tmp_path, 1, seeds=(f"{addr[0]}:{addr[1]}",), transport=transport)
        await nursery.start(b.serve)
        await wait_until(lambda: alive(a) == alive(b) == {a.host_id, b.host_id}, "a and b meet")
        kv, kv_id = signed_example("kvcounter")
        await client(a).request("start", module=kv)
        writes_before = scrape(a).value("meshhost_directory_convergence_lag_seconds_count")
        for contract, values in (
            ("wasmcloud:keyvalue", {}),
            ("wasmcloud:httpserver", {"ADDRESS": "127.0.0.20:0"}),
        ):
            await client(b).request(
                "link_put",
                actor=kv_id,
                contract=contract,
                link_name="default",
                provider="",
                values=values,
            )
        await wait_until(
            lambda: (
                bool(a.actors.inventory()["http"])
                and a.actors.dispatcher.links.get(kv_id, "wasmcloud:keyvalue", "default")
                is not None
            ),
            "a has both links and listens for HTTP",
        )
        listen = a.actors.inventory()["http"][0]["address"].rsplit(":", 1)
        for _ in range(3):
            status, _ = await http_get((listen[0], int(listen[1])), "/")
            assert status == 200
        echo, echo_id = signed_example("echo")
        await client(a).request("start", module=echo)
        await wait_until(lambda: bool(b.directory.hosts_running(echo_id)), "b sees the echo")
        big = bytes(200_000)  # over one frame: sent and answered as streams
        answer = await client(b).request(
            "call", actor=echo_id, operation="Echo", payload=big, timeout_ms=10_000
        )
        assert answer["payload"] == big
        for _ in range(10):
            await client(b).request(
                "call", actor=echo_id, operation="Echo", payload=b"x", timeout_ms=5000
            )
        on_a, on_b = scrape(a), scrape(b)
        nursery.cancel_scope.cancel()
    assert on_a.value("meshhost_http_requests_total", actor=kv_id, status="200") == 3
    assert on_a.value("meshhost_http_request_duration_seconds_count", actor=kv_id) == 3
    assert (
        on_a.value(
            "meshhost_provider_operations_total", contract="wasmcloud:keyvalue", outcome="ok"
        )
        >= 3
    )
    assert on_a.value("meshhost_http_connections", actor=kv_id) == 0  # every one closed
    assert on_b.value("meshhost_transport_streams_total", direction="out") >= 1
    assert on_b.value("meshhost_transport_streams_total", direction="in") >= 1  # the answer
    assert on_a.value("meshhost_transport_streams_total", direction="in") >= 1
    assert on_b.value("meshhost_transport_rekeys_total") >= 2  # every 4 messages, each way
    assert (
        on_b.value("meshhost_invocations_total", actor=echo_id, where="remote", outcome="ok") == 11
    )
    # The two links written on b reached a: two lattice-wide writes with their delay.
    assert on_a.value("meshhost_directory_convergence_lag_seconds_count") == writes_before + 2
    assert 0 <= on_a.value("meshhost_directory_convergence_lag_seconds_sum") < 20


async def test_a_host_with_another_secret_shows_as_bad_packets_and_failed_handshakes(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        addr = await nursery.start(a.serve)
        stranger = make_host(tmp_path, 1, seeds=(f"{addr[0]}:{addr[1]}",), secret=bytes(32))
        await nursery.start(stranger.serve)

        def refused() -> bool:
            now = scrape(a)
            return (
                now.value("meshhost_membership_bad_packets_total", reason="bad_auth") > 0
                and now.value("meshhost_transport_handshake_failures_total") > 0
            )

        await wait_until(refused, "a counts the stranger's packets and handshakes as refused")
        on_a = scrape(a)
        nursery.cancel_scope.cancel()
    assert on_a.value("meshhost_members", state="alive") == 1  # the stranger never joined
    assert on_a.value("meshhost_transport_handshakes_total", outcome="ok") == 0
    reasons = {
        s.labels["reason"]
        for s in on_a.samples
        if s.name == "meshhost_transport_handshake_failures_total"
    }
    assert reasons and reasons <= {"unauthenticated", "protocol", "unavailable"}, reasons
