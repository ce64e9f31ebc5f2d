"""hypercorn's internals, used only by meshhost/capabilities/providers/_hypercorn.py: each
asserted here by name and signature, and the behaviour relied upon (serve a connection
accepted elsewhere; close it once idle when told) checked on loopback, so a hypercorn
upgrade that changes them fails here loudly (issue 13, point 7)."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

from meshhost.capabilities.providers import _hypercorn
from meshhost.capabilities.providers._hypercorn import CHECKED_HYPERCORN, ConnectionServer

MESHHOST = Path(_hypercorn.__file__).parents[2]


def _params(f: object) -> list[str]:
    return list(inspect.signature(f).parameters)  # type: ignore[arg-type]


def test_the_installed_hypercorn_is_the_one_checked() -> None:
    installed = version("hypercorn")
    assert installed == CHECKED_HYPERCORN, (
        f"hypercorn {installed} is installed but meshhost/capabilities/providers/_hypercorn.py "
        f"was checked against {CHECKED_HYPERCORN}: re-run this file, then raise "
        "CHECKED_HYPERCORN with the pin in pyproject.toml"
    )
    assert f'"hypercorn=={CHECKED_HYPERCORN}"' in (MESHHOST.parent / "pyproject.toml").read_text()


def test_the_internals_used_have_the_signatures_relied_upon() -> None:
    assert _params(TCPServer.__init__) == ["self", "app", "config", "context", "state", "stream"]
    assert _params(WorkerContext.__init__) == ["self", "max_requests"]
    assert inspect.iscoroutinefunction(WorkerContext(None).terminated.set)
    assert _params(wrap_app)[:3] == ["app", "wsgi_max_body_size", "mode"]


def test_only_the_wrapper_imports_hypercorn_internals() -> None:
    internal = re.compile(r"^\s*(from|import) hypercorn\.(trio|utils|typing)\b", re.MULTILINE)
    users = sorted(
        str(p.relative_to(MESHHOST))
        for p in MESHHOST.rglob("*.py")
        if internal.search(p.read_text())
    )
    assert users == ["capabilities/providers/_hypercorn.py"]


async def test_a_connection_accepted_elsewhere_is_served_and_closed_once_idle() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            headers = [(b"content-length", b"2")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"ok"})

    server = ConnectionServer(app, HypercornConfig())
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    served = trio.Event()

    async def accept_one() -> None:
        stream = await listener.accept()
        await server.serve(stream)
        served.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_one)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        await client.send_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        answer = b""
        with trio.fail_after(30):
            while not answer.endswith(b"ok"):
                answer += await client.receive_some()
        assert answer.startswith(b"HTTP/1.1 200")
        assert not served.is_set()  # keep-alive: hypercorn waits for the next request
        await server.close_idle()
        with trio.fail_after(30):
            await served.wait()
            assert await client.receive_some() == b""  # hypercorn closed it
        await client.aclose()
        await listener.aclose()
