"""``wasmcloud:httpclient``: outgoing HTTP requests, only to hosts the link allows.

``HttpClient.Request`` takes ``HttpRequest {method, url, headers, body}`` and
answers ``HttpResponse {statusCode, header, body}`` (httpclient.smithy).

Off unless configured: a link must list the hosts its actor may reach in
``ALLOWED_HOSTS`` (comma-separated; ``host`` = any port, ``host:port``,
``[v6addr]:port``, ``*.example.com`` = subdomains, ``*`` = anywhere).  With no
list every request is refused with HostNotAllowed naming the host and the
link.  Redirects are not followed (a 3xx goes back to the actor), so the list
cannot be bypassed.  Other link config: ``TIMEOUT_MS`` (default 10000) and
``MAX_RESPONSE_BYTES`` (default 10 MiB, wasmCloud's HTTP size default).

Requests run with the stdlib ``http.client`` on the calling guest's worker
thread (the guest waits for the answer anyway).  Response header names are
lower-cased (HTTP header names are case-insensitive; wasmCloud's Rust
provider did the same through the ``http`` crate).
"""

from __future__ import annotations

import http.client
import re
import ssl
from dataclasses import dataclass
from http import HTTPStatus
from typing import ClassVar
from urllib.parse import urlsplit

from meshhost.capabilities import legacy as lg
from meshhost.capabilities.contracts import HTTPCLIENT, HttpClientRequest, HttpResponse
from meshhost.capabilities.links import LinkDefinition, LinkKey
from meshhost.capabilities.policy import who
from meshhost.capabilities.providers.base import CallContext, Provider
from meshhost.errors import HostNotAllowed, LinkConfigError, ProviderError, ProviderPayloadTooLarge

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT_MS",
    "ClientSettings",
    "HttpClientProvider",
]

DEFAULT_TIMEOUT_MS = 10_000
"""Per request (connect, and each read); an actor's own deadline usually cuts in first."""

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
"""wasmCloud's default HTTP content limit (10 MiB)."""

MAX_RESPONSE_BYTES_CEILING = 512 * 1024 * 1024
"""No link may raise the response limit above this (a guest's memory is at most a few GiB)."""

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SCHEMES = {"http": 80, "https": 443}


def _decimal(text: str) -> bool:
    """A short run of ASCII digits (``str.isdigit`` also accepts "²", which ``int`` refuses)."""
    return len(text) <= 12 and text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class ClientSettings:
    allowed: tuple[tuple[str, int | None], ...]
    """(host pattern, port or None for any port)."""
    timeout_s: float = DEFAULT_TIMEOUT_MS / 1000
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def allows(self, host: str, port: int) -> bool:
        for pattern, allowed_port in self.allowed:
            if allowed_port is not None and allowed_port != port:
                continue
            if pattern == "*" or pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
        return False


def _positive_int(link: LinkDefinition, key: str, default: int, ceiling: int) -> int:
    raw = link.value(key)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise LinkConfigError(f"{link.describe()}: {key} must be an integer, got {raw!r}") from None
    if not 0 < value <= ceiling:
        raise LinkConfigError(f"{link.describe()}: {key} must be in 1..{ceiling}, got {value}")
    return value


def parse_settings(link: LinkDefinition) -> ClientSettings:
    """Read ALLOWED_HOSTS, TIMEOUT_MS and MAX_RESPONSE_BYTES; raises LinkConfigError."""
    allowed: list[tuple[str, int | None]] = []
    for entry in (link.value("ALLOWED_HOSTS") or "").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        host, port = entry, None
        if entry.startswith("["):  # [v6]:port or [v6]
            end = entry.find("]")
            if end < 0:
                raise LinkConfigError(f"{link.describe()}: bad ALLOWED_HOSTS entry {entry!r}")
            host, rest = entry[1:end], entry[end + 1 :]
            if rest:
                if not rest.startswith(":") or not _decimal(rest[1:]):
                    raise LinkConfigError(f"{link.describe()}: bad ALLOWED_HOSTS entry {entry!r}")
                port = int(rest[1:])
        elif entry.count(":") == 1:
            host, _, port_text = entry.partition(":")
            if not _decimal(port_text):
                raise LinkConfigError(
                    f"{link.describe()}: bad port in ALLOWED_HOSTS entry {entry!r}"
                )
            port = int(port_text)
        if port is not None and not 0 < port < 65536:
            raise LinkConfigError(f"{link.describe()}: bad port in ALLOWED_HOSTS entry {entry!r}")
        if not host:
            raise LinkConfigError(f"{link.describe()}: bad ALLOWED_HOSTS entry {entry!r}")
        allowed.append((host, port))
    timeout_ms = _positive_int(link, "TIMEOUT_MS", DEFAULT_TIMEOUT_MS, 3_600_000)
    limit = _positive_int(
        link, "MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES, MAX_RESPONSE_BYTES_CEILING
    )
    return ClientSettings(tuple(allowed), timeout_ms / 1000, limit)


