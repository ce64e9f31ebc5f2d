"""An HTTP request's `traceparent` header is honoured: the actor's spans join the caller's trace."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import trio

from meshhost.monitor.tracing import build_tree
from meshhost.testing import Member, client, make_host, signed_example

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, traceparent: str | None) -> int:
    request = urllib.request.Request(
        url, headers={"traceparent": traceparent} if traceparent else {}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


async def test_an_http_request_with_traceparent_continues_its_trace(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        member = Member(make_host(tmp_path, 0))
        await nursery.start(member.run)
        host = member.host
        counter, counter_id = signed_example("kvcounter")
        control = client(host)
        await control.request("start", module=counter)
        port = free_port()
        await control.request("link_put", actor=counter_id, contract="wasmcloud:keyvalue")
        await control.request(
            "link_put",
            actor=counter_id,
            contract="wasmcloud:httpserver",
            values={"ADDRESS": f"127.0.0.1:{port}"},
        )
        url = f"http://127.0.0.1:{port}/"

        async def listening() -> bool:
            try:
                return await trio.to_thread.run_sync(get, url, None) == 200
            except OSError:
                return False

        with trio.fail_after(20):
            while not await listening():
                await trio.sleep(0.1)
        status = await trio.to_thread.run_sync(get, url, f"00-{TRACE}-{PARENT}-01")
        assert status == 200
        spans = host.actors.spans.trace([bytes.fromhex(TRACE)])
        (root,) = build_tree(spans)
        assert root.span.parent_id.hex() == PARENT  # under the caller's own span
        assert root.span.kind == "client" and root.span.name == "call HttpServer.HandleRequest"
        (server,) = root.children
        assert server.span.kind == "server" and dict(server.span.attributes)["actor"] == counter_id
        assert [c.span.name.split()[0] for c in server.children] == ["wasmcloud:keyvalue"]
        # without the header the request starts a trace of its own
        before = {s.trace_id for s in host.actors.spans.snapshot()}
        await trio.to_thread.run_sync(get, url, "not-a-traceparent")
        new = {s.trace_id for s in host.actors.spans.snapshot()} - before
        assert len(new) == 1 and bytes.fromhex(TRACE) not in new
        nursery.cancel_scope.cancel()
