"""The listener of ``meshhost up --metrics ADDR``: ``/metrics``, ``/healthz``, ``/readyz``.

* ``/metrics``: the host's registry in the Prometheus text format, written
  by prometheus-client (``make_asgi_app``; OpenMetrics when asked by
  ``Accept``);
* ``/healthz``: 200 ``{"status": "ok"}`` while the host's loop answers;
* ``/readyz``: 200 with the readiness checks, or 503 with the same JSON and
  a ``reason`` (see :mod:`meshhost.monitor.health`).

Anything else is 404.  Served by hypercorn through the same accept loop as
the HTTP server provider (a connection cap, a stall guard); it binds to
loopback unless given an address, as metrics say a lot about a host.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig
from prometheus_client import make_asgi_app

from meshhost.capabilities.providers.httplisten import serve_http
from meshhost.errors import ConfigError
from meshhost.monitor.dashboard import is_loopback, names_this_machine
from meshhost.monitor.health import check_ready

if TYPE_CHECKING:
    from meshhost.monitor.source import MonitoredHost

__all__ = ["DEFAULT_BIND", "parse_listen_address", "serve_monitoring"]

DEFAULT_BIND = "127.0.0.1"
MAX_CONNECTIONS = 64
STALL_S = 10.0

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def parse_listen_address(text: str, what: str = "metrics") -> tuple[str, int]:
    """``9090`` -> (127.0.0.1, 9090); ``0.0.0.0:9090`` and ``127.0.0.2:0`` as given.

    Raises ConfigError naming the problem.
    """
    import ipaddress

    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_BIND, text
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(
            f"{what} address {text!r}: the port must be a number from 0 to 65535 "
            "(e.g. 9090, or 0.0.0.0:9090 to listen on every interface)"
        )
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise ConfigError(
            f"{what} address {text!r}: {host!r} is not an IPv4 address (e.g. 127.0.0.1:9090)"
        ) from None
    return host, port


def _json(status: int, body: dict[str, Any]) -> tuple[int, bytes]:
    return status, json.dumps(body, sort_keys=True).encode() + b"\n"


def monitoring_app(host: MonitoredHost) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application of the listener (see the module docstring)."""
    assert host.monitor is not None
    metrics_app = make_asgi_app(host.monitor.registry)

    loopback = is_loopback((host.options.metrics_address or (DEFAULT_BIND, 0))[0])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if loopback and not names_this_machine(scope):
            # DNS rebinding, as for the dashboard: a web page must not read the metrics.
            status, body = _json(421, {"error": "ask for http://127.0.0.1:PORT/ or localhost"})
        elif path == "/metrics":
            await metrics_app(scope, receive, send)
            return
        elif path == "/healthz":
            status, body = _json(200, {"status": "ok", "host": host.host_id})
        elif path == "/readyz":
            ready = await check_ready(host)
            status, body = _json(200 if ready["ready"] else 503, {**ready, "host": host.host_id})
        else:
            status, body = _json(
                404, {"error": f"no page {path}; try /metrics, /healthz or /readyz"}
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def serve_monitoring(
    host: MonitoredHost,
    address: tuple[str, int],
    *,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the listener on ``address`` until cancelled (or ``stop`` is set).

    Reports the bound address; raises ConfigError when it cannot be bound.
    """
    config = HypercornConfig()
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 30.0
    try:
        await serve_http(
            monitoring_app(host),
            config,
            address[0],
            address[1],
            max_connections=MAX_CONNECTIONS,
            max_per_source=MAX_CONNECTIONS,
            stall_s=STALL_S,
            stop=stop or trio.Event(),
            task_status=task_status,
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot listen for metrics on {address[0]}:{address[1]}: {exc.strerror or exc}"
        ) from None
