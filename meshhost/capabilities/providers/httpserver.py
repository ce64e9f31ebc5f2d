"""``wasmcloud:httpserver``: HTTP requests become ``HttpServer.HandleRequest`` invocations.

Each link is one listener (hypercorn on trio, HTTP/1.1 and h2c) that sends
every request to the linked actor as ``HttpRequest {method, path,
queryString, header, body}`` and writes the actor's ``HttpResponse
{statusCode, header, body}`` back (httpserver.smithy).  Request details, as
wasmCloud's provider produced them: the method upper-cased, ``path`` the raw
request path, ``queryString`` the raw query without ``?`` (``""`` if none),
header names lower-case with every value of repeated headers in order
(non-ASCII values dropped).

Link config (keys case-insensitive, later ones override earlier, as in
wasmCloud's ``load_settings``): ``config_b64`` / ``config_json`` (JSON with
``address``, ``timeout_ms``, ``max_content_len``), ``ADDRESS``
(``host:port``), ``PORT`` (binds 127.0.0.1), ``TIMEOUT_MS``,
``MAX_CONTENT_LEN`` (bytes, or with a ``k``/``m``/``g`` suffix), and
meshhost's own ``MAX_CONNECTIONS`` and ``MAX_CONNECTIONS_PER_SOURCE``
(``max_connections``, ``max_connections_per_source`` in the JSON).
Defaults: 127.0.0.1:8000, 30 s, 10 MiB, 256 connections, 64 from one
source address.  Port 0 picks a free port
(:meth:`HttpServerProvider.bound_address` tells which).

Connections (httplisten.py): past ``MAX_CONNECTIONS`` open at once, or
``MAX_CONNECTIONS_PER_SOURCE`` from one address, a new connection gets a
fixed 503 and is closed; a connection's slot is free as soon as its client
closes it; a request head must arrive within ``KEEP_ALIVE_S`` (5 s); a
client that takes no part of a response for ``SEND_STALL_S`` (30 s) is
disconnected.  A listener whose accept loop fails is restarted on the same
address with backoff; :meth:`HttpServerProvider.listener_info` (and so
``inventory``) tells whether it is ``serving`` or ``restarting``, and why.

Errors become plain-text answers: body too large 413 (at once when the
declared Content-Length is); a body that does not arrive within the link's
timeout 408 (a stalled client holds no request for long); ``CONNECT`` 405
(it is not a proxy); a websocket upgrade 501 (the contract has one request
and one response, no stream); the actor did not
answer in time, is not running anywhere, or is overloaded 503; the actor
failed or answered garbage 500, with the actor's error as the body.  A 503's
body names only the kind of failure (``service unavailable (timeout)``):
host ids and addresses go to the host's log, not to HTTP clients.  ``del_link`` stops
the listener (in-flight requests get a short grace period).
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import trio
from hypercorn.config import Config as HypercornConfig

from meshhost.capabilities import legacy as lg
from meshhost.capabilities.contracts import HTTPSERVER, HttpRequest, HttpResponse
from meshhost.capabilities.links import LinkDefinition, LinkKey
from meshhost.capabilities.providers.base import INCOMING_TRACEPARENT, ActorInvoker, Provider
from meshhost.capabilities.providers.httplisten import ListenerStats, serve_http
from meshhost.errors import ErrorCode, LinkConfigError, MeshError, ProviderError
from meshhost.observe import NULL_OBSERVER, Observer
from meshhost.transport.backoff import backoff_delay

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CONNECTIONS_PER_SOURCE",
    "DEFAULT_MAX_CONTENT_LEN",
    "DEFAULT_TIMEOUT_MS",
    "HANDLE_REQUEST",
    "HttpServerProvider",
    "ServerSettings",
    "parse_settings",
]

log = logging.getLogger(__name__)
hypercorn_log = logging.getLogger(__name__ + ".hypercorn")

HANDLE_REQUEST = "HttpServer.HandleRequest"
DEFAULT_ADDRESS = "127.0.0.1:8000"
"""wasmCloud's httpserver default listen address."""
DEFAULT_TIMEOUT_MS = 30_000
"""How long a request waits for the actor before the client gets 503."""
DEFAULT_MAX_CONTENT_LEN = 10 * 1024 * 1024
"""wasmCloud's default request body limit (10 MiB)."""
CONTENT_LEN_CEILING = 500 * 1024 * 1024
"""wasmCloud's hard ceiling for max_content_len (a guest's memory is limited)."""
WEBSOCKET_REFUSAL = (
    "websocket upgrades are not supported: the wasmCloud 0.x HttpServer contract "
    "carries one request and one response\n"
)
DEFAULT_MAX_CONNECTIONS = 256
"""Connections one listener holds at a time (meshhost's own link value, not wasmCloud's):
well under the usual 1024 open files a process may have, with room for the host's own."""
DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 64
"""Connections one source address may hold on one listener: a quarter of the default
limit, so one misbehaving client leaves most slots to everyone else."""
MAX_CONNECTIONS_CEILING = 65_535
SEND_STALL_S = 30.0
"""A client that takes no part of a response for this long is disconnected (httplisten)."""
KEEP_ALIVE_S = 5.0
"""An idle keep-alive connection is closed after this (hypercorn's default); a request
head must also be complete within it (the header-read timeout, see httplisten)."""
RESTART_INITIAL_S = 0.1
RESTART_MAX_S = 10.0
"""A failed listener is restarted after a delay doubling from RESTART_INITIAL_S up to
this, so a failure that repeats at once does not spin."""
RESTART_RESET_S = 60.0
"""A listener that served this long before failing restarts with the shortest delay."""
GRACEFUL_STOP_S = 2.0
"""In-flight requests get this long to finish when a link is removed."""