class HttpClientProvider(Provider):
    contract_id = HTTPCLIENT
    CONTRACT_ALIASES = (lg.WASCC_HTTP_CLIENT,)
    OPERATIONS: ClassVar[dict[str, str]] = {
        "HttpClient.Request": "op_request",
        # wasmCloud 0.1x (legacy.OLD_CLIENT_REQUEST): the actor crate's generated code sends
        # "Request", its OP_PERFORM_REQUEST constant (what the provider matched) says
        # "PerformRequest"; both are served.  waSCC (wascc:http_client) sends PerformRequest.
        "Request": "legacy_request",
        "PerformRequest": "legacy_request",
    }

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self._settings: dict[LinkKey, ClientSettings] = {}
        self._ssl = ssl_context

    async def on_put_link(self, link: LinkDefinition) -> None:
        self._settings[link.key] = parse_settings(link)

    async def on_del_link(self, link: LinkDefinition) -> None:
        self._settings.pop(link.key, None)

    def _settings_for(self, link: LinkDefinition) -> ClientSettings:
        settings = self._settings.get(link.key)
        if settings is None:  # a link this provider was not told about: read it now
            settings = self._settings[link.key] = parse_settings(link)
        return settings

    def op_request(self, ctx: CallContext, payload: bytes) -> bytes:
        req = HttpClientRequest.decode(payload)
        settings = self._settings_for(ctx.link)
        parts = urlsplit(req.url)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ProviderError(f"HttpClient.Request: only http and https URLs, got {req.url!r}")
        try:
            host = (parts.hostname or "").lower()
            port = parts.port or _SCHEMES[scheme]
        except ValueError:
            raise ProviderError(f"HttpClient.Request: bad URL {req.url!r}") from None
        if not host:
            raise ProviderError(f"HttpClient.Request: URL {req.url!r} has no host")
        if not settings.allows(host, port):
            listed = (
                ", ".join(f"{h}:{p}" if p is not None else h for h, p in settings.allowed) or "none"
            )
            raise HostNotAllowed(
                f"{who(ctx.actor)} may not reach {host}:{port}: it is not in ALLOWED_HOSTS of "
                f"link {ctx.link.link_name!r} to {ctx.link.contract_id} (allowed: {listed})"
            )
        method = (req.method or "GET").upper()
        if not _TOKEN.match(method):
            raise ProviderError(f"HttpClient.Request: bad method {req.method!r}")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return self._send(scheme, host, port, method, target, req, settings)

    def legacy_request(self, ctx: CallContext, payload: bytes) -> bytes:
        """wasmCloud 0.1x ``Request {method, url, headers: map<str, str>, body}`` ->
        ``Response {statusCode, status, header: map<str, str>, body}``, through
        :meth:`op_request` (same ALLOWED_HOSTS, limits, no redirects)."""
        if lg.generation_of(ctx.link.contract_id) == "wascc":
            # waSCC's PerformRequest sends its server Request; `path` holds the URL (the
            # waSCC http-client provider's own test passes the server URL as path)
            old = lg.Shape(
                f"{ctx.link.contract_id} {lg.OLD_HTTP_REQUEST.name}", lg.OLD_HTTP_REQUEST.fields
            ).decode(payload)
            url = old["path"]
            if old["query_string"]:
                url += ("&" if "?" in url else "?") + old["query_string"]
            args = {
                "method": old["method"],
                "url": url,
                "headers": old["header"],
                "body": old["body"],
            }
        else:
            args = lg.Shape(
                f"{ctx.link.contract_id} {lg.OLD_CLIENT_REQUEST.name}", lg.OLD_CLIENT_REQUEST.fields
            ).decode(payload)
        request = HttpClientRequest(
            args["method"], args["url"], {k: (v,) for k, v in args["headers"].items()}, args["body"]
        )
        response = HttpResponse.decode(self.op_request(ctx, request.encode()))
        try:
            status = HTTPStatus(response.status_code).phrase
        except ValueError:
            status = ""
        return lg.OLD_HTTP_RESPONSE.encode(
            status_code=response.status_code,
            status=status,
            header={k: ",".join(v) for k, v in response.header.items()},
            body=response.body,
        )

    def _send(
        self,
        scheme: str,
        host: str,
        port: int,
        method: str,
        target: str,
        req: HttpClientRequest,
        settings: ClientSettings,
    ) -> bytes:
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                host, port, timeout=settings.timeout_s, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=settings.timeout_s)
        names = {name.lower() for name in req.headers}
        try:
            conn.putrequest(method, target, skip_host="host" in names, skip_accept_encoding=True)
            for name, values in req.headers.items():
                if not _TOKEN.match(name):
                    raise ProviderError(f"HttpClient.Request: bad header name {name!r}")
                for value in values:
                    if "\r" in value or "\n" in value:
                        raise ProviderError(f"HttpClient.Request: header {name!r} has a line break")
                    conn.putheader(name, value)
            if "content-length" not in names and (req.body or method in ("POST", "PUT", "PATCH")):
                conn.putheader("Content-Length", str(len(req.body)))
            conn.endheaders(req.body or None)
            resp = conn.getresponse()
            body = resp.read(settings.max_response_bytes + 1)
            if len(body) > settings.max_response_bytes:
                raise ProviderPayloadTooLarge(
                    f"HttpClient.Request to {host}:{port}: response body exceeds "
                    f"{settings.max_response_bytes} bytes (MAX_RESPONSE_BYTES)"
                )
            header: dict[str, list[str]] = {}
            for name, value in resp.getheaders():
                header.setdefault(name.lower(), []).append(value)
            return HttpResponse(
                resp.status, {k: tuple(v) for k, v in header.items()}, body
            ).encode()
        except TimeoutError:
            raise ProviderError(
                f"HttpClient.Request to {host}:{port} timed out after {settings.timeout_s:g} s"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderError(
                f"HttpClient.Request to {host}:{port} failed: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            conn.close()
