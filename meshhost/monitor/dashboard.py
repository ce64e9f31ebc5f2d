"""The live web dashboard of ``meshhost up --dashboard ADDR``: the lattice as one host sees it.

Read-only.  Any host can serve it, with no collector: the serving host
builds a *lattice state* (:func:`gather_state`) from

* its own membership (every host and its state as this host sees it) and
  directory (actors per host, links, applications and their placement);
* every live host's monitor snapshot (control op ``metrics`` with
  ``metrics: false``, asked concurrently over the lattice, each with a short
  time-out): that host's own membership view (so the page shows who
  currently sees whom) and its call rates and latencies per actor (the
  monitor's :func:`~meshhost.monitor.snapshot`, not counted again here);
* its recent events.

The page (``static/dashboard.html`` + ``.css`` + ``.js``, plain files that
ship as package data: no build step, no CDN) opens one server-sent events
stream, ``/api/stream``, and is pushed

* ``event: state``: the whole lattice state as JSON, when it changed (it is
  rebuilt every :data:`REFRESH_S` and at once after any host event);
* ``event: lattice``: each host event as it happens (the event feed);
* ``event: ping``: when nothing else was sent for :data:`KEEPALIVE_S`.

``/api/state`` answers the current state once (for scripts and tests).
Anything else is 404.  Served by hypercorn through the same accept loop as
the HTTP server provider (connection caps, stall guard); it binds to
loopback unless given an address.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig

from meshhost.capabilities.providers.httplisten import serve_http
from meshhost.errors import ConfigError
from meshhost.monitor.events import event_to_dict
from meshhost.monitor.snapshot import snapshot

if TYPE_CHECKING:
    from meshhost.monitor.source import MonitoredHost

__all__ = ["REFRESH_S", "gather_state", "serve_dashboard"]

log = logging.getLogger(__name__)

REFRESH_S = 1.0
"""The state is rebuilt this often (and at once after a host event); pushed only if changed."""
PEER_TIMEOUT_S = 1.5
"""How long one host's snapshot may take: a hung host must not stall the page."""
KEEPALIVE_S = 15.0
"""An ``event: ping`` this often keeps proxies and the stall guard content, and tells
the page the host still answers (a comment would not reach its script): a page that
hears nothing for 2.5 times this says so and reconnects."""
SUBSCRIBER_BUFFER = 64
"""Messages queued per open page; a page that falls behind is closed (it reconnects)."""
MAX_CONNECTIONS = 32
MAX_PER_SOURCE = 16
STALL_S = 30.0
MAX_EVENTS = 50
STATIC = {
    "/": ("dashboard.html", "text/html; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
}
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


async def _snapshots(host: MonitoredHost, live: list[str]) -> dict[str, dict[str, Any]]:
    """Each live host's monitor snapshot (without Prometheus families); missing: no answer."""
    found: dict[str, dict[str, Any]] = {}
    if host.monitor is not None:
        found[host.host_id] = snapshot(host, with_metrics=False)
    else:  # run without monitoring: its view still shows, its rates do not
        found[host.host_id] = {"members": host.status()["members"], "actors": []}

    async def request(host_id: str, op: str, args: dict[str, Any]) -> Any:
        return await host.control_request(host_id, op, args, PEER_TIMEOUT_S)

    async def ask(host_id: str) -> None:
        with trio.move_on_after(PEER_TIMEOUT_S):
            try:
                result = await request(host_id, "metrics", {"metrics": False})
            except Exception as exc:  # unreachable, garbage, or run without monitoring
                log.debug("dashboard: no snapshot from %s: %s", host_id, exc)
                try:  # its membership view alone, from the plain `hosts` op
                    rows = await request(host_id, "hosts", {})
                    result = {
                        "members": [{"id": r["id"], "state": r["state"]} for r in rows],
                        "actors": [],
                    }
                except Exception:
                    return
            if isinstance(result, dict):
                found[host_id] = result

    async with trio.open_nursery() as nursery:
        for host_id in live:
            if host_id != host.host_id:
                nursery.start_soon(ask, host_id)
    return found


def _apps(host: MonitoredHost) -> list[dict[str, Any]]:
    ops = host.app_ops
    if ops is None:
        return []
    apps = []
    try:
        listed = ops.dispatch("app_list", {})
    except Exception as exc:  # the page shows what it can
        log.debug("dashboard: app_list failed: %s", exc)
        return []
    for app in listed:
        if app.get("deployed") is None:
            continue
        try:
            status = ops.dispatch("app_status", {"name": app["name"]})
        except Exception as exc:
            log.debug("dashboard: app_status %s failed: %s", app["name"], exc)
            status = {"rows": [], "problems": []}
        apps.append(
            {
                "name": app["name"],
                "version": app.get("deployed"),
                "state": app.get("state"),
                "desired": app.get("desired", 0),
                "running": app.get("running", 0),
                "problems": [str(p) for p in status.get("problems") or app.get("problems") or []],
                "placement": [
                    {
                        "component": r.get("component"),
                        "host": r.get("host"),
                        "desired": r.get("desired", 0),
                        "running": r.get("running", 0),
                        "state": r.get("state"),
                    }
                    for r in status.get("rows", [])
                ],
            }
        )
    return apps


async def gather_state(host: MonitoredHost) -> dict[str, Any]:
    """The lattice as ``host`` sees it now, as JSON-able data (see the module docstring)."""
    live = [m["id"] for m in host.status()["members"] if m["state"] in ("alive", "suspect")]
    snaps = await _snapshots(host, live)
    # Membership as of now, not as of the asking: a host that stalls the asking
    # for PEER_TIMEOUT_S is the one most likely to have turned suspect meanwhile.
    members = host.status()["members"]
    directory = host.directory
    hosts = []
    for m in members:
        view = directory.host(m["id"]) if directory is not None else None
        snap = snaps.get(m["id"])
        figures = {a["id"]: a for a in (snap or {}).get("actors", [])}
        actors = []
        if m["state"] in ("alive", "suspect") and view is not None:
            for actor_id, (summary, instances) in sorted(view.actors.items()):
                fig = figures.get(actor_id, {})
                actors.append(
                    {
                        "id": actor_id,
                        "name": summary.name,
                        "instances": instances,
                        "calls_per_s": _finite(fig.get("calls_per_s")),
                        "errors_per_s": _finite(fig.get("errors_per_s")),
                        "p50_ms": _finite(fig.get("p50_s")) * 1000,
                        "p99_ms": _finite(fig.get("p99_s")) * 1000,
                        "calls_total": int(_finite(fig.get("calls_total"))),
                    }
                )
        hosts.append(
            {
                "id": m["id"],
                "address": m["addr"],
                "state": m["state"],
                "incarnation": m["incarnation"],
                "labels": m["labels"],
                "local": m["id"] == host.host_id,
                "reachable": snap is not None,
                "view": (
                    {v["id"]: v["state"] for v in snap.get("members", [])}
                    if snap is not None
                    else None
                ),
                "health": snap.get("health", {}).get("score") if snap is not None else None,
                "actors": actors,
            }
        )
    links = [
        {
            "actor": link.actor_id,
            "contract": link.contract_id,
            "link_name": link.link_name,
            "provider": link.provider_id,
        }
        for link in (directory.links() if directory is not None else [])
    ]
    names = {a["id"]: a["name"] for h in hosts for a in h["actors"]}
    return {
        "lattice": host.config.lattice,
        "served_by": host.host_id,
        "hosts": hosts,
        "links": links,
        "actor_names": names,
        "apps": _apps(host),
    }


def _sse(event: str, data: Any) -> bytes:
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return f"event: {event}\ndata: {text}\n\n".encode()


class _Hub:
    """The latest state and the open pages it is pushed to."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []
        self.pages: set[trio.MemorySendChannel[bytes]] = set()
        self.refresh = trio.Event()

    def publish(self, message: bytes) -> None:
        for page in list(self.pages):
            try:
                page.send_nowait(message)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self.pages.discard(page)  # a page that cannot keep up reconnects
                page.close()


async def _keep_state(host: MonitoredHost, hub: _Hub) -> None:
    last = b""
    while True:
        # A fresh event before gathering: an event that comes while the state is
        # gathered (up to PEER_TIMEOUT_S when a host just died) rebuilds it at once.
        hub.refresh = trio.Event()
        try:
            state = await gather_state(host)
        except Exception:  # a bug here must not take the host down: log, try again
            log.exception("dashboard: building the lattice state failed")
        else:
            encoded = _sse("state", state)
            hub.state = state
            if encoded != last:
                last = encoded
                hub.publish(encoded)
        with trio.move_on_after(REFRESH_S):
            await hub.refresh.wait()
        await trio.sleep(0.05)  # a burst of events makes one rebuild, not one each


async def _follow_events(host: MonitoredHost, hub: _Hub) -> None:
    if host.recent_events is not None:
        hub.events = host.recent_events.list()[-MAX_EVENTS:]
    receive = host.subscribe()
    async with receive:
        async for event in receive:
            record = event_to_dict(event)
            hub.events = [*hub.events[-(MAX_EVENTS - 1) :], record]
            hub.publish(_sse("lattice", record))
            hub.refresh.set()


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP literal) is a loopback address."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def names_this_machine(scope: Scope) -> bool:
    """Whether the request may be for this machine: an IP literal, ``localhost`` or any
    name without a dot (a hosts-file name, ``Host: x`` of a script), or no Host at all
    (HTTP/1.0). A rebinding attack needs a name in public DNS, which has a dot."""
    value = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1").lower()
    if value.startswith("["):
        name = value[1 : value.find("]")] if "]" in value else value
    else:
        name = value.rsplit(":", 1)[0] if ":" in value else value
    if "." not in name or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def dashboard_app(
    host: MonitoredHost, hub: _Hub
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application (see the module docstring)."""
    files = resources.files("meshhost.monitor") / "static"

    async def respond(send: Send, status: int, content_type: str, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    *_SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def stream(receive: Receive, send: Send) -> None:
        pages, page = trio.open_memory_channel[bytes](SUBSCRIBER_BUFFER)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-store"),
                    *_SECURITY_HEADERS,
                ],
            }
        )
        first = b"retry: 1000\n\n" + _sse("events", hub.events)
        if hub.state is not None:
            first += _sse("state", hub.state)
        hub.pages.add(pages)
        try:
            async with trio.open_nursery() as nursery:

                async def gone() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    nursery.cancel_scope.cancel()

                nursery.start_soon(gone)
                await send({"type": "http.response.body", "body": first, "more_body": True})
                while True:
                    with trio.move_on_after(KEEPALIVE_S) as idle:
                        message = await page.receive()
                    if idle.cancelled_caught:
                        message = b"event: ping\ndata: {}\n\n"
                    await send({"type": "http.response.body", "body": message, "more_body": True})
        except trio.EndOfChannel:
            pass  # dropped for falling behind: the browser reconnects
        finally:
            hub.pages.discard(pages)
            pages.close()

    loopback = is_loopback((host.options.dashboard_address or ("127.0.0.1", 0))[0])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if loopback and not names_this_machine(scope):
            # DNS rebinding: a web page whose name now points at 127.0.0.1 would
            # otherwise read the lattice's state from the visitor's browser.
            await respond(
                send,
                421,
                "text/plain; charset=utf-8",
                b"open the dashboard as http://127.0.0.1:PORT/ or localhost\n",
            )
        elif scope.get("method", "GET") not in ("GET", "HEAD"):
            await respond(send, 405, "text/plain; charset=utf-8", b"read-only: GET only\n")
        elif path in STATIC:
            name, content_type = STATIC[path]
            await respond(send, 200, content_type, (files / name).read_bytes())
        elif path == "/api/state":
            state = hub.state if hub.state is not None else await gather_state(host)
            body = json.dumps({**state, "events": hub.events}, sort_keys=True, default=str).encode()
            await respond(send, 200, "application/json", body)
        elif path == "/api/stream":
            await stream(receive, send)
        else:
            await respond(
                send,
                404,
                "text/plain; charset=utf-8",
                f"no page {path}; the dashboard is at /\n".encode(),
            )

    return app


async def serve_dashboard(
    host: MonitoredHost,
    address: tuple[str, int],
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the dashboard on ``address`` until cancelled; reports the bound address.

    Raises ConfigError when the address cannot be bound.
    """
    hub = _Hub()
    config = HypercornConfig()
    config.graceful_timeout = 0.5
    config.keep_alive_timeout = 30.0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_follow_events, host, hub)
        nursery.start_soon(_keep_state, host, hub)
        try:
            bound = await nursery.start(_listener(host, hub, config, address))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the dashboard on {address[0]}:{address[1]}: {exc.strerror or exc}"
            ) from None
        task_status.started(bound)


def _listener(
    host: MonitoredHost, hub: _Hub, config: HypercornConfig, address: tuple[str, int]
) -> Callable[..., Awaitable[None]]:
    async def run(*, task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        await serve_http(
            dashboard_app(host, hub),
            config,
            address[0],
            address[1],
            max_connections=MAX_CONNECTIONS,
            max_per_source=MAX_PER_SOURCE,
            stall_s=STALL_S,
            stop=trio.Event(),
            task_status=task_status,
        )

    return run
