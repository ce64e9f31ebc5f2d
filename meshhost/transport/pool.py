"""trio driver: one Noise session per peer, dialing with backoff, and the request API.

Public API (used by rpc, membership push-pull, control and directory)::

    transport = Transport(identity, lattice, psk, config, handler, random_bytes=os.urandom)
    bound = await nursery.start(transport.serve, "127.0.0.1", 0)   # -> (host, port)
    reply = await transport.request(addr, channel, payload, timeout_s=2.0,
                                    expected_peer=None)
    transport.peer_id_of(addr); transport.stats; await transport.aclose()
    transport.set_psks(keyring.noise_psks())   # after every keyring change

The parts: ``listener.py`` accepts and admits inbound connections (rate
limits, the connection cap, strangers); ``connection.py`` drives one
connection (socket, session clock, handlers); ``session.py`` is the sans-IO
core with every protocol rule, timers included.  This module keeps the
pool: which session serves which peer, dialing, and requests.

Lattice secret rotation: a responder accepts any PSK of ``set_psks`` (it tries
each on handshake message 1); an initiator dials with the first and, when the
peer hangs up right after message 1 (it does not accept that PSK), redials
with the next.  Open sessions are never dropped by a rotation.

Keepalive and idleness are the session's (``Session.handle_timer``): a
session that has received nothing for ``keepalive_interval_s`` (default
``min(15 s, idle_timeout_s / 4)``) sends PING; one silent for
``KEEPALIVE_MISSES`` intervals is closed with ``unavailable`` (requests on it
fail with ``SessionEnded``), so a peer whose packets are dropped is found
out before the idle timeout.  Idleness counts only application traffic.

``handler(peer_id, channel, payload) -> bytes`` answers requests from peers;
``peer_id`` is the peer's verified ``N...`` host key.  A ``MeshError`` raised
by the handler reaches the caller as :class:`~meshhost.errors.RemoteError`
with the error's ``code``; any other exception is logged here and reaches the
caller as ``unavailable`` ("internal error") without a traceback.  The
handler runs under the caller's deadline (sent with the request) and is
cancelled when the caller cancels.

``request`` raises only ``MeshError`` subclasses:

* ``RemoteError`` - the peer's handler answered with an error code;
* ``RequestTimeout`` - no reply within ``timeout_s`` (the peer is told to stop);
* ``PeerUnavailable`` - no session could be set up (refused, handshake failed,
  in reconnect backoff past the deadline); ``__cause__`` has the detail;
* ``PeerMismatch`` - the host at ``addr`` is not ``expected_peer``;
* ``SessionEnded`` - the session died while the request was in flight;
* ``PayloadTooLarge`` / ``TransportClosed`` - our own misuse.

One session per peer pair: a session is found by the peer's host id, learned
from a dial to an address or from the listening port a peer announces in its
hello (so a peer that connected to us is reused for requests to it).  If both
hosts connect at the same moment, both keep the session the core's
``survivor`` picks (the one initiated by the host with the lower id, ties
broken by the lower handshake hash, which both sides share) and ``retire``
the other, which closes once it is idle; a request that the peer never
processed because it closed that duplicate is retried transparently.  A
100 B round trip costs about 1.35-1.6x a raw trio TCP echo
(``bench/transport.py``).

Counters in ``stats`` (all ints): connections_accepted, connections_dialed,
connections_refused_limit, connections_refused_rate,
connections_evicted_unproven, handshakes_replayed,
dial_failures, handshakes_completed, handshake_failures, handshake_timeouts,
sessions_open, duplicate_sessions_closed,
idle_closed, keepalive_pings, keepalive_timeouts, protocol_errors, requests_sent,
requests_received, request_timeouts, remote_errors, bytes_sent, bytes_received, and
``closed_<code>`` per close reason (e.g. ``closed_protocol``).
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket as _socket
from collections.abc import Callable, Sequence
from typing import Any

import trio

from meshhost.config import TransportConfig
from meshhost.errors import (
    ConnectFailed,
    ErrorCode,
    HandshakeRefused,
    LocalProtocolError,
    PayloadTooLarge,
    PeerMismatch,
    PeerUnavailable,
    RequestTimeout,
    SessionClosed,
    TransportClosed,
)
from meshhost.identity.nkeys import KeyPair, Prefix
from meshhost.transport.backoff import backoff_delay
from meshhost.transport.connection import Address, Connection, RequestHandler, Retry
from meshhost.transport.deadlines import Deadlines
from meshhost.transport.listener import Listener
from meshhost.transport.session import (
    MAX_PSKS,
    CloseCause,
    HandshakeComplete,
    LocalIdentity,
    Session,
    SessionEnded,
    survivor,
)

__all__ = ["RequestHandler", "Transport"]

log = logging.getLogger("meshhost.transport")

_COUNTERS = (
    "connections_accepted",
    "connections_dialed",
    "connections_refused_limit",
    "connections_refused_rate",
    "connections_evicted_unproven",
    "handshakes_replayed",
    "dial_failures",
    "handshakes_completed",
    "handshake_failures",
    "handshake_timeouts",
    "sessions_open",
    "duplicate_sessions_closed",
    "idle_closed",
    "keepalive_pings",
    "keepalive_timeouts",
    "protocol_errors",
    "requests_sent",
    "requests_received",
    "request_timeouts",
    "remote_errors",
    "bytes_sent",
    "bytes_received",
)
_CAUSE_COUNTERS = {
    CloseCause.HANDSHAKE_TIMEOUT: "handshake_timeouts",
    CloseCause.KEEPALIVE_TIMEOUT: "keepalive_timeouts",
    CloseCause.IDLE: "idle_closed",
    CloseCause.DUPLICATE: "duplicate_sessions_closed",
}


class _Dial:
    """A connection attempt that requests to the same address wait for."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None


