"""The dashboard's HTTP side, without a browser: its page, its state, its pushed stream."""

from __future__ import annotations

import http.client
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio
import trio.testing

from meshhost.testing import Member, client, make_host, signed_example


def fetch(
    addr: tuple[str, int], path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=10)
    try:
        conn.request(method, path)
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def first_stream_events(addr: tuple[str, int], wanted: int) -> list[tuple[str, Any]]:
    """The first ``wanted`` server-sent events of /api/stream: (event name, data)."""
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=20)
    try:
        conn.request("GET", "/api/stream")
        answer = conn.getresponse()
        assert answer.status == 200
        assert answer.getheader("content-type") == "text/event-stream"
        events: list[tuple[str, Any]] = []
        name = ""
        while len(events) < wanted:
            line = answer.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
        return events
    finally:
        conn.close()


async def test_the_dashboard_serves_its_page_state_and_a_pushed_stream(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        host = make_host(tmp_path, 0)
        host.options = replace(host.options, dashboard_address=("127.0.0.1", 0))
        await nursery.start(Member(host).run)
        addr = host.dashboard_addr
        assert addr is not None and addr[0] == "127.0.0.1"

        status, headers, body = await trio.to_thread.run_sync(fetch, addr, "/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b'<script src="/dashboard.js"' in body and b"http" not in body.split(b"<body")[0]
        assert "script-src 'self'" in headers["content-security-policy"]  # no CDN, no inline
        for path in ("/dashboard.js", "/dashboard.css"):
            status, _, body = await trio.to_thread.run_sync(fetch, addr, path)
            assert status == 200 and body

        echo, echo_id = signed_example("echo")
        await client(host).request("start", module=echo)
        await client(host).request("call", actor=echo_id, operation="Echo", payload=b"hi")

        def running() -> bool:
            state = json.loads(fetch(addr, "/api/state")[2])
            return any(a["id"] == echo_id for h in state["hosts"] for a in h["actors"])

        with trio.fail_after(15):  # the state is rebuilt every second and on events
            while not await trio.to_thread.run_sync(running):
                await trio.sleep(0.2)
        # The stream: the recent events, then the state; then what happens is pushed.
        stream = trio.to_thread.run_sync(first_stream_events, addr, 4)
        events: list[tuple[str, Any]] = []

        async def read_stream() -> None:
            events.extend(await stream)

        async with trio.open_nursery() as readers:
            readers.start_soon(read_stream)
            await trio.sleep(1.5)
            await client(host).request("link_put", actor=echo_id, contract="wasmcloud:keyvalue")
        names = [name for name, _ in events]
        assert names[:2] == ["events", "state"], names
        assert ("lattice", "link_put") in [(n, d.get("kind")) for n, d in events if n == "lattice"]
        state = events[1][1]
        (me,) = state["hosts"]
        assert me["id"] == host.host_id and me["state"] == "alive" and me["local"]
        (actor,) = me["actors"]
        assert actor["id"] == echo_id and actor["instances"] == 1
        assert actor["calls_total"] >= 1  # the monitor's figures, not counted again
        assert me["view"] == {host.host_id: "alive"}

        status, _, body = await trio.to_thread.run_sync(fetch, addr, "/api/state")
        assert status == 200
        keys = {"lattice", "served_by", "hosts", "links", "apps", "events"}
        assert keys <= json.loads(body).keys()
        status, _, _ = await trio.to_thread.run_sync(fetch, addr, "/api/state", "POST")
        assert status == 405  # read-only
        status, _, body = await trio.to_thread.run_sync(fetch, addr, "/../etc/passwd")
        assert status == 404 and b"the dashboard is at /" in body
        nursery.cancel_scope.cancel()


async def test_a_host_without_monitoring_still_shows_its_view(tmp_path: Path) -> None:
    from meshhost.monitor.dashboard import gather_state

    async with trio.open_nursery() as nursery:
        host = make_host(tmp_path, 0)
        host.options = replace(host.options, monitor=False)
        await nursery.start(Member(host).run)
        state = await gather_state(host)
        (me,) = state["hosts"]
        assert me["view"] == {host.host_id: "alive"} and me["reachable"]
        nursery.cancel_scope.cancel()


async def test_an_event_while_the_state_is_gathered_rebuilds_it_at_once(
    monkeypatch: Any,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A host event while the state is being gathered (its snapshots can take up to
    PEER_TIMEOUT_S when a host just died) makes the next rebuild at once, not a whole
    REFRESH_S later: the page must not skip a short-lived 'suspect'."""
    from meshhost.monitor import dashboard

    gathering, release = trio.Event(), trio.Event()
    calls = 0

    async def gather_state(host: object) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            gathering.set()
            await release.wait()
        return {"n": calls}

    monkeypatch.setattr(dashboard, "gather_state", gather_state)
    hub = dashboard._Hub()
    send, receive = trio.open_memory_channel[bytes](8)
    hub.pages.add(send)
    clock = autojump_clock  # virtual time: the figure below is exact, not the machine's
    async with trio.open_nursery() as nursery:
        nursery.start_soon(dashboard._keep_state, None, hub)
        await gathering.wait()
        hub.refresh.set()  # as _follow_events does for a host event
        released_at = clock.current_time()
        release.set()
        assert b'"n":1' in await receive.receive()
        assert b'"n":2' in await receive.receive()
        assert clock.current_time() - released_at < dashboard.REFRESH_S / 2
        nursery.cancel_scope.cancel()


async def test_a_loopback_dashboard_refuses_other_host_names_dns_rebinding() -> None:
    from types import SimpleNamespace

    from meshhost.monitor.dashboard import _Hub, dashboard_app

    async def status(bind: str, host_header: bytes) -> int:
        app = dashboard_app(
            SimpleNamespace(
                options=SimpleNamespace(  # type: ignore[arg-type]
                    dashboard_address=(bind, 8090)
                )
            ),
            _Hub(),
        )
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/nope",
            "headers": [(b"host", host_header)],
        }
        await app(scope, None, send)  # type: ignore[arg-type]
        return int(sent[0]["status"])

    assert await status("127.0.0.1", b"evil.example:8090") == 421
    for local in (b"127.0.0.1:8090", b"localhost:8090", b"[::1]:8090", b"LOCALHOST", b"x"):
        assert await status("127.0.0.1", local) == 404, local  # served (no such page)
    assert await status("0.0.0.0", b"mybox.lan:8090") == 404  # bound for the network


async def test_a_loopback_metrics_listener_refuses_other_host_names_too() -> None:
    from types import SimpleNamespace

    from meshhost.monitor.http import monitoring_app

    host = SimpleNamespace(
        monitor=SimpleNamespace(registry=None),
        host_id="NHOST",
        options=SimpleNamespace(metrics_address=("127.0.0.1", 9090)),
    )
    app = monitoring_app(host)  # type: ignore[arg-type]

    async def status(host_header: bytes) -> int:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(
            {
                "type": "http",
                "method": "GET",
                "path": "/healthz",
                "headers": [(b"host", host_header)],
            },
            None,
            send,
        )  # type: ignore[arg-type]
        return int(sent[0]["status"])

    assert await status(b"evil.example:9090") == 421
    assert await status(b"127.0.0.1:9090") == 200 and await status(b"localhost") == 200
