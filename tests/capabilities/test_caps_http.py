"""wasmcloud:httpserver (hypercorn on loopback) and wasmcloud:httpclient (allow-listed hosts)."""

from __future__ import annotations

import http.client
import http.server
import logging
import re
import socket
import threading

import msgpack
import pytest
import trio

from meshhost.capabilities import HTTPCLIENT, HTTPSERVER, Dispatcher
from meshhost.capabilities.contracts import HttpClientRequest, HttpRequest, HttpResponse
from meshhost.capabilities.providers import httpserver
from meshhost.capabilities.providers.httpclient import HttpClientProvider
from meshhost.capabilities.providers.httpserver import HttpServerProvider, parse_settings
from meshhost.errors import (
    ActorDeadlineExceeded,
    ActorTrapped,
    HostNotAllowed,
    LinkConfigError,
    ProviderError,
    ProviderPayloadTooLarge,
)

ECHO = "M" + "E" * 55


# --- HTTP server ------------------------------------------------------------------


class FakeActor:
    """Stands in for the runtime: answers HttpServer.HandleRequest like an echo actor."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.fail: Exception | None = None
        self.raw_answer: bytes | None = None
        self.hold: trio.Event | None = None  # when set: answer only once it is set

    async def __call__(self, actor_id: str, operation: str, payload: bytes, timeout_s: float):
        assert (actor_id, operation) == (ECHO, "HttpServer.HandleRequest")
        request = HttpRequest.decode(payload)
        self.requests.append(request)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        if self.raw_answer is not None:
            return self.raw_answer
        body = f"{request.method} {request.path}?{request.query_string} ".encode() + request.body
        return HttpResponse(201, {"x-echo": ("1", "2")}, body).encode()


def http_get(
    port: int, method: str = "GET", path: str = "/", body: bytes | None = None, headers=None
):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


@pytest.fixture
async def server(nursery, make_link):
    actor = FakeActor()
    provider = HttpServerProvider(actor)
    await nursery.start(provider.serve)
    d = Dispatcher(providers=[provider])
    link = make_link(ECHO, HTTPSERVER, ADDRESS="127.0.0.1:0", MAX_CONTENT_LEN="1k")
    await d.put_link(link)
    host, port = provider.bound_address(link)
    assert host == "127.0.0.1" and port > 0
    return d, provider, actor, link, port


async def test_request_served_by_hypercorn_returns_the_actors_response(server):
    _, _, actor, _, port = server
    status, headers, body = await trio.to_thread.run_sync(
        http_get, port, "POST", "/hello/w%20rld?a=1&b=2", b"payload", {"X-Multi": "v1"}
    )
    assert status == 201
    assert body == b"POST /hello/w%20rld?a=1&b=2 payload"
    assert [v for k, v in headers if k.lower() == "x-echo"] == ["1", "2"]
    (request,) = actor.requests
    assert request.method == "POST" and request.path == "/hello/w%20rld"
    assert request.query_string == "a=1&b=2"
    assert request.header["x-multi"] == ("v1",)
    assert request.header["content-length"] == ("7",)


async def test_query_string_is_empty_without_a_query(server):
    _, _, actor, _, port = server
    await trio.to_thread.run_sync(http_get, port)
    assert actor.requests[0].query_string == "" and actor.requests[0].path == "/"


async def test_oversized_body_is_413_and_never_reaches_the_actor(server):
    _, _, actor, _, port = server
    status, _, body = await trio.to_thread.run_sync(http_get, port, "POST", "/", b"x" * 2000)
    assert status == 413 and b"exceeds 1024 bytes" in body
    assert actor.requests == []


def first_reply_bytes(port: int, request: bytes) -> bytes:
    """Send ``request`` raw and return the first answer, head and body (the socket stays open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while not reply_complete(reply):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def reply_complete(reply: bytes) -> bool:
    head, blank, body = reply.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    return bool(blank) and len(body) >= (int(length.group(1)) if length else 0)


async def test_a_declared_oversized_body_is_413_before_it_is_sent(server):
    _, _, actor, _, port = server
    request = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\nabc"
    reply = await trio.to_thread.run_sync(first_reply_bytes, port, request)
    assert reply.startswith(b"HTTP/1.1 413") and b"exceeds 1024 bytes" in reply
    assert actor.requests == []


async def test_connect_is_405_and_never_reaches_the_actor(server, caplog):
    _, _, actor, _, port = server
    request = b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"
    reply = await trio.to_thread.run_sync(first_reply_bytes, port, request)
    assert reply.startswith(b"HTTP/1.1 405") and b"not a proxy" in reply
    assert actor.requests == []
    assert "Error in ASGI" not in caplog.text  # a 2xx made h11 fail in SWITCHED_PROTOCOL


async def test_a_websocket_upgrade_is_501_saying_the_contract_has_no_websockets(server, caplog):
    _, _, actor, _, port = server
    request = (
        b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    reply = await trio.to_thread.run_sync(first_reply_bytes, port, request)
    assert reply.startswith(b"HTTP/1.1 501")
    assert b"websocket upgrades are not supported" in reply and b"wasmCloud 0.x" in reply
    assert actor.requests == []
    assert "Error in ASGI" not in caplog.text
    assert (await trio.to_thread.run_sync(http_get, port))[0] == 201  # served as before


async def test_a_stalled_body_is_408_after_the_link_timeout_and_the_server_serves_on(
    nursery, make_link
):
    actor = FakeActor()
    provider = HttpServerProvider(actor)
    await nursery.start(provider.serve)
    link = make_link(ECHO, HTTPSERVER, ADDRESS="127.0.0.1:0", TIMEOUT_MS="200")
    await Dispatcher(providers=[provider]).put_link(link)
    _, port = provider.bound_address(link)
    stalled = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"  # 97 never come
    reply = await trio.to_thread.run_sync(first_reply_bytes, port, stalled)
    assert reply.startswith(b"HTTP/1.1 408") and b"within 0.2 s" in reply
    assert actor.requests == []
    status, _, _ = await trio.to_thread.run_sync(http_get, port)
    assert status == 201


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ActorTrapped(ECHO, "echo", "wasm trap: unreachable"), 500),
        (ActorDeadlineExceeded(ECHO, "echo", "deadline of 1 s passed", "deadline"), 503),
    ],
)
async def test_actor_failures_map_to_500_or_503_with_a_plain_message(server, error, status):
    _, _, actor, _, port = server
    actor.fail = error
    got, headers, body = await trio.to_thread.run_sync(http_get, port)
    assert got == status
    if status == 503:  # details (which host, where) stay in the host's log
        assert body.decode() == f"service unavailable ({error.code.name.lower()})\n"
        assert ECHO.encode() not in body
    else:  # the actor's own failure is its answer
        assert body.decode() == f"{error}\n"
    assert ("Content-Type", "text/plain; charset=utf-8") in headers or (
        "content-type",
        "text/plain; charset=utf-8",
    ) in headers


