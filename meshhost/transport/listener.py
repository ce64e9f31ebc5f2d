"""trio driver of the listening socket: who gets a connection, and strangers kept cheap.

An inbound connection from a source IP over its handshake rate
(``TransportConfig.handshake_rate_per_s`` after ``handshake_burst``) is
closed before a byte is read.  At the connection cap, the oldest connection
that has not proved the lattice PSK yet makes way (so strangers holding
silent connections cannot lock honest peers out).  Handshake message 1 is
read on the bare socket (``_admit``): one that verifies under none of our
PSKs, or whose ephemeral key was accepted in the last
``guard.REPLAY_WINDOW_S`` seconds (a replay), or that does not come before
the session's handshake deadline, is answered by closing the connection
without a word; only a peer that proves the PSK gets a :class:`Connection`
and its tasks.  Refusals are logged at most every ``REFUSED_LOG_INTERVAL_S``.
"""

from __future__ import annotations

import logging
import math
import resource
import socket as _socket
from collections import OrderedDict
from typing import Protocol

import trio

from meshhost.config import TransportConfig
from meshhost.errors import ErrorCode
from meshhost.transport.connection import RECV_BYTES, Address
from meshhost.transport.guard import HandshakeRateLimiter, ReplayCache
from meshhost.transport.session import CloseCause, Session, SessionEnded, State

__all__ = ["FD_RESERVE", "Listener", "connection_cap", "raise_open_file_limit"]

log = logging.getLogger("meshhost.transport")

REFUSED_LOG_INTERVAL_S = 10.0
"""Refused inbound handshakes are logged at most this often, with a count."""
FD_RESERVE = 256
"""Open files left for everything but sessions (stores, modules, dials, mDNS,
threads) when the open-file limit is below ``max_connections`` plus this."""


def connection_cap(max_connections: int) -> int:
    """``max_connections``, lowered to leave :data:`FD_RESERVE` of this process's
    open-file limit: past that limit ``accept`` fails (EMFILE) before the cap is
    reached, so silent connections could not be made to give way, and the host's
    other files would fail too."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - FD_RESERVE))


def raise_open_file_limit(wanted: int = 65536) -> int:
    """Raise this process's soft open-file limit towards ``wanted`` (at most the
    hard limit; many systems default to a soft 1024); return the soft limit now.
    For a process's entry point (``meshhost up``), not a library."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the limit we have; connection_cap stays within it
    return soft


class Pool(Protocol):
    """What the listener needs from the transport it admits connections to."""

    stats: dict[str, int]
    closing: bool

    @property
    def open_connections(self) -> int: ...

    def new_session(self, *, initiator: bool, psk: bytes | None = None) -> Session: ...

    def count_handshake_failure(self, code: ErrorCode) -> None: ...

    async def run_accepted(self, sock: _socket.socket, session: Session, remote: Address) -> None:
        """Run an admitted connection until it ends."""


