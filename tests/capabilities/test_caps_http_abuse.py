"""The HTTP server under abusive clients: resets at the limit, slot hogging, slow heads.

Clients bind distinct loopback sources (127.0.0.2, 127.0.0.3) so the
per-source connection cap tells them apart, as it would tell hosts apart.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time

import trio

from meshhost.capabilities import HTTPSERVER, Dispatcher
from meshhost.capabilities.contracts import HttpRequest, HttpResponse
from meshhost.capabilities.providers.httpserver import HttpServerProvider

ACTOR = "M" + "E" * 55
ATTACKER = "127.0.0.2"
VISITOR = "127.0.0.3"


async def answer(actor_id: str, operation: str, payload: bytes, timeout_s: float) -> bytes:
    """An actor that answers every request at once with its path."""
    return HttpResponse(200, {}, HttpRequest.decode(payload).path.encode()).encode()


async def listening(nursery: trio.Nursery, make_link, **values: str):
    provider = HttpServerProvider(answer)
    await nursery.start(provider.serve)
    link = make_link(ACTOR, HTTPSERVER, ADDRESS="127.0.0.1:0", **values)
    await Dispatcher(providers=[provider]).put_link(link)
    return provider, link, provider.bound_address(link)[1]


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def attack(port: int, stop: threading.Event, opened: list[int]) -> None:
    """Open connections with half a request head, hold them, reset them all, again."""
    held: list[socket.socket] = []
    while not stop.is_set():
        sock = socket.socket()
        sock.settimeout(2)
        try:
            sock.bind((ATTACKER, 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /held HTTP/1.1\r\nHost: a\r\n")
        except OSError:
            sock.close()
            continue
        opened[0] += 1
        held.append(sock)
        if len(held) >= 12:
            time.sleep(0.02)  # the refused ones are being answered 503 now
            for s in held:
                reset(s)
            held.clear()
    for s in held:
        reset(s)


def one_connection_request(port: int, path: str) -> tuple[int, bytes]:
    """A request on a fresh connection, closed after the answer (as curl does)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(VISITOR, 0))
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


async def test_visitors_are_all_answered_while_one_client_holds_and_resets_connections(
    nursery, make_link
) -> None:
    provider, link, port = await listening(
        nursery, make_link, MAX_CONNECTIONS="16", MAX_CONNECTIONS_PER_SOURCE="4"
    )
    stop = threading.Event()
    opened = [0]
    attacker = threading.Thread(target=attack, args=(port, stop, opened), daemon=True)
    attacker.start()

    def visit() -> list[tuple[int, int, bytes]]:
        failures = []
        for i in range(600):  # ~4 s idle: hundreds of refusals reset under the visits
            status, body = one_connection_request(port, f"/v{i}")
            if (status, body) != (200, f"/v{i}".encode()):
                failures.append((i, status, body))
        return failures

    try:
        failures = await trio.to_thread.run_sync(visit)
    finally:
        stop.set()
        await trio.to_thread.run_sync(attacker.join)
    assert opened[0] > 100  # the attacker really was at it all along
    assert failures == []
    # The listener is alive at the end, and says so.
    assert await trio.to_thread.run_sync(one_connection_request, port, "/end") == (200, b"/end")
    assert provider.listener_state(link) == "serving"


def connect_from(source: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def until_closed(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(1 << 16):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def test_one_source_gets_503_past_its_cap_while_another_is_served(nursery, make_link) -> None:
    _, _, port = await listening(nursery, make_link, MAX_CONNECTIONS_PER_SOURCE="2")

    def scenario() -> tuple[bytes, tuple[int, bytes]]:
        held = [connect_from(ATTACKER, port) for _ in range(2)]
        for sock in held:
            sock.sendall(b"GET / HTTP/1.1\r\n")  # half a head: the slot stays taken
        time.sleep(0.2)  # let the server accept both
        try:
            with connect_from(ATTACKER, port) as third:
                third.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                refused = until_closed(third)
            return refused, one_connection_request(port, "/other")
        finally:
            for sock in held:
                sock.close()

    refused, other = await trio.to_thread.run_sync(scenario)
    assert refused.startswith(b"HTTP/1.1 503"), refused
    assert b"too many connections from your address (limit 2)" in refused
    assert other == (200, b"/other")


async def test_a_head_trickled_byte_by_byte_is_cut_off_after_the_header_timeout(
    nursery, make_link, monkeypatch
) -> None:
    from meshhost.capabilities.providers import httpserver

    monkeypatch.setattr(httpserver, "KEEP_ALIVE_S", 0.5)
    _, _, port = await listening(nursery, make_link)

    def trickle() -> int:
        """Bytes of an endless head sent, one per 50 ms, before the server closed."""
        with connect_from(ATTACKER, port) as sock:
            sock.settimeout(0.05)
            for sent in range(400):  # 20 s: far past the timeout
                try:
                    if sock.recv(100) == b"":
                        return sent
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    return sent
                try:
                    sock.sendall(b"GET / HTTP/1.1\r\n" if sent == 0 else b"x")
                except OSError:
                    return sent
        return 400

    assert await trio.to_thread.run_sync(trickle) < 400
