"""A host's HTTP listener that fails is restarted, and `inventory` shows its real state."""

from __future__ import annotations

import errno
import http.client
from pathlib import Path

import trio

from meshhost.capabilities.providers import httplisten
from meshhost.testing import client, make_host, signed_example, wait_until


def get(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()


async def test_a_failed_listener_is_restarted_on_its_port_and_inventory_says_so(
    tmp_path: Path, monkeypatch
) -> None:
    fail_accept = [False]
    bind_fails = [False]
    real_accept = trio.SocketListener.accept
    real_bind = httplisten._bind

    async def accept(self: trio.SocketListener) -> trio.SocketStream:
        stream = await real_accept(self)
        if fail_accept[0]:
            fail_accept[0] = False
            await stream.aclose()
            raise OSError(errno.EINVAL, "injected accept failure")
        return stream

    async def bind(host: str, port: int):
        if bind_fails[0]:
            raise OSError(errno.EADDRINUSE, "injected: address in use")
        return await real_bind(host, port)

    monkeypatch.setattr(trio.SocketListener, "accept", accept)
    monkeypatch.setattr(httplisten, "_bind", bind)

    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        await nursery.start(a.serve)
        kv, kv_id = signed_example("kvcounter")
        await client(a).request("start", module=kv)
        await client(a).request("link_put", actor=kv_id, contract="wasmcloud:keyvalue", values={})
        await client(a).request(
            "link_put",
            actor=kv_id,
            contract="wasmcloud:httpserver",
            values={"ADDRESS": "127.0.0.1:0"},
        )

        async def listeners() -> list[dict[str, object]]:
            return (await client(a).request("inventory"))["http"]

        (first,) = await listeners()
        assert (first["state"], first["error"], first["restarts"]) == ("serving", "", 0)
        port = int(str(first["address"]).rsplit(":", 1)[1])
        assert await trio.to_thread.run_sync(get, port) == 200

        # The accept loop fails, and the port cannot be had back for a while.
        fail_accept[0] = bind_fails[0] = True
        await trio.to_thread.run_sync(lambda: get_quietly(port))
        await wait_until(
            lambda: (
                a.actors.httpserver.listener_state(
                    a.actors.dispatcher.links.for_contract("wasmcloud:httpserver")[0]
                )
                == "restarting"
            ),
            "the listener is restarting",
        )
        (down,) = await listeners()
        assert down["state"] == "restarting" and "injected" in str(down["error"])
        assert down["address"] == first["address"]

        bind_fails[0] = False
        with trio.fail_after(20):
            while (await listeners())[0]["state"] != "serving":
                await trio.sleep(0.05)
        (back,) = await listeners()
        assert back["address"] == first["address"] and back["restarts"] >= 1
        assert await trio.to_thread.run_sync(get, port) == 200
        nursery.cancel_scope.cancel()


def get_quietly(port: int) -> None:
    try:
        get(port)
    except OSError:
        pass  # the injected failure closes this connection