class Listener:
    """Accepts connections for ``pool`` within the limits of ``config``."""

    def __init__(self, pool: Pool, config: TransportConfig) -> None:
        self._pool = pool
        self._config = config
        self.max_connections = config.max_connections
        self._limiter = HandshakeRateLimiter(config.handshake_rate_per_s, config.handshake_burst)
        self._replays = ReplayCache()
        self._refused_since_log = 0
        self._refused_log_at = -math.inf
        self._admitting: OrderedDict[int, trio.CancelScope] = OrderedDict()
        """Accepted connections that have not proved the PSK yet, oldest first."""
        self._admit_seq = 0

    def fresh_ephemeral(self, key: bytes) -> bool:
        """A responder session's replay check of message 1's ephemeral key."""
        return self._replays.check(key, trio.current_time())

    async def accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        """Accept forever, starting each admission in ``nursery``."""
        self.max_connections = connection_cap(self._config.max_connections)
        pool = self._pool
        stats = pool.stats
        lsock = listener.socket
        while True:
            try:
                tsock, addr = await lsock.accept()
            except OSError as exc:
                # EMFILE and friends: back off briefly instead of spinning.
                log.warning("accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            sock = _socket.socket(tsock.family, tsock.type, fileno=tsock.detach())
            sock.setblocking(False)
            if not self._limiter.allow(addr[0], trio.current_time()):
                # Before any session exists: a flood from one source costs an
                # accept and a close per connection, nothing more.
                stats["connections_refused_rate"] += 1
                sock.close()
                continue
            if (
                pool.open_connections + len(self._admitting) >= self.max_connections
                and self._admitting
                and not pool.closing
            ):
                # Full, but partly of connections that have proved nothing: the
                # oldest of those makes way.  Otherwise strangers from many
                # addresses (each within its rate) holding connections open
                # without a message 1 would lock every honest peer out for as
                # long as they keep it up; an honest message 1 follows the
                # connect within a round trip, so it is never the oldest.
                _, oldest = self._admitting.popitem(last=False)
                oldest.cancel()
                stats["connections_evicted_unproven"] += 1
            held = pool.open_connections + len(self._admitting)
            if held >= self.max_connections or pool.closing:
                stats["connections_refused_limit"] += 1
                log.warning(
                    "refused connection from %s: %d connections open (max_connections)",
                    addr,
                    held,
                )
                sock.close()
                continue
            stats["connections_accepted"] += 1
            self._admit_seq += 1
            scope = self._admitting[self._admit_seq] = trio.CancelScope()
            nursery.start_soon(self._admit, sock, (addr[0], addr[1]), self._admit_seq, scope)

    async def _admit(
        self, sock: _socket.socket, remote: Address, seq: int, scope: trio.CancelScope
    ) -> None:
        """Read handshake message 1 on a bare socket; only a peer that proves the
        PSK (and is not replaying) gets a connection, its tasks and message 2.

        A stranger costs this one task, the MAC check per accepted PSK and a
        reset: no session state beyond the handshake, no writer task, no log
        line of its own (``log_refused`` summarises).  ``scope`` is cancelled
        when the accept loop evicts this connection to make room (it then ends
        as a handshake timeout would).
        """
        pool = self._pool
        stats = pool.stats
        session = pool.new_session(initiator=False)
        admitted = False
        try:
            deadline = session.get_timer()
            assert deadline is not None
            with scope, trio.move_on_at(deadline):
                while session.state is State.WAIT_MSG1:
                    await trio.lowlevel.wait_readable(sock)
                    try:
                        data = sock.recv(RECV_BYTES)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        session.connection_lost()
                        break
                    stats["bytes_received"] += len(data)
                    session.receive_data(data, trio.current_time())
            if session.state is State.WAIT_MSG1:
                if scope.cancelled_caught:  # evicted to make room: counted as a timeout
                    stats["handshake_timeouts"] += 1
                    session.close(ErrorCode.UNAVAILABLE, "no handshake message 1 in time")
                else:  # the session's handshake deadline passed
                    session.handle_timer(trio.current_time())
            if session.is_closed:
                closed = session.next_event()
                assert isinstance(closed, SessionEnded)
                if closed.cause is CloseCause.HANDSHAKE_TIMEOUT:
                    stats["handshake_timeouts"] += 1
                stats["handshake_failures"] += 1
                pool.count_handshake_failure(closed.code)
                key = f"closed_{closed.code.name.lower()}"
                stats[key] = stats.get(key, 0) + 1
                if session.replayed:
                    stats["handshakes_replayed"] += 1
                self.log_refused(remote[0], closed.code, closed.message)
                return
            admitted = True
        finally:
            self._admitting.pop(seq, None)
            if not admitted:
                sock.close()
        await pool.run_accepted(sock, session, remote)

    def log_refused(self, source: str, code: ErrorCode, message: str) -> None:
        """An inbound handshake we refused (a stranger, a replay, a bad hello).

        Logged at most once per ``REFUSED_LOG_INTERVAL_S`` with a count: a
        flood of strangers must not cost a log line each (nor fill the disk).
        """
        self._refused_since_log += 1
        now = trio.current_time()
        if now < self._refused_log_at:
            return
        log.warning(
            "refused %d inbound handshake(s) in the last %.0f s; latest from %s: %s: %s",
            self._refused_since_log,
            REFUSED_LOG_INTERVAL_S,
            source,
            code.name.lower(),
            message,
        )
        self._refused_since_log = 0
        self._refused_log_at = now + REFUSED_LOG_INTERVAL_S
