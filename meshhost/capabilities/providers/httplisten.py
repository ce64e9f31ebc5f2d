"""One HTTP listener: hypercorn's connection handler behind our own accept loop.

``hypercorn.trio.serve`` builds its listening sockets and accepts every
connection itself, with no limit on how many it holds, and it writes each
response with ``send_all`` in a shielded cancel scope and no timeout, so a
client that never reads a large response holds its connection (and the
response in memory) for as long as it likes.  Neither can be bounded by
hypercorn's config (0.18: no connection limit, no write timeout), so this
module accepts connections itself and hands each one to hypercorn's
per-connection ``TCPServer``, which is what ``serve`` does inside:

- at most ``max_connections`` connections at a time, and at most
  ``max_per_source`` from one source address (so one client cannot take
  every slot); one more is answered with a fixed 503 and closed (within
  ``REFUSAL_TIMEOUT_S``), never parsed.  A client that resets such a
  connection ends only that connection;
- a connection's slot is freed as soon as the client closes or resets it:
  hypercorn on its own keeps a closed keep-alive connection (and its slot)
  until its keep-alive timer ends, so clients that open one connection per
  request (curl) ran out of slots at ~50 requests/s;
- a request head must be complete within ``config.keep_alive_timeout`` of
  the connection opening or of the previous response: hypercorn's idle
  timer runs until a whole head has arrived, so a client that trickles a
  head byte by byte is closed then (the header-read timeout);
- every write to a client goes through :class:`_StallGuard`: a client that
  takes none of the next ``SEND_CHUNK_BYTES`` of a response within
  ``stall_s`` seconds is disconnected;
- a connection that fails in any other way is logged and closed; it never
  ends the listener.

hypercorn's per-connection server is an internal of hypercorn; it is reached
only through :mod:`meshhost.capabilities.providers._hypercorn`.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from functools import partial

import trio
from hypercorn.config import Config as HypercornConfig

from meshhost.capabilities.providers._hypercorn import App, ConnectionServer

__all__ = ["SEND_CHUNK_BYTES", "serve_http"]

log = logging.getLogger(__name__)

BACKLOG = 128
"""Connections the kernel queues before we accept them."""
SEND_CHUNK_BYTES = 16 * 1024
"""A client must take this much of a response per stall timeout (at 30 s: ~0.5 KiB/s)."""
REFUSAL_TIMEOUT_S = 1.0
"""How long a connection over the limit is kept: to send it the 503 and read its request."""
REFUSAL_LOG_EVERY_S = 10.0
"""Refusals are logged at most this often (with a count): a flood must not flood the log."""


class _StallGuard(trio.abc.HalfCloseableStream):
    """A trio SocketStream whose ``send_all`` drops a client that stops reading.

    hypercorn reads ``socket`` (peer address) and tells TLS streams apart by
    ``do_handshake``, which this plain stream does not have.
    """

    def __init__(self, inner: trio.SocketStream, stall_s: float) -> None:
        self._inner = inner
        self._stall_s = stall_s
        self.socket = inner.socket
        self.gone = trio.Event()
        """Set once the client closed or reset the connection, or was dropped."""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), SEND_CHUNK_BYTES):
            with trio.move_on_after(self._stall_s) as scope:
                await self._inner.send_all(view[start : start + SEND_CHUNK_BYTES])
            if scope.cancelled_caught:
                log.info("httpserver: a client read nothing for %g s; closing it", self._stall_s)
                self.gone.set()
                await trio.aclose_forcefully(self._inner)
                raise trio.BrokenResourceError(f"the client read nothing for {self._stall_s:g} s")

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            data: bytes = await self._inner.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.gone.set()
            raise
        if not data:
            self.gone.set()
        return data

    async def aclose(self) -> None:
        await self._inner.aclose()


def _refusal(what: str, limit: int) -> bytes:
    body = f"too many connections {what} (limit {limit}); try again later\n".encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _bind(host: str, port: int) -> trio.socket.SocketType:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


async def _refuse(stream: trio.SocketStream, refusal: bytes) -> None:
    """Answer the fixed 503 and close, within REFUSAL_TIMEOUT_S, whatever the client does."""
    with trio.move_on_after(REFUSAL_TIMEOUT_S):
        try:
            await stream.send_all(refusal)
            await stream.send_eof()
            # Read what the client sent: closing with unread data would reset
            # the connection and could destroy the 503 before the client reads it.
            while await stream.receive_some(SEND_CHUNK_BYTES):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client reset or left: there is no one to answer
    await trio.aclose_forcefully(stream)


async def _close_when_gone(guard: _StallGuard, scope: trio.CancelScope) -> None:
    await guard.gone.wait()
    scope.cancel()


@dataclass(slots=True)
class ListenerStats:
    """What a listener's accept loop counts (read by the monitor)."""

    open_connections: int = 0
    """Connections being served now."""
    refused: int = 0
    """Connections refused with a 503 at a connection cap, since the provider started."""