async def test_malformed_actor_response_is_500(server):
    _, _, actor, _, port = server
    actor.raw_answer = msgpack.packb({"statusCode": "two hundred"})
    status, _, body = await trio.to_thread.run_sync(http_get, port)
    assert status == 500 and b"malformed HttpResponse" in body


async def test_response_with_a_stray_zero_byte_is_accepted(server):
    _, _, actor, _, port = server
    actor.raw_answer = HttpResponse(200, {}, b"ok").encode() + b"\x00"
    assert (await trio.to_thread.run_sync(http_get, port))[::2] == (200, b"ok")


async def test_unlink_stops_the_listener(server):
    d, provider, _, link, port = server
    assert await d.del_link(ECHO, HTTPSERVER, "default")
    assert provider.bound_address(link) is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_two_links_on_one_port_fail_with_a_clear_error(server, make_link):
    d, _, _, _, port = server
    with pytest.raises(ProviderError, match=rf"cannot listen on 127\.0\.0\.1:{port}"):
        await d.put_link(make_link("M" + "O" * 55, HTTPSERVER, ADDRESS=f"127.0.0.1:{port}"))


def test_server_settings_follow_wasmcloud_keys(make_link):
    s = parse_settings(make_link(ECHO, HTTPSERVER))
    assert (s.host, s.port, s.max_content_len) == ("127.0.0.1", 8000, 10 * 1024 * 1024)
    s = parse_settings(
        make_link(ECHO, HTTPSERVER, config_json='{"address": "0.0.0.0:9000", "timeout_ms": 500}')
    )
    assert (s.host, s.port, s.timeout_s) == ("0.0.0.0", 9000, 0.5)
    assert parse_settings(make_link(ECHO, HTTPSERVER, PORT="8081")).port == 8081
    assert (
        parse_settings(make_link(ECHO, HTTPSERVER, max_content_len="5m")).max_content_len
        == 5 * 2**20
    )
    for bad in ("nowhere", "127.0.0.1:\u00b2", "127.0.0.1:" + "9" * 5000):
        with pytest.raises(LinkConfigError, match="invalid address"):
            parse_settings(make_link(ECHO, HTTPSERVER, ADDRESS=bad))