UNAVAILABLE_CODES = frozenset(
    {
        ErrorCode.TIMEOUT,
        ErrorCode.UNAVAILABLE,
        ErrorCode.OVERLOADED,
        ErrorCode.SHUTTING_DOWN,
        ErrorCode.NOT_FOUND,
    }
)
"""Invocation failures that mean "try again later" (503), not "the actor is broken" (500)."""

_HEADER_NAME = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HOP_BY_HOP = {b"content-length", b"transfer-encoding", b"connection"}


def _decimal(text: str) -> bool:
    """A short run of ASCII digits (``str.isdigit`` also accepts "²", which ``int`` refuses)."""
    return len(text) <= 12 and text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str
    port: int
    timeout_s: float = DEFAULT_TIMEOUT_MS / 1000
    max_content_len: int = DEFAULT_MAX_CONTENT_LEN
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_source: int = DEFAULT_MAX_CONNECTIONS_PER_SOURCE

    @property
    def bind(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _parse_address(link: LinkDefinition, text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or not _decimal(port_text) or not 0 <= int(port_text) < 65536:
        raise LinkConfigError(f"{link.describe()}: invalid address {text!r}, expected host:port")
    return host, int(port_text)


def parse_size(link: LinkDefinition, text: str) -> int:
    """wasmCloud's max_content_len syntax: bytes, or a number with k/m/g (x1024^n)."""
    raw = str(text).strip().lower()
    scale = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(raw[-1:], 1)
    digits = raw[:-1] if scale != 1 else raw
    if not _decimal(digits):
        raise LinkConfigError(f"{link.describe()}: invalid max_content_len {text!r}")
    size = int(digits) * scale
    if not 0 < size <= CONTENT_LEN_CEILING:
        raise LinkConfigError(
            f"{link.describe()}: max_content_len must be 1..{CONTENT_LEN_CEILING} bytes"
        )
    return size


def parse_settings(link: LinkDefinition) -> ServerSettings:
    """Listener settings from a link's config (see the module docstring); raises LinkConfigError."""
    json_config: dict[str, Any] = {}
    for key, parsed in link.json_configs():
        if not isinstance(parsed, dict):
            raise LinkConfigError(f"{link.describe()}: {key} must be a JSON object")
        json_config.update(parsed)
    host, port = _parse_address(link, DEFAULT_ADDRESS)
    if json_config.get("address") is not None:
        host, port = _parse_address(link, str(json_config["address"]))
    if link.value("address") is not None:
        host, port = _parse_address(link, link.value("address") or "")
    if link.value("port") is not None:
        port_text = (link.value("port") or "").strip()
        if not _decimal(port_text) or int(port_text) > 65535:
            raise LinkConfigError(f"{link.describe()}: invalid port {port_text!r}")
        host, port = "127.0.0.1", int(port_text)
    timeout_ms: Any = link.value("timeout_ms", json_config.get("timeout_ms"))
    timeout_s = DEFAULT_TIMEOUT_MS / 1000
    if timeout_ms is not None:
        try:
            timeout_s = int(str(timeout_ms).strip()) / 1000
        except ValueError:
            raise LinkConfigError(f"{link.describe()}: invalid timeout_ms {timeout_ms!r}") from None
        if not timeout_s > 0:
            raise LinkConfigError(f"{link.describe()}: timeout_ms must be > 0")
    size_text: Any = link.value("max_content_len", json_config.get("max_content_len"))
    max_len = DEFAULT_MAX_CONTENT_LEN if size_text is None else parse_size(link, size_text)
    max_connections = _connections(link, json_config, "max_connections", DEFAULT_MAX_CONNECTIONS)
    per_source = _connections(
        link, json_config, "max_connections_per_source", DEFAULT_MAX_CONNECTIONS_PER_SOURCE
    )
    return ServerSettings(host, port, timeout_s, max_len, max_connections, per_source)


def _connections(link: LinkDefinition, json_config: dict[str, Any], key: str, default: int) -> int:
    raw: Any = link.value(key, json_config.get(key))
    if raw is None:
        return default
    text = str(raw).strip()
    if not _decimal(text) or not 1 <= int(text) <= MAX_CONNECTIONS_CEILING:
        raise LinkConfigError(
            f"{link.describe()}: {key} must be 1..{MAX_CONNECTIONS_CEILING}, got {raw!r}"
        )
    return int(text)


class _Listener:
    def __init__(self, link: LinkDefinition, settings: ServerSettings) -> None:
        self.link = link
        self.settings = settings
        self.stop = trio.Event()
        self.stopped = trio.Event()
        self.bound: tuple[str, int] | None = None
        self.state = "starting"
        """``serving``, or ``restarting`` after a failure (``error`` says which)."""
        self.error = ""
        self.restarts = 0
        self.stats = ListenerStats()
        """Open and refused connections, over restarts (monitoring)."""


Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class HttpServerProvider(Provider):
    contract_id = HTTPSERVER
    CONTRACT_ALIASES = (lg.WASCC_HTTP_SERVER,)
    OPERATIONS: ClassVar[dict[str, str]] = {}
    """Actors receive from this provider; they never call it."""

    def __init__(self, invoke: ActorInvoker, *, rng: random.Random | None = None) -> None:
        super().__init__()
        self._invoke = invoke
        self._old_actors: set[str] = set()
        """Actors that answered the older generations' ``HandleRequest`` (tried first)."""
        self._rng = rng if rng is not None else random.Random()  # restart jitter only
        self._listeners: dict[LinkKey, _Listener] = {}
        self._pending: dict[LinkKey, LinkDefinition] = {}
        self._nursery: trio.Nursery | None = None
        self.observer: Observer = NULL_OBSERVER
        """Told of every request answered (status, latency)."""

    async def run_service(self, task_status: trio.TaskStatus[None]) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                pending, self._pending = list(self._pending.values()), {}
                for link in pending:  # links that arrived before the service started
                    with contextlib.suppress(MeshError):  # remembered in link_error()
                        await self.put_link(link)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._listeners.clear()

    def bound_address(self, link: LinkDefinition) -> tuple[str, int] | None:
        """(host, port) the link's listener is bound to, or None if it has none."""
        listener = self._listeners.get(link.key)
        return listener.bound if listener is not None else None

    def listener_stats(self) -> list[tuple[LinkDefinition, ListenerStats]]:
        """Every listener's link and connection counts (monitoring)."""
        return [(listener.link, listener.stats) for listener in self._listeners.values()]

    def listener_state(self, link: LinkDefinition) -> str | None:
        """``serving`` or ``restarting`` (after a failure), or None without a listener."""
        listener = self._listeners.get(link.key)
        return listener.state if listener is not None else None

    def listener_info(self, link: LinkDefinition) -> dict[str, Any] | None:
        """The link's listener as ``inventory`` shows it: ``address``, ``state``,
        ``error`` (the last failure, ``""`` if none) and ``restarts``; None without one."""
        listener = self._listeners.get(link.key)
        if listener is None or listener.bound is None:
            return None
        host, port = listener.bound
        return {
            "address": f"{host}:{port}",
            "state": listener.state,
            "error": listener.error,
            "restarts": listener.restarts,
        }

    async def on_put_link(self, link: LinkDefinition) -> None:
        settings = parse_settings(link)
        if self._nursery is None:  # listen once serve() runs
            self._pending[link.key] = link
            return
        await self._stop(link.key)
        listener = _Listener(link, settings)
        try:
            await self._nursery.start(self._run_listener, listener)
        except OSError as exc:  # bind failed: address in use, not ours, bad host
            raise ProviderError(
                f"httpserver: cannot listen on {settings.bind} for actor {link.actor_id}: {exc}"
            ) from None
        self._listeners[link.key] = listener
        log.info("httpserver: %s listening on %s", link.describe(), settings.bind)

    async def on_del_link(self, link: LinkDefinition) -> None:
        self._pending.pop(link.key, None)
        await self._stop(link.key)

    async def _stop(self, key: LinkKey) -> None:
        listener = self._listeners.pop(key, None)
        if listener is not None:
            listener.stop.set()
            await listener.stopped.wait()

    async def _run_listener(
        self, listener: _Listener, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        config = HypercornConfig()
        config.accesslog = None
        config.errorlog = hypercorn_log  # hypercorn's own lines go to Python logging, not stderr
        config.graceful_timeout = GRACEFUL_STOP_S
        config.keep_alive_timeout = KEEP_ALIVE_S
        config.include_server_header = False
        settings = listener.settings

        class _Status:
            def started(self_, bound: tuple[str, int] | None = None) -> None:
                first = listener.bound is None
                listener.bound = bound
                listener.state = "serving"
                if first:
                    task_status.started()
                else:
                    log.info(
                        "httpserver: listener for %s serves again on %s",
                        listener.link.describe(),
                        bound,
                    )

        failures = 0
        try:
            while not listener.stop.is_set():
                began = trio.current_time()
                try:
                    await serve_http(
                        self._asgi_app(listener),
                        config,
                        settings.host,
                        # A restart keeps the address port 0 picked the first time.
                        listener.bound[1] if listener.bound is not None else settings.port,
                        max_connections=settings.max_connections,
                        max_per_source=settings.max_connections_per_source,
                        stats=listener.stats,
                        stall_s=SEND_STALL_S,
                        stop=listener.stop,
                        task_status=_Status(),
                    )
                    return  # stopped on purpose
                except Exception as exc:
                    if listener.bound is None:
                        raise  # an OSError from bind: nursery.start hands it to on_put_link
                    log.exception(
                        "httpserver: listener for %s failed; restarting it",
                        listener.link.describe(),
                    )
                    listener.state, listener.error = "restarting", _reason(exc)
                    listener.restarts += 1
                failures = 1 if trio.current_time() - began >= RESTART_RESET_S else failures + 1
                delay = backoff_delay(failures, RESTART_INITIAL_S, RESTART_MAX_S, self._rng)
                with trio.move_on_after(delay):
                    await listener.stop.wait()
        finally:
            listener.stopped.set()

    # --- the ASGI application -------------------------------------------------

    def _asgi_app(
        self, listener: _Listener
    ) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
        async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                status, headers, body = _plain(501, WEBSOCKET_REFUSAL)
                await send(
                    {"type": "websocket.http.response.start", "status": status, "headers": headers}
                )
                await send({"type": "websocket.http.response.body", "body": body})
                return
            if scope["type"] != "http":
                return
            started = time.perf_counter()
            answer = await self._handle(listener, scope, receive)
            if answer is None:  # the client went away before sending its body
                return
            status, headers, body = answer
            self.observer.http_request(
                listener.link.actor_id, status, time.perf_counter() - started
            )
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return app

    async def _call(
        self, actor_id: str, request: HttpRequest, old: bool, timeout_s: float
    ) -> bytes:
        """Invoke the actor with wasmbus' request, or the older generations' (``old``):
        op ``HandleRequest``, ``Request {method, path, queryString, header: map<str, str>
        (repeated headers joined with ", "), body}``."""
        if not old:
            return await self._invoke(actor_id, HANDLE_REQUEST, request.encode(), timeout_s)
        payload = lg.OLD_HTTP_REQUEST.encode(
            method=request.method,
            path=request.path,
            query_string=request.query_string,
            header={k: ", ".join(v) for k, v in request.header.items()},
            body=request.body,
        )
        return await self._invoke(actor_id, lg.OLD_HANDLE_REQUEST, payload, timeout_s)

    async def _handle(
        self, listener: _Listener, scope: dict[str, Any], receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        settings = listener.settings
        actor_id = listener.link.actor_id
        if scope["method"].upper() == "CONNECT":
            # A 2xx would switch the connection to a tunnel this server never provides.
            return _plain(405, "CONNECT is not supported: this server is not a proxy\n")
        too_large = _plain(413, f"request body exceeds {settings.max_content_len} bytes\n")
        declared = _content_length(scope["headers"])
        if declared is not None and declared > settings.max_content_len:
            return too_large  # say so now, not after the client sent it all
        body = bytearray()
        more = True
        # A client that stops sending mid-body (slowloris) would hold this
        # request and its socket forever: the body gets the actor's time budget.
        with trio.move_on_after(settings.timeout_s):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > settings.max_content_len:
                    return too_large
        if more:
            return _plain(408, f"request body did not arrive within {settings.timeout_s:g} s\n")
        header: dict[str, list[str]] = {}
        for raw_name, raw_value in scope["headers"]:
            try:
                value = raw_value.decode("ascii")
            except UnicodeDecodeError:
                continue  # wasmCloud forwards only ASCII header values
            header.setdefault(raw_name.decode("latin-1").lower(), []).append(value)
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        request = HttpRequest(
            method=scope["method"].upper(),
            path=raw_path.decode("latin-1").split("?", 1)[0],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            header={k: tuple(v) for k, v in header.items()},
            body=bytes(body),
        )
        INCOMING_TRACEPARENT.set(header.get("traceparent", ("",))[0])
        old = listener.link.contract_id == lg.WASCC_HTTP_SERVER or actor_id in self._old_actors
        try:
            with trio.fail_after(settings.timeout_s + 1):
                try:
                    answer = await self._call(actor_id, request, old, settings.timeout_s)
                except MeshError as exc:
                    if listener.link.contract_id == lg.WASCC_HTTP_SERVER or (
                        not lg.is_missing_handler(exc)
                    ):
                        raise
                    # a wasmCloud 0.1x actor (or one that moved on to wasmbus)
                    old = not old
                    try:
                        answer = await self._call(actor_id, request, old, settings.timeout_s)
                    except MeshError as second:
                        if lg.is_missing_handler(second):
                            raise exc from None  # handles neither: report the first
                        raise
                    if old:
                        self._old_actors.add(actor_id)
                    else:
                        self._old_actors.discard(actor_id)
        except trio.TooSlowError:
            return _plain(503, f"actor {actor_id} did not answer within {settings.timeout_s:g} s\n")
        except MeshError as exc:
            status = 503 if exc.code in UNAVAILABLE_CODES else 500
            log.warning(
                "httpserver: %s %s for actor %s: %s", request.method, request.path, actor_id, exc
            )
            if status == 503:  # where the lattice failed: host ids and addresses stay in the log
                return _plain(status, f"service unavailable ({exc.code.name.lower()})\n")
            return _plain(status, f"{exc}\n")  # the actor's own failure, as wasmCloud answered
        except Exception:
            log.exception("httpserver: invoking actor %s failed", actor_id)
            return _plain(500, "internal error invoking the actor\n")
        try:
            response = _old_response(answer) if old else HttpResponse.decode(answer)
        except MeshError as exc:
            return _plain(500, f"actor {actor_id} answered a malformed HttpResponse: {exc}\n")
        if not 100 <= response.status_code <= 599:
            return _plain(500, f"actor {actor_id} answered invalid status {response.status_code}\n")
        headers: list[tuple[bytes, bytes]] = []
        for name, values in response.header.items():
            raw_name = name.encode("latin-1", "replace").lower()
            if not _HEADER_NAME.match(raw_name) or raw_name in _HOP_BY_HOP:
                continue
            for value in values:
                raw_value = value.encode("latin-1", "replace")
                if b"\r" not in raw_value and b"\n" not in raw_value and b"\0" not in raw_value:
                    headers.append((raw_name, raw_value))
        headers.append((b"content-length", str(len(response.body)).encode()))
        return response.status_code, headers, response.body


def _old_response(answer: bytes) -> HttpResponse:
    """waSCC / wasmCloud 0.1x ``Response {statusCode, status, header, body}`` as an HttpResponse."""
    fields = lg.OLD_HTTP_RESPONSE.decode(answer)
    return HttpResponse(
        status_code=fields["status_code"],
        header={k: (v,) for k, v in fields["header"].items()},
        body=fields["body"],
    )


def _reason(exc: BaseException) -> str:
    """What failed, for a person: the first real error inside trio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length (h11 checked it is digits), or None."""
    for name, value in headers:
        digits = value.strip()
        if name.lower() == b"content-length" and digits.isdigit():
            return int(digits) if len(digits) <= 18 else 10**18  # int() refuses 4300+ digits
    return None


def _plain(status: int, text: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = text.encode("utf-8")
    return (
        status,
        [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ],
        body,
    )