async def serve_http(
    app: App,
    config: HypercornConfig,
    host: str,
    port: int,
    *,
    max_connections: int,
    max_per_source: int,
    stall_s: float,
    stop: trio.Event,
    stats: ListenerStats | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set; in-flight
    connections then get ``config.graceful_timeout`` seconds.

    Reports the bound ``(host, port)`` through ``task_status``; raises OSError
    (before that) when the address cannot be bound.  Afterwards it raises
    only if accepting itself fails (the caller restarts it); no connection's
    failure ends it.
    """
    sock = await _bind(host, port)
    listener = trio.SocketListener(sock)
    bound = sock.getsockname()
    where = f"{bound[0]}:{bound[1]}"
    server = ConnectionServer(app, config)
    refusals = {
        "total": _refusal("to this listener", max_connections),
        "source": _refusal("from your address", max_per_source),
    }
    open_connections = 0
    per_source: dict[str, int] = {}
    refused = 0
    refusal_logged_at = -REFUSAL_LOG_EVERY_S

    counts = stats if stats is not None else ListenerStats()

    def note_refusal(why: str) -> None:
        nonlocal refused, refusal_logged_at
        refused += 1
        counts.refused += 1
        now = trio.current_time()
        if now - refusal_logged_at >= REFUSAL_LOG_EVERY_S:
            log.warning(
                "httpserver: %s %s; refusing one (%d refused since the last note)",
                where,
                why,
                refused,
            )
            refused, refusal_logged_at = 0, now

    async def serve_one(stream: trio.SocketStream) -> None:
        nonlocal open_connections
        try:
            source = str(stream.socket.getpeername()[0])
        except OSError:  # reset before we got to it
            await trio.aclose_forcefully(stream)
            return
        if open_connections >= max_connections:
            note_refusal(f"has {open_connections} connections")
            await _refuse(stream, refusals["total"])
            return
        if per_source.get(source, 0) >= max_per_source:
            note_refusal(f"has {max_per_source} connections from {source}")
            await _refuse(stream, refusals["source"])
            return
        open_connections += 1
        counts.open_connections += 1
        per_source[source] = per_source.get(source, 0) + 1
        guard = _StallGuard(stream, stall_s)
        try:
            async with trio.open_nursery() as nursery:
                # hypercorn would hold a connection the client closed until
                # its keep-alive timer ends: end it (and free the slot) now.
                nursery.start_soon(_close_when_gone, guard, nursery.cancel_scope)
                await server.serve(guard)
                nursery.cancel_scope.cancel()
        finally:
            open_connections -= 1
            counts.open_connections -= 1
            per_source[source] -= 1
            if not per_source[source]:
                del per_source[source]
            await trio.aclose_forcefully(stream)

    async def connection(stream: trio.SocketStream) -> None:
        try:
            await serve_one(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.aclose_forcefully(stream)  # the client went away
        except Exception:  # a bug behind one connection must not end the listener
            log.exception("httpserver: a connection to %s failed", where)
            await trio.aclose_forcefully(stream)

    try:
        async with trio.open_nursery() as handlers:
            async with trio.open_nursery() as accepting:
                accepting.start_soon(
                    partial(trio.serve_listeners, connection, [listener], handler_nursery=handlers)
                )
                task_status.started((bound[0], bound[1]))
                await stop.wait()
                accepting.cancel_scope.cancel()
            await listener.aclose()  # the port is free for the next listener at once
            await server.close_idle()  # idle keep-alive connections close now
            handlers.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
    finally:
        sock.close()  # also when accepting failed: the restart binds the port again