def test_max_connections_is_a_link_value_with_a_sane_default(make_link):
    assert parse_settings(make_link(ECHO, HTTPSERVER)).max_connections == 256
    assert parse_settings(make_link(ECHO, HTTPSERVER, MAX_CONNECTIONS="3")).max_connections == 3
    link = make_link(ECHO, HTTPSERVER, config_json='{"max_connections": 40}')
    assert parse_settings(link).max_connections == 40
    for bad in ("0", "-1", "lots", "70000"):
        with pytest.raises(LinkConfigError, match=r"max_connections must be 1\.\.65535"):
            parse_settings(make_link(ECHO, HTTPSERVER, MAX_CONNECTIONS=bad))
    assert parse_settings(make_link(ECHO, HTTPSERVER)).max_connections_per_source == 64
    link = make_link(ECHO, HTTPSERVER, config_json='{"max_connections_per_source": 5}')
    assert parse_settings(link).max_connections_per_source == 5
    with pytest.raises(LinkConfigError, match=r"max_connections_per_source must be 1\.\.65535"):
        parse_settings(make_link(ECHO, HTTPSERVER, MAX_CONNECTIONS_PER_SOURCE="0"))


def everything_until_closed(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(1 << 16):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def test_a_connection_over_the_limit_gets_503_and_is_closed(
    nursery, make_link, caplog, monkeypatch
):
    monkeypatch.setattr(httpserver, "KEEP_ALIVE_S", 0.2)  # a closed connection is let go sooner
    actor = FakeActor()
    actor.hold = trio.Event()
    provider = HttpServerProvider(actor)
    await nursery.start(provider.serve)
    link = make_link(ECHO, HTTPSERVER, ADDRESS="127.0.0.1:0", MAX_CONNECTIONS="2")
    await Dispatcher(providers=[provider]).put_link(link)
    _, port = provider.bound_address(link)
    held = []
    for _ in range(2):  # two requests the actor is still working on
        held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        held[-1].sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with trio.fail_after(10):
        while len(actor.requests) < 2:
            await trio.sleep(0.01)

    def third() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            return everything_until_closed(sock)  # a timeout here means it was kept open

    reply = await trio.to_thread.run_sync(third)
    assert reply.startswith(b"HTTP/1.1 503"), reply
    assert b"too many connections to this listener (limit 2)" in reply
    assert len(actor.requests) == 2  # the actor never saw it
    assert "refusing one" in caplog.text
    actor.hold.set()
    held.pop().close()
    with trio.fail_after(10):
        while True:  # the server notices the close, then has room again
            status = await trio.to_thread.run_sync(
                first_reply_bytes, port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            )
            if status.startswith(b"HTTP/1.1 201"):
                break
            await trio.sleep(0.05)
    for sock in held:
        sock.close()


async def test_a_client_that_never_reads_a_large_response_is_disconnected(
    nursery, make_link, monkeypatch, caplog
):
    monkeypatch.setattr(httpserver, "SEND_STALL_S", 0.2)
    caplog.set_level(logging.INFO, logger="meshhost.capabilities.providers.httplisten")
    actor = FakeActor()
    body_size = 16 * 1024 * 1024  # more than the kernel buffers both ends hold
    actor.raw_answer = HttpResponse(200, {}, b"x" * body_size).encode()
    provider = HttpServerProvider(actor)
    await nursery.start(provider.serve)
    link = make_link(ECHO, HTTPSERVER, ADDRESS="127.0.0.1:0")
    await Dispatcher(providers=[provider]).put_link(link)
    _, port = provider.bound_address(link)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        with trio.fail_after(20):  # without the bound the server waits for ever
            while "read nothing for 0.2 s" not in caplog.text:
                await trio.sleep(0.05)
        received = await trio.to_thread.run_sync(everything_until_closed, sock)
    finally:
        sock.close()
    assert received.startswith(b"HTTP/1.1 200")
    assert len(received) < body_size  # cut off, and closed: recv ended without a timeout
    assert (await trio.to_thread.run_sync(http_get, port))[0] == 200  # the listener serves on


# --- HTTP client ------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        reply = b"got " + body + b" " + self.headers.get("X-Token", "").encode()
        if self.path == "/big":
            reply = b"x" * 5000
        self.send_response(202)
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


async def client(make_link, **values) -> Dispatcher:
    d = Dispatcher(providers=[HttpClientProvider()])
    await d.put_link(make_link(ECHO, HTTPCLIENT, **values))
    return d


def request(d: Dispatcher, actor, url: str, path_body=b"hi") -> HttpResponse:
    payload = HttpClientRequest("post", url, {"X-Token": ("t0k",)}, path_body).encode()
    return HttpResponse.decode(d.host_call(actor, "", HTTPCLIENT, "HttpClient.Request", payload))


async def test_httpclient_reaches_an_allowed_loopback_server(web, make_actor, make_link):
    d = await client(make_link, ALLOWED_HOSTS=f"example.org, 127.0.0.1:{web}")
    resp = await trio.to_thread.run_sync(
        request, d, make_actor((HTTPCLIENT,)), f"http://127.0.0.1:{web}/x"
    )
    assert resp.status_code == 202
    assert resp.body == b"got hi t0k"
    assert resp.header["set-cookie"] == ("a=1", "b=2")


async def test_httpclient_denies_every_host_by_default(web, make_actor, make_link):
    d = await client(make_link)
    with pytest.raises(HostNotAllowed) as info:
        request(d, make_actor((HTTPCLIENT,)), f"http://127.0.0.1:{web}/x")
    assert str(info.value) == (
        f"actor {ECHO} (echo) may not reach 127.0.0.1:{web}: it is not in ALLOWED_HOSTS of "
        "link 'default' to wasmcloud:httpclient (allowed: none)"
    )


async def test_httpclient_denies_other_ports_and_hosts(web, make_actor, make_link):
    d = await client(make_link, ALLOWED_HOSTS="127.0.0.1:1,*.example.com")
    with pytest.raises(HostNotAllowed, match=r"\(allowed: 127\.0\.0\.1:1, \*\.example\.com\)"):
        request(d, make_actor((HTTPCLIENT,)), f"http://127.0.0.1:{web}/x")
    with pytest.raises(HostNotAllowed):
        request(d, make_actor((HTTPCLIENT,)), "http://example.com/")  # apex not covered by *.


async def test_httpclient_response_size_limit(web, make_actor, make_link):
    d = await client(make_link, ALLOWED_HOSTS="127.0.0.1", MAX_RESPONSE_BYTES="1000")
    with pytest.raises(ProviderPayloadTooLarge, match="exceeds 1000 bytes"):
        await trio.to_thread.run_sync(
            request, d, make_actor((HTTPCLIENT,)), f"http://127.0.0.1:{web}/big"
        )


async def test_httpclient_connection_refused_is_a_provider_error(make_actor, make_link):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    d = await client(make_link, ALLOWED_HOSTS="127.0.0.1")
    with pytest.raises(
        ProviderError, match=rf"to 127\.0\.0\.1:{free} failed: ConnectionRefusedError"
    ):
        request(d, make_actor((HTTPCLIENT,)), f"http://127.0.0.1:{free}/")


async def test_httpclient_refuses_bad_config_at_link_time(make_link):
    with pytest.raises(LinkConfigError, match="bad port"):
        await client(make_link, ALLOWED_HOSTS="127.0.0.1:http")


async def test_head_request_gets_headers_without_a_body(server):
    _, _, actor, _, port = server
    status, headers, body = await trio.to_thread.run_sync(http_get, port, "HEAD", "/h")
    assert status == 201 and body == b""
    assert actor.requests[0].method == "HEAD"
    assert dict((k.lower(), v) for k, v in headers)["content-length"] == str(len(b"HEAD /h? "))


async def test_putting_the_same_link_again_keeps_the_listener(server):
    d, provider, _, link, port = server
    await d.put_link(link)
    assert provider.bound_address(link) == ("127.0.0.1", port)


async def test_a_link_put_before_the_service_starts_listens_once_it_runs(nursery, make_link):
    provider = HttpServerProvider(FakeActor())
    d = Dispatcher(providers=[provider])
    link = make_link(ECHO, HTTPSERVER, ADDRESS="127.0.0.1:0")
    await d.put_link(link)
    assert provider.bound_address(link) is None
    await nursery.start(provider.serve)
    _, port = provider.bound_address(link)
    assert (await trio.to_thread.run_sync(http_get, port))[0] == 201


async def test_apply_links_reconciles_and_reports_refused_configs(server, make_link):
    d, provider, _, link, port = server
    other = make_link("M" + "O" * 55, HTTPSERVER, ADDRESS=f"127.0.0.1:{port}")  # port taken
    bad = make_link("M" + "B" * 55, HTTPSERVER, ADDRESS="nowhere")
    failures = await d.apply_links([link, other, bad])
    assert [
        (f[0].actor_id, "cannot listen" in f[1] or "invalid address" in f[1]) for f in failures
    ] == [
        (other.actor_id, True),
        (bad.actor_id, True),
    ]
    assert provider.link_error(bad) is not None
    assert await d.apply_links([]) == []
    assert len(d.links) == 0 and provider.bound_address(link) is None


async def test_links_in_a_prefilled_table_reach_their_provider_when_serving(nursery, make_link):
    from meshhost.capabilities import LinkTable

    provider = HttpServerProvider(FakeActor())
    link = make_link(ECHO, HTTPSERVER, ADDRESS="127.0.0.1:0")
    d = Dispatcher(providers=[provider], links=LinkTable([link]))
    await nursery.start(d.serve)
    _, port = provider.bound_address(link)
    assert (await trio.to_thread.run_sync(http_get, port))[0] == 201
    await d.put_link(link)  # the same link again: nothing restarts
    assert provider.bound_address(link) == ("127.0.0.1", port)


async def test_actors_cannot_call_the_http_server_contract(server, make_actor):
    from meshhost.errors import OperationNotSupported

    d, *_ = server
    with pytest.raises(OperationNotSupported, match="has no operations an actor can call"):
        d.host_call(make_actor((HTTPSERVER,)), "", HTTPSERVER, "HttpServer.HandleRequest", b"")