class Transport:
    """Authenticated, encrypted request/response between hosts; see the module docstring.

    ``identity`` must be a host (``N...``) key pair; ``psk`` the 32-byte
    lattice PSK (``keyring.derive(secret, "noise-psk", lattice)``) or a list
    of them, primary first (``Keyring.noise_psks()``; see ``set_psks``);
    ``random_bytes`` supplies Noise static and ephemeral keys; ``rng`` the
    backoff jitter (seeded from ``random_bytes`` when omitted);
    ``keepalive_interval_s`` the silence after which a PING goes out.
    """

    def __init__(
        self,
        identity: KeyPair,
        lattice: str,
        psk: bytes | Sequence[bytes],
        config: TransportConfig,
        handler: RequestHandler,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        rng: random.Random | None = None,
        keepalive_interval_s: float | None = None,
    ) -> None:
        if identity.prefix != Prefix.SERVER:
            raise LocalProtocolError(
                f"the transport needs a host key (N...), got a {identity.prefix.name.lower()} key"
            )
        self.identity = identity
        self.host_id = identity.public_key
        self.lattice = lattice
        self.config = config
        if keepalive_interval_s is None:
            # Declare a silent peer dead well before the idle timeout would close it.
            keepalive_interval_s = min(config.keepalive_interval_s, config.idle_timeout_s / 4)
        if not math.isfinite(keepalive_interval_s) or keepalive_interval_s <= 0:
            raise LocalProtocolError(
                f"keepalive_interval_s must be a positive number, got {keepalive_interval_s}"
            )
        self.keepalive_interval_s = keepalive_interval_s
        self._psks: list[bytes] = []
        self.set_psks([psk] if isinstance(psk, bytes | bytearray) else psk)
        self.handler = handler
        self._random_bytes = random_bytes
        self._rng = rng or random.Random(int.from_bytes(random_bytes(8), "big"))
        self._local = LocalIdentity.create(identity, random_bytes)
        self.stats: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._conns: set[Connection] = set()
        self._by_peer: dict[str, list[Connection]] = {}
        self._addr_peer: dict[Address, str] = {}
        self._dialed: set[Address] = set()
        self._dials: dict[Address, _Dial] = {}
        self._failures: dict[Address, tuple[int, float]] = {}
        self._nursery: trio.Nursery | None = None
        self._listen_port = 0
        self.closing = False
        self._stopped = trio.Event()
        self.deadlines = Deadlines()
        self._listener = Listener(self, config)

    # -- service -------------------------------------------------------------

    async def serve(
        self,
        host: str,
        port: int,
        *,
        listener: trio.SocketListener | None = None,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` and run every session until ``aclose``.

        Start with ``await nursery.start(transport.serve, host, port)``, which
        returns the bound ``(host, port)`` (useful with port 0).  ``listener``:
        one bound already (a host binds its UDP and TCP ports together before
        it builds its parts); it is closed with the transport.
        """
        if self._nursery is not None or self.closing:
            if listener is not None:
                await listener.aclose()
            raise LocalProtocolError("serve() runs once per Transport")
        if listener is None:
            listeners = await trio.open_tcp_listeners(port, host=host)
            listener = listeners[0]
            for extra in listeners[1:]:
                await extra.aclose()
        bound = listener.socket.getsockname()
        self._listen_port = bound[1]
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._listener.accept_loop, listener, nursery)
                nursery.start_soon(self.deadlines.run)
                task_status.started((bound[0], bound[1]))
        finally:
            self.closing = True
            self._stopped.set()
            with trio.CancelScope(shield=True):
                await listener.aclose()

    async def aclose(self) -> None:
        """Close every session (CLOSE ``shutting_down``) and stop serving."""
        self.closing = True
        for conn in list(self._conns):
            conn.session.close(ErrorCode.SHUTTING_DOWN, "host is shutting down")
            conn.flush()
            conn.process_events()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
            await self._stopped.wait()

    def peer_id_of(self, addr: Address) -> str | None:
        """The verified host id last seen at ``addr``, or None."""
        return self._addr_peer.get((addr[0], int(addr[1])))

    @property
    def open_connections(self) -> int:
        """Connections past admission (handshaking, open or closing)."""
        return len(self._conns)

    def count_handshake_failure(self, code: ErrorCode) -> None:
        key = f"handshake_failed_{code.name.lower()}"
        self.stats[key] = self.stats.get(key, 0) + 1

    def _count_close(self, code: ErrorCode) -> None:
        key = f"closed_{code.name.lower()}"
        self.stats[key] = self.stats.get(key, 0) + 1

    def set_psks(self, psks: Sequence[bytes]) -> None:
        """Use ``psks[0]`` to dial from now on and accept any of ``psks``.

        One PSK per lattice secret of the keyring, primary first
        (``Keyring.noise_psks()``).  Applies to handshakes that start later;
        open sessions keep their keys, so a rotation drops no session.
        Raises LocalProtocolError for an empty list, a key that is not 32
        bytes or more than ``MAX_PSKS``.
        """
        if isinstance(psks, bytes | bytearray):
            psks = [psks]  # one PSK given as such
        keys: list[bytes] = []
        for psk in psks:
            if len(psk) != 32:
                raise LocalProtocolError(f"the lattice PSK must be 32 bytes, got {len(psk)}")
            if bytes(psk) not in keys:
                keys.append(bytes(psk))
        if not keys:
            raise LocalProtocolError("the transport needs at least one lattice PSK")
        if len(keys) > MAX_PSKS:
            raise LocalProtocolError(
                f"at most {MAX_PSKS} lattice PSKs may be accepted at once, got {len(keys)}"
            )
        self._psks = keys

    @property
    def psks(self) -> tuple[bytes, ...]:
        """The PSKs accepted now, the one used to dial first."""
        return tuple(self._psks)

    def new_session(self, *, initiator: bool, psk: bytes | None = None) -> Session:
        """A session core for a connection made (or accepted) now."""
        psks = self._psks
        return Session(
            initiator=initiator,
            identity=self._local,
            lattice=self.lattice,
            psk=psk if psk is not None else psks[0],
            config=self.config,
            random_bytes=self._random_bytes,
            listen_port=self._listen_port,
            accepted_psks=() if initiator else psks[1:],
            fresh_ephemeral=None if initiator else self._listener.fresh_ephemeral,
            now=trio.current_time(),
            keepalive_interval_s=self.keepalive_interval_s,
        )

    # -- connections ---------------------------------------------------------

    async def run_accepted(self, sock: _socket.socket, session: Session, remote: Address) -> None:
        """Run a connection the listener admitted (its session is past message 1)."""
        conn = Connection(self, sock, session, remote, None)
        self._conns.add(conn)
        await conn.run()

    def connection_ended(self, conn: Connection) -> None:
        conn.dead = True
        if conn in self._conns:
            self._conns.discard(conn)
            # Keep what the session counted; the monitor adds the open sessions' own.
            for name in ("rekeys", "streams_sent", "streams_received"):
                key = f"ended_sessions_{name}"
                self.stats[key] = self.stats.get(key, 0) + getattr(conn.session, name, 0)
        if conn.peer_id is not None:
            peers = self._by_peer.get(conn.peer_id, [])
            if conn in peers:
                peers.remove(conn)
                self.stats["sessions_open"] -= 1
            if not peers:
                self._by_peer.pop(conn.peer_id, None)
        if not conn.session.is_closed:
            conn.session.connection_lost()
            conn.process_events()
        conn.fail_waiters(SessionClosed("connection closed", ErrorCode.UNAVAILABLE))

    def session_opened(self, conn: Connection, event: HandshakeComplete) -> None:
        peer = event.peer_id
        self.stats["handshakes_completed"] += 1
        if peer == self.host_id:
            conn.session.close(ErrorCode.INVALID, "connected to ourselves")
            conn.update()
            return
        if conn.dialed is not None:
            self._addr_peer[conn.dialed] = peer
            self._dialed.add(conn.dialed)
            self._failures.pop(conn.dialed, None)
        advertised = (conn.remote[0], event.peer_port)
        if event.peer_port and advertised not in self._dialed:
            # A port announced in a hello is a hint; what we dialed ourselves and
            # saw proven wins, so a peer cannot redirect another host's address.
            self._addr_peer[advertised] = peer
        peers = self._by_peer.setdefault(peer, [])
        peers.append(conn)
        self.stats["sessions_open"] += 1
        conn.opened.set()
        live = [c for c in peers if c.session.is_open and not c.dead]
        if len(live) > 1:
            keep = survivor(c.session for c in live)
            for other in live:
                if other.session is not keep:
                    other.session.retire()  # closes now if idle, else once it is
                    other.update()

    def session_closed(self, conn: Connection, event: SessionEnded) -> None:
        code = event.code
        self._count_close(code)
        counter = _CAUSE_COUNTERS.get(event.cause)
        if counter is not None:
            self.stats[counter] += 1
        who = conn.peer_id or f"{conn.remote[0]}:{conn.remote[1]}"
        if not conn.opened.is_set():
            self.stats["handshake_failures"] += 1
            self.count_handshake_failure(code)
            if conn.dialed is not None:
                self._note_failure(conn.dialed)
        if not conn.opened.is_set() and conn.dialed is None and not event.by_peer:
            self._listener.log_refused(conn.remote[0], code, event.message)
        elif not event.by_peer and code not in (ErrorCode.OK, ErrorCode.SHUTTING_DOWN):
            if code in (ErrorCode.PROTOCOL, ErrorCode.UNSUPPORTED, ErrorCode.TOO_LARGE):
                self.stats["protocol_errors"] += 1
            log.warning("closed session with %s: %s: %s", who, code.name.lower(), event.message)
        else:
            log.info(
                "session with %s closed%s: %s %s",
                who,
                " by peer" if event.by_peer else "",
                code.name.lower(),
                event.message,
            )
        if code == ErrorCode.OK:
            # Idle or duplicate closes happen only with nothing in flight: whoever
            # waits on this session never reached the peer and may simply retry.
            error: BaseException = Retry()
        elif not conn.opened.is_set():
            cause = event.error or PeerUnavailable(event.message)
            if isinstance(cause, PeerMismatch):
                error = cause
            else:  # keep "refused our handshake" apart: a host that cannot join says so
                kind = HandshakeRefused if isinstance(cause, HandshakeRefused) else PeerUnavailable
                error = kind(f"no session with {who}: {cause}")
                error.__cause__ = cause
        else:
            # Whatever went wrong inside the session, a caller sees the session end.
            by = "peer" if event.by_peer else "us"
            error = SessionClosed(
                f"session with {who} closed by {by}: {code.name.lower()}: {event.message}", code
            )
            error.__cause__ = event.error
        conn.error = error
        conn.fail_waiters(error)
        conn.opened.set()

    # -- making requests -----------------------------------------------------

    async def request(
        self,
        addr: Address,
        channel: int,
        payload: bytes,
        *,
        timeout_s: float,
        expected_peer: str | None = None,
    ) -> bytes:
        """Send ``payload`` on ``channel`` to the host at ``addr``; return its reply.

        Sets up (or reuses) the one session with that host.  Bodies of any
        size up to ``config.max_payload_bytes`` are streamed.  Raises the
        errors listed in the module docstring; cancelling the calling task
        cancels the request at the peer too.
        """
        if self.closing:
            raise TransportClosed("the transport is closed")
        if self._nursery is None:
            raise LocalProtocolError("start Transport.serve() before making requests")
        if len(payload) > self.config.max_payload_bytes:
            raise PayloadTooLarge(
                f"request body of {len(payload)} bytes is over max_payload_bytes="
                f"{self.config.max_payload_bytes}"
            )
        if not math.isfinite(timeout_s) or timeout_s <= 0:
            raise LocalProtocolError(f"timeout_s must be a positive number, got {timeout_s}")
        addr = (addr[0], int(addr[1]))
        now = trio.current_time()
        deadline = now + timeout_s
        while now < deadline:
            conn = self._usable_session(addr, expected_peer)
            if conn is None or (conn.leftover is not None and conn.is_full):
                # Slow path (dial, or backpressure): bounded by a cancel scope.
                with trio.move_on_at(deadline):
                    if conn is None:
                        conn = await self._session_for(addr, expected_peer, deadline)
                    await conn.wait_for_room()
                now = trio.current_time()
                if now >= deadline:
                    break
                assert conn is not None
            try:
                return await conn.request(channel, payload, deadline - now, timeout_s)
            except Retry:
                now = trio.current_time()
        self.stats["request_timeouts"] += 1
        raise RequestTimeout(
            f"no reply from {addr[0]}:{addr[1]} (channel {channel}) within {timeout_s} s"
        )

    def _usable_session(self, addr: Address, expected_peer: str | None) -> Connection | None:
        peer = self._addr_peer.get(addr)
        if peer is None:
            return None
        for conn in self._by_peer.get(peer, ()):
            if conn.usable:
                if expected_peer is not None and peer != expected_peer:
                    raise PeerMismatch(
                        f"the host at {addr[0]}:{addr[1]} is {peer}, not {expected_peer}"
                    )
                return conn
        return None

    async def _session_for(
        self, addr: Address, expected_peer: str | None, deadline: float
    ) -> Connection:
        while True:
            if self.closing:
                raise TransportClosed("the transport is closed")
            conn = self._usable_session(addr, expected_peer)
            if conn is not None:
                return conn
            dial = self._dials.get(addr) or self._start_dial(addr, deadline)
            await dial.done.wait()
            if dial.error is not None and not isinstance(dial.error, Retry):
                raise dial.error
            # Success (or a duplicate the peer closed): find the session by peer id.

    # -- dialing -------------------------------------------------------------

    def _start_dial(self, addr: Address, deadline: float) -> _Dial:
        failures, not_before = self._failures.get(addr, (0, 0.0))
        if not_before > deadline:
            raise PeerUnavailable(
                f"{addr[0]}:{addr[1]} failed {failures} time(s) in a row; next attempt in "
                f"{not_before - trio.current_time():.2f} s, after this request's deadline"
            )
        dial = _Dial()
        self._dials[addr] = dial
        assert self._nursery is not None
        self._nursery.start_soon(self._dial, addr, not_before, dial)
        return dial

    def _note_failure(self, addr: Address) -> None:
        failures = self._failures.get(addr, (0, 0.0))[0] + 1
        delay = backoff_delay(
            failures, self.config.backoff_initial_s, self.config.backoff_max_s, self._rng
        )
        self._failures[addr] = (failures, trio.current_time() + delay)

    async def _dial(self, addr: Address, not_before: float, dial: _Dial) -> None:
        """Connect and hand the connection its own task; settle ``dial`` once the
        handshake finished or failed."""
        try:
            await trio.sleep_until(not_before)
            # During a rotation the peer may not accept our primary PSK yet (or
            # any more): it hangs up after message 1, and we try the next one.
            psks = list(self._psks)
            for attempt, psk in enumerate(psks):
                self.stats["connections_dialed"] += 1
                try:
                    with trio.fail_after(self.config.connect_timeout_s):
                        sock, remote = await self._connect(addr)
                except (OSError, trio.TooSlowError) as exc:
                    self.stats["dial_failures"] += 1
                    self._note_failure(addr)
                    if isinstance(exc, trio.TooSlowError):
                        reason = "timed out"
                    else:  # "connection refused", not "Error connecting to (...): ..."
                        text = os.strerror(exc.errno) if exc.errno else exc.strerror
                        reason = (text or str(exc)).lower()
                    log.info("cannot connect to %s:%d: %s", addr[0], addr[1], reason)
                    dial.error = ConnectFailed(
                        f"cannot connect to {addr[0]}:{addr[1]}: {reason}", reason
                    )
                    return
                session = self.new_session(initiator=True, psk=psk)
                conn = Connection(self, sock, session, remote, addr)
                self._conns.add(conn)
                assert self._nursery is not None
                self._nursery.start_soon(conn.run)
                await conn.opened.wait()
                if conn.usable:
                    dial.error = None
                    return
                dial.error = conn.error or PeerUnavailable(
                    f"no session with {addr[0]}:{addr[1]}: connection closed"
                )
                if not session.psk_refused or attempt + 1 == len(psks):
                    return
                log.info(
                    "%s:%d refused lattice PSK #%d; trying the next secret of the keyring",
                    addr[0],
                    addr[1],
                    attempt + 1,
                )
        finally:
            if self._dials.get(addr) is dial:
                del self._dials[addr]
            dial.done.set()

    async def _connect(self, addr: Address) -> tuple[_socket.socket, Address]:
        infos = await trio.socket.getaddrinfo(addr[0], addr[1], type=_socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"cannot resolve {addr[0]}")
        family, type_, proto, _, sockaddr = infos[0]
        sock = _socket.socket(family, type_, proto)
        sock.setblocking(False)
        try:
            await trio.socket.from_stdlib_socket(sock).connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        return sock, (str(sockaddr[0]), int(sockaddr[1]))
