"""trio driver: TCP listener, connection pool and request API over Noise sessions.

Public API (used by rpc, membership push-pull, control and directory)::

    transport = Transport(identity, lattice, psk, config, handler, random_bytes=os.urandom)
    bound = await nursery.start(transport.serve, "127.0.0.1", 0)   # -> (host, port)
    reply = await transport.request(addr, channel, payload, timeout_s=2.0,
                                    expected_peer=None)
    transport.peer_id_of(addr); transport.stats; await transport.aclose()
    transport.set_psks(keyring.noise_psks())   # after every keyring change

Lattice secret rotation: a responder accepts any PSK of ``set_psks`` (it tries
each on handshake message 1); an initiator dials with the first and, when the
peer hangs up right after message 1 (it does not accept that PSK), redials
with the next.  Open sessions are never dropped by a rotation.

Strangers: an inbound connection from a source IP over its handshake rate
(``TransportConfig.handshake_rate_per_s`` after ``handshake_burst``) is closed
before a byte is read; a message 1 that verifies under none of our PSKs, or
whose ephemeral key was accepted in the last ``guard.REPLAY_WINDOW_S``
seconds (a replay), is answered by closing the connection without a word.

Keepalive: a session that has received nothing for ``keepalive_interval_s``
(default ``min(15 s, idle_timeout_s / 4)``) sends PING; one silent for
``KEEPALIVE_MISSES`` intervals is closed with ``unavailable`` (requests on it
fail with ``SessionClosed``), so a peer whose packets are dropped is found
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
* ``SessionClosed`` - the session died while the request was in flight;
* ``PayloadTooLarge`` / ``TransportClosed`` - our own misuse.

One session per peer pair: a session is found by the peer's host id, learned
from a dial to an address or from the listening port a peer announces in its
hello (so a peer that connected to us is reused for requests to it).  If both
hosts connect at the same moment, both keep the session initiated by the host
with the lower id (ties broken by the lower handshake hash, which both sides
share) and close the other once it is idle; a request that the peer never
processed because it closed that duplicate is retried transparently.

Writes: after any change the session's output is sent at once with a
non-blocking ``send`` from the task that caused it (no task switch on the hot
path); whatever the kernel does not take is handed to the connection's writer
task, and writers of new frames wait while ``send_buffer_frames`` frames are
queued (backpressure).  Reads: one task at a time holds a connection's
reading role and feeds the session; it reads without a checkpoint while data
keeps coming and parks right after a short read.  Handlers run in that task
(``_serve_inbox``): one that answers without awaiting costs no task switch;
one that awaits keeps the task (trio ties a suspended coroutine to it),
whose timer cancel scope becomes the handler's (deadline, CANCEL), while a
parked or new task takes over reading, so a slow handler never stalls the
session.  Request deadlines are fired by one task per transport from a heap
(``deadlines.py``) instead of a cancel scope per request.  A 100 B round trip
costs about 1.35-1.6x a raw trio TCP echo (``bench/transport.py``).

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
import resource
import socket as _socket
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from types import CoroutineType
from typing import Any

import outcome
import trio

from meshhost.config import TransportConfig
from meshhost.errors import (
    ConnectFailed,
    ErrorCode,
    HandshakeRefused,
    LocalProtocolError,
    MeshError,
    PayloadTooLarge,
    PeerMismatch,
    PeerUnavailable,
    RemoteError,
    RequestTimeout,
    SessionClosed,
    TransportClosed,
)
from meshhost.identity.nkeys import KeyPair, Prefix
from meshhost.transport.backoff import backoff_delay
from meshhost.transport.deadlines import Deadlines
from meshhost.transport.guard import HandshakeRateLimiter, ReplayCache
from meshhost.transport.session import (
    MAX_PSKS,
    HandshakeComplete,
    LocalIdentity,
    RequestCancelled,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Session,
    SessionEnded,
    State,
)

__all__ = ["RequestHandler", "Transport"]

log = logging.getLogger("meshhost.transport")

RequestHandler = Callable[[str, int, bytes], Awaitable[bytes]]
Address = tuple[str, int]

RECV_BYTES = 256 << 10
"""Bytes asked of the kernel per read: several full records per wake-up."""
YIELD_BYTES = 1 << 20
"""A reader that keeps finding data yields to other tasks after this many bytes."""
KEEPALIVE_MISSES = 3
"""Nothing received for this many intervals (two PINGs unanswered) ends the
session with ``unavailable``: one lost PING on a busy peer is not death."""
REFUSED_LOG_INTERVAL_S = 10.0
"""Refused inbound handshakes are logged at most this often, with a count."""
MAX_IDLE_WORKERS = 8
"""Worker and reader tasks kept parked per connection (each kind) for reuse:
spawning a trio task costs more than waking a parked one."""
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


class _Retry(Exception):
    """Internal: the peer closed a duplicate session before seeing our request."""


class _Waiter:
    """A caller parked until its reply arrives (trio low-level park/reschedule)."""

    __slots__ = ("result", "task")

    def __init__(self) -> None:
        self.task: Any = None
        self.result: outcome.Outcome[bytes] | None = None

    def fire(self, result: outcome.Outcome[bytes]) -> None:
        if self.result is not None:
            return
        self.result = result
        if self.task is not None:
            trio.lowlevel.reschedule(self.task, result)

    async def wait(self) -> bytes:
        if self.result is not None:
            return self.result.unwrap()
        self.task = trio.lowlevel.current_task()

        def abort(_: Any) -> trio.lowlevel.Abort:
            self.task = None
            return trio.lowlevel.Abort.SUCCEEDED

        value: bytes = await trio.lowlevel.wait_task_rescheduled(abort)
        return value


class _Resume:
    """Await the rest of a coroutine whose first step already ran in this task.

    ``trap`` is what the coroutine yielded to trio on that step; it is passed
    on unchanged, so trio cannot tell this from ``await coro`` (the same task
    runs every step, which is what trio's traps and cancel scopes require).
    """

    __slots__ = ("coro", "trap")

    def __init__(self, coro: Coroutine[Any, Any, bytes], trap: Any) -> None:
        self.coro = coro
        self.trap = trap

    def __await__(self) -> Generator[Any, Any, bytes]:
        coro, trap = self.coro, self.trap
        while True:
            try:
                sent = yield trap
            except BaseException as exc:  # delivered into the handler, which decides
                try:
                    trap = coro.throw(exc)
                except StopIteration as stop:
                    value: bytes = stop.value
                    return value
            else:
                try:
                    trap = coro.send(sent)
                except StopIteration as stop:
                    value = stop.value
                    return value


async def _as_coroutine(awaitable: Awaitable[bytes]) -> bytes:
    return await awaitable


class _Dial:
    """A connection attempt that requests to the same address wait for."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None


class _Connection:
    """One TCP connection, its session and the tasks around it."""

    def __init__(
        self,
        transport: Transport,
        sock: _socket.socket,
        session: Session,
        remote: Address,
        dialed: Address | None,
    ) -> None:
        self.transport = transport
        self.sock = sock
        self.stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        self.session = session
        self.remote = remote
        self.dialed = dialed
        self.peer_id: str | None = None
        self.opened = trio.Event()
        self.waiters: dict[int, _Waiter] = {}
        self.handlers: dict[int, trio.CancelScope] = {}
        self.idle_workers: list[Any] = []
        self.inbox: deque[RequestReceived] = deque()
        """Requests decoded but not yet started; whoever reads runs them."""
        self.idle_readers: list[Any] = []
        self.finished = trio.Event()
        """Set by the reader that saw the connection end."""
        self.handshake_deadline = 0.0
        self.draining = False
        self.dead = False
        self.leftover: bytes | bytearray | memoryview | None = None
        self.write_wakeup = trio.Event()
        self.drained = trio.Event()
        self.nursery: trio.Nursery | None = None
        self.last_rx = 0.0
        """When bytes last arrived (liveness; PONGs count)."""
        self.last_ping = -math.inf
        self.active_at = 0.0
        """When application traffic was last noticed (idleness; PINGs do not count)."""
        self.activity_seen = 0
        self.error: BaseException | None = None
        """Why the session ended before opening (raised to requests waiting for it)."""

    @property
    def usable(self) -> bool:
        return self.session.is_open and not self.draining and not self.dead

    def flush(self) -> None:
        """Send the session's output now, as far as the kernel takes it."""
        if self.leftover is not None or self.dead:
            return  # the writer task owns the socket until its backlog is gone
        session = self.session
        stats = self.transport.stats
        while True:
            data = session.data_to_send()
            if not data:
                return
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.dead = True
                return
            stats["bytes_sent"] += sent
            if sent < len(data):
                self.leftover = memoryview(data)[sent:]
                self.drained = trio.Event()
                self.write_wakeup.set()
                return

    async def writer(self) -> None:
        stats = self.transport.stats
        while True:
            await self.write_wakeup.wait()
            self.write_wakeup = trio.Event()
            try:
                while self.leftover is not None:
                    await self.stream.send_all(self.leftover)
                    stats["bytes_sent"] += len(self.leftover)
                    data = self.session.data_to_send()
                    self.leftover = data if data else None
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.dead = True
                self.leftover = None
                self.drained.set()
                return
            self.drained.set()
            if self.session.is_closed:
                return

    @property
    def is_full(self) -> bool:
        return self.session.queued_frames >= self.transport.config.send_buffer_frames

    async def wait_for_room(self) -> None:
        """Backpressure: wait while the writer is behind and too much is queued."""
        while self.leftover is not None and self.is_full and not self.dead:
            await self.drained.wait()


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
            # TCP's own keepalive waits two hours by default, and a peer whose packets
            # are dropped (firewall, dead host, cut cable) never sends a RST or FIN.
            keepalive_interval_s = min(config.keepalive_interval_s, config.idle_timeout_s / 4)
        if not math.isfinite(keepalive_interval_s) or keepalive_interval_s <= 0:
            raise LocalProtocolError(
                f"keepalive_interval_s must be a positive number, got {keepalive_interval_s}"
            )
        self.keepalive_interval_s = keepalive_interval_s
        self._psks: list[bytes] = []
        self.set_psks([psk] if isinstance(psk, bytes | bytearray) else psk)
        self._handler = handler
        self._random_bytes = random_bytes
        self._rng = rng or random.Random(int.from_bytes(random_bytes(8), "big"))
        self._local = LocalIdentity.create(identity, random_bytes)
        self.stats: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._conns: set[_Connection] = set()
        self._by_peer: dict[str, list[_Connection]] = {}
        self._addr_peer: dict[Address, str] = {}
        self._dialed: set[Address] = set()
        self._dials: dict[Address, _Dial] = {}
        self._failures: dict[Address, tuple[int, float]] = {}
        self._nursery: trio.Nursery | None = None
        self._listen_port = 0
        self._closing = False
        self._stopped = trio.Event()
        self._deadlines = Deadlines()
        self._limiter = HandshakeRateLimiter(config.handshake_rate_per_s, config.handshake_burst)
        self._replays = ReplayCache()
        self._refused_since_log = 0
        self._refused_log_at = -math.inf
        self._admitting: OrderedDict[int, trio.CancelScope] = OrderedDict()
        """Accepted connections that have not proved the PSK yet, oldest first."""
        self._admit_seq = 0
        self._max_connections = config.max_connections

    # -- service -------------------------------------------------------------

    async def serve(
        self, host: str, port: int, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on ``host:port`` and run every session until ``aclose``.

        Start with ``await nursery.start(transport.serve, host, port)``, which
        returns the bound ``(host, port)`` (useful with port 0).
        """
        if self._nursery is not None or self._closing:
            raise LocalProtocolError("serve() runs once per Transport")
        listeners = await trio.open_tcp_listeners(port, host=host)
        listener = listeners[0]
        for extra in listeners[1:]:
            await extra.aclose()
        bound = listener.socket.getsockname()
        self._listen_port = bound[1]
        self._max_connections = connection_cap(self.config.max_connections)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._accept_loop, listener)
                nursery.start_soon(self._deadlines.run)
                task_status.started((bound[0], bound[1]))
        finally:
            self._closing = True
            self._stopped.set()
            with trio.CancelScope(shield=True):
                await listener.aclose()

    async def aclose(self) -> None:
        """Close every session (CLOSE ``shutting_down``) and stop serving."""
        self._closing = True
        for conn in list(self._conns):
            conn.session.close(ErrorCode.SHUTTING_DOWN, "host is shutting down")
            conn.flush()
            self._process_events(conn)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
            await self._stopped.wait()

    def peer_id_of(self, addr: Address) -> str | None:
        """The verified host id last seen at ``addr``, or None."""
        return self._addr_peer.get((addr[0], int(addr[1])))

    def _count_handshake_failure(self, code: ErrorCode) -> None:
        key = f"handshake_failed_{code.name.lower()}"
        self.stats[key] = self.stats.get(key, 0) + 1

    def _count_close(self, code: ErrorCode) -> None:
        key = f"closed_{code.name.lower()}"
        self.stats[key] = self.stats.get(key, 0) + 1

    # -- accepting -----------------------------------------------------------

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
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
                self.stats["connections_refused_rate"] += 1
                sock.close()
                continue
            if (
                len(self._conns) + len(self._admitting) >= self._max_connections
                and self._admitting
                and not self._closing
            ):
                # Full, but partly of connections that have proved nothing: the
                # oldest of those makes way.  Otherwise strangers from many
                # addresses (each within its rate) holding connections open
                # without a message 1 would lock every honest peer out for as
                # long as they keep it up; an honest message 1 follows the
                # connect within a round trip, so it is never the oldest.
                _, oldest = self._admitting.popitem(last=False)
                oldest.cancel()
                self.stats["connections_evicted_unproven"] += 1
            if len(self._conns) + len(self._admitting) >= self._max_connections or self._closing:
                self.stats["connections_refused_limit"] += 1
                log.warning(
                    "refused connection from %s: %d connections open (max_connections)",
                    addr,
                    len(self._conns) + len(self._admitting),
                )
                sock.close()
                continue
            self.stats["connections_accepted"] += 1
            self._admit_seq += 1
            scope = self._admitting[self._admit_seq] = trio.CancelScope()
            assert self._nursery is not None
            self._nursery.start_soon(self._admit, sock, (addr[0], addr[1]), self._admit_seq, scope)

    async def _admit(
        self, sock: _socket.socket, remote: Address, seq: int, scope: trio.CancelScope
    ) -> None:
        """Read handshake message 1 on a bare socket; only a peer that proves the
        PSK (and is not replaying) gets a connection, its tasks and message 2.

        A stranger costs this one task, the MAC check per accepted PSK and a
        reset: no session state beyond the handshake, no writer task, no log
        line of its own (``_log_refused`` summarises).  ``scope`` is cancelled
        when the accept loop evicts this connection to make room (it then ends
        as a handshake timeout would).
        """
        session = self._new_session(initiator=False)
        deadline = trio.current_time() + self.config.handshake_timeout_s
        admitted = False
        try:
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
                    self.stats["bytes_received"] += len(data)
                    session.receive_data(data)
            if session.state is State.WAIT_MSG1:
                self.stats["handshake_timeouts"] += 1
                session.close(ErrorCode.UNAVAILABLE, "no handshake message 1 in time")
            if session.is_closed:
                closed = session.next_event()
                assert isinstance(closed, SessionEnded)
                self.stats["handshake_failures"] += 1
                self._count_handshake_failure(closed.code)
                self._count_close(closed.code)
                if session.replayed:
                    self.stats["handshakes_replayed"] += 1
                self._log_refused(remote[0], closed.code, closed.message)
                return
            admitted = True
        finally:
            self._admitting.pop(seq, None)
            if not admitted:
                sock.close()
        conn = _Connection(self, sock, session, remote, None)
        conn.handshake_deadline = deadline
        self._conns.add(conn)
        await self._run_connection(conn)

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

    def _new_session(self, *, initiator: bool, psk: bytes | None = None) -> Session:
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
            fresh_ephemeral=None if initiator else self._fresh_ephemeral,
        )

    def _fresh_ephemeral(self, key: bytes) -> bool:
        return self._replays.check(key, trio.current_time())

    # -- one connection ------------------------------------------------------

    async def _run_connection(self, conn: _Connection) -> None:
        session = conn.session
        try:
            async with trio.open_nursery() as nursery:
                conn.nursery = nursery
                nursery.start_soon(conn.writer)
                if session.initiator:
                    session.start()
                now = trio.current_time()
                conn.flush()  # message 1, or an admitted responder's message 2
                if not conn.handshake_deadline:  # set by _admit for a responder
                    conn.handshake_deadline = now + self.config.handshake_timeout_s
                conn.last_rx = conn.active_at = now
                await self._read(conn)
                # If a handler blocked in this task, another task took over
                # reading; it sets ``finished`` when the connection ends.
                await conn.finished.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._forget(conn)
            if not conn.opened.is_set():
                conn.opened.set()
            with trio.CancelScope(shield=True):
                await conn.stream.aclose()

    async def _read(self, conn: _Connection) -> None:
        """Hold the connection's reading role: read, feed the session, run timers
        and requests.  Returns when the connection ended (``finished`` is set)
        or when a request handler this task started blocked: then another task
        reads and this one returns once that handler answered.

        Requests are run right here (``_serve_inbox``): a handler that answers
        without awaiting costs no task switch, and one that awaits keeps this
        task while a parked (or new) task takes over reading, so a slow
        handler never holds up the connection.
        """
        session = conn.session
        cfg = self.config
        sock = conn.sock
        wait_readable = trio.lowlevel.wait_readable
        eof = False
        while not session.is_closed and not conn.dead and not eof:
            # One cancel scope per timer period, not per read: the hot path
            # only notes the time of each read.
            if conn.opened.is_set():
                wake_at = self._next_timer(conn)
            else:
                wake_at = conn.handshake_deadline
            serving: RequestReceived | None = None
            with trio.move_on_at(wake_at) as scope:
                unyielded = 0
                drained = False
                while True:
                    if conn.inbox:
                        blocked = self._serve_inbox(conn, scope)
                        conn.flush()
                        if blocked is not None:
                            serving = blocked[0]
                            await self._finish_handler(conn, *blocked)
                            break
                        if conn.draining and session.outstanding == 0 and not conn.handlers:
                            self._close_duplicate(conn)
                        if session.is_closed or conn.dead:
                            break
                    # Read without a checkpoint while data keeps coming; after
                    # a short read the kernel is most likely empty, so park
                    # at once instead of paying for a recv that would fail.
                    if drained:
                        unyielded = 0
                        try:
                            await wait_readable(sock)
                        except trio.ClosedResourceError:
                            eof = True
                            break
                    try:
                        data = sock.recv(RECV_BYTES)
                    except BlockingIOError:
                        drained = True
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        eof = True
                        break
                    drained = len(data) < RECV_BYTES
                    conn.last_rx = trio.current_time()
                    self.stats["bytes_received"] += len(data)
                    session.receive_data(data)
                    self._process_events(conn)
                    if not conn.inbox:
                        conn.flush()
                    if session.is_closed or conn.dead:
                        break
                    if conn.draining and session.outstanding == 0 and not conn.handlers:
                        self._close_duplicate(conn)
                    unyielded += len(data)
                    if unyielded >= YIELD_BYTES:
                        # Yield only after the bytes are in the session: the
                        # scope's deadline may cancel this checkpoint, and
                        # bytes read but not fed would desynchronise the
                        # cipher (every later record fails authentication).
                        unyielded = 0
                        await trio.lowlevel.checkpoint()  # let other tasks run
            if serving is not None:
                # This task served a handler that blocked; another one reads now.
                if scope.cancelled_caught and session.send_error(
                    serving.request_id, ErrorCode.TIMEOUT, "the handler missed the deadline"
                ):
                    conn.flush()
                return
            if not scope.cancelled_caught:
                continue
            now = trio.current_time()
            if not conn.opened.is_set():
                if now >= conn.handshake_deadline:
                    self.stats["handshake_timeouts"] += 1
                    self._drop(conn, f"handshake not finished in {cfg.handshake_timeout_s} s")
                    break
            elif not self._on_timer(conn, now):
                break
        if eof and not session.is_closed:
            session.connection_lost()
            self._process_events(conn)
        conn.inbox.clear()
        conn.finished.set()
        # Ends the writer, parked readers and handlers still running (in any task).
        assert conn.nursery is not None
        conn.nursery.cancel_scope.cancel()

    async def _reader_task(self, conn: _Connection) -> None:
        """Take over reading when a handler blocked the reader; park when done."""
        task = trio.lowlevel.current_task()

        def abort(_: Any) -> trio.lowlevel.Abort:
            if task in conn.idle_readers:
                conn.idle_readers.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        while True:
            await self._read(conn)
            if conn.finished.is_set() or len(conn.idle_readers) >= MAX_IDLE_WORKERS:
                return
            conn.idle_readers.append(task)
            await trio.lowlevel.wait_task_rescheduled(abort)

    def _serve_inbox(
        self, conn: _Connection, scope: trio.CancelScope
    ) -> tuple[RequestReceived, Coroutine[Any, Any, bytes], Any] | None:
        """Run waiting requests in the reading task until one's handler blocks.

        A handler is started with ``coro.send(None)``: if it returns without
        awaiting, it is answered at once.  If it yields to trio, this task
        keeps it (trio ties a suspended coroutine to its task): the reader's
        cancel ``scope`` becomes the handler's (deadline, CANCEL), another
        task takes over reading, and ``(event, coro, trap)`` is returned for
        ``_finish_handler``.
        """
        inbox = conn.inbox
        session = conn.session
        peer = conn.peer_id or ""
        limit = self.config.send_buffer_frames
        while inbox:
            event = inbox.popleft()
            if session.is_closed:
                inbox.clear()
                return None
            if conn.leftover is None and session.queued_frames >= limit:
                conn.flush()  # hand a batch to the kernel (or the writer) first
            if scope.cancel_called or (conn.leftover is not None and conn.is_full):
                # The scope cannot serve a handler any more (a timer fired), or
                # the reply would have to wait for room: use a worker task.
                self._dispatch(conn, event)
                continue
            rid = event.request_id
            try:
                started = self._handler(peer, event.channel, event.payload)
                coro = started if type(started) is CoroutineType else _as_coroutine(started)
                trap = coro.send(None)
            except StopIteration as stop:
                self._answer(conn, event, stop.value)
                continue
            except MeshError as exc:
                session.send_error(rid, ErrorCode(exc.code), str(exc))
                continue
            except Exception:
                self._handler_failed(conn, event)
                continue
            conn.handlers[rid] = scope
            scope.deadline = (
                trio.current_time() + event.timeout_ms / 1000 if event.timeout_ms else math.inf
            )
            if conn.idle_readers:
                trio.lowlevel.reschedule(conn.idle_readers.pop())
            else:
                assert conn.nursery is not None
                conn.nursery.start_soon(self._reader_task, conn)
            return event, coro, trap
        return None

    async def _finish_handler(
        self,
        conn: _Connection,
        event: RequestReceived,
        coro: Coroutine[Any, Any, bytes],
        trap: Any,
    ) -> None:
        session = conn.session
        rid = event.request_id
        try:
            try:
                reply = await _Resume(coro, trap)
            except MeshError as exc:
                session.send_error(rid, ErrorCode(exc.code), str(exc))
            except Exception:
                self._handler_failed(conn, event)
            else:
                if conn.leftover is not None and conn.is_full:
                    await conn.wait_for_room()
                self._answer(conn, event, reply)
        finally:
            conn.handlers.pop(rid, None)
        conn.flush()
        if conn.draining and session.outstanding == 0 and not conn.handlers:
            self._close_duplicate(conn)

    def _answer(self, conn: _Connection, event: RequestReceived, reply: Any) -> None:
        if type(reply) is not bytes:
            if not isinstance(reply, bytearray | memoryview):
                log.error(
                    "request handler returned %s, not bytes (channel %d)",
                    type(reply).__name__,
                    event.channel,
                )
                conn.session.send_error(
                    event.request_id, ErrorCode.UNAVAILABLE, "internal error; see that host's log"
                )
                return
            reply = bytes(reply)
        conn.session.send_response(event.request_id, reply)

    def _handler_failed(self, conn: _Connection, event: RequestReceived) -> None:
        log.exception(
            "request handler failed (channel %d, from %s)", event.channel, conn.peer_id or ""
        )
        conn.session.send_error(
            event.request_id, ErrorCode.UNAVAILABLE, "internal error; see that host's log"
        )

    def _next_timer(self, conn: _Connection) -> float:
        """When an open connection's reader must wake: next PING, death, idleness."""
        interval = self.keepalive_interval_s
        return min(
            max(conn.last_rx, conn.last_ping) + interval,
            conn.last_rx + interval * KEEPALIVE_MISSES,
            conn.active_at + self.config.idle_timeout_s,
        )

    def _on_timer(self, conn: _Connection, now: float) -> bool:
        """Keepalive and idle timeout of an open session; False once it is closed.

        Liveness counts any bytes from the peer (PONGs included); idleness
        counts only application traffic (``Session.activity``), so pings keep
        a dead peer from going unnoticed without keeping an unused session open.
        """
        session = conn.session
        interval = self.keepalive_interval_s
        activity = session.activity
        if activity != conn.activity_seen:
            conn.activity_seen = activity
            conn.active_at = now
        if now >= conn.last_rx + interval * KEEPALIVE_MISSES:
            self.stats["keepalive_timeouts"] += 1
            silent = now - conn.last_rx
            session.close(
                ErrorCode.UNAVAILABLE, f"peer silent for {silent:.1f} s despite keepalive pings"
            )
            conn.flush()
            self._process_events(conn)
            return False
        if now >= conn.active_at + self.config.idle_timeout_s:
            if session.outstanding == 0 and not conn.handlers:
                self.stats["idle_closed"] += 1
                session.close(ErrorCode.OK, "idle")
                conn.flush()
                self._process_events(conn)
                return False
            # Requests in flight have their own deadlines; idleness counts
            # again from now.
            conn.active_at = now
        if now >= max(conn.last_rx, conn.last_ping) + interval:
            self.stats["keepalive_pings"] += 1
            conn.last_ping = now
            session.ping(self.stats["keepalive_pings"])
            conn.flush()
        return True

    def _drop(self, conn: _Connection, reason: str) -> None:
        """Abandon a connection whose handshake stalled; fail anyone waiting on it."""
        log.warning("dropping connection with %s: %s", conn.remote, reason)
        error = PeerUnavailable(f"{conn.remote[0]}:{conn.remote[1]}: {reason}")
        self._fail_waiters(conn, error)
        conn.dead = True
        conn.error = error

    def _forget(self, conn: _Connection) -> None:
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
            self._process_events(conn)
        self._fail_waiters(conn, SessionClosed("connection closed", ErrorCode.UNAVAILABLE))

    def _fail_waiters(self, conn: _Connection, error: BaseException) -> None:
        waiters, conn.waiters = conn.waiters, {}
        for waiter in waiters.values():
            waiter.fire(outcome.Error(error))
        for scope in conn.handlers.values():
            scope.cancel()

    # -- events --------------------------------------------------------------

    def _process_events(self, conn: _Connection) -> None:
        session = conn.session
        while (event := session.next_event()) is not None:
            if isinstance(event, ResponseReceived):
                waiter = conn.waiters.pop(event.request_id, None)
                if waiter is not None:
                    waiter.fire(outcome.Value(event.payload))
            elif isinstance(event, RequestReceived):
                self.stats["requests_received"] += 1
                conn.inbox.append(event)
            elif isinstance(event, RequestFailed):
                waiter = conn.waiters.pop(event.request_id, None)
                if waiter is not None:
                    self.stats["remote_errors"] += 1
                    error = RemoteError(event.code, event.message, conn.peer_id or "")
                    waiter.fire(outcome.Error(error))
            elif isinstance(event, RequestCancelled):
                scope = conn.handlers.get(event.request_id)
                if scope is not None:
                    scope.cancel()
            elif isinstance(event, HandshakeComplete):
                self._on_open(conn, event)
            elif isinstance(event, SessionEnded):
                self._on_closed(conn, event)

    def _on_open(self, conn: _Connection, event: HandshakeComplete) -> None:
        peer = event.peer_id
        conn.peer_id = peer
        self.stats["handshakes_completed"] += 1
        if peer == self.host_id:
            conn.session.close(ErrorCode.INVALID, "connected to ourselves")
            conn.flush()
            self._process_events(conn)
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
            winner = min(live, key=self._tie_key)
            for other in live:
                if other is not winner and not other.draining:
                    other.draining = True
                    if other.session.outstanding == 0 and not other.handlers:
                        self._close_duplicate(other)

    def _tie_key(self, conn: _Connection) -> tuple[str, bytes]:
        # Both hosts compute the same key for the same TCP connection.
        assert conn.peer_id is not None
        initiator_id = self.host_id if conn.session.initiator else conn.peer_id
        return (initiator_id, conn.session.handshake_hash)

    def _close_duplicate(self, conn: _Connection) -> None:
        self.stats["duplicate_sessions_closed"] += 1
        conn.session.close(ErrorCode.OK, "duplicate session")
        conn.flush()
        self._process_events(conn)

    def _on_closed(self, conn: _Connection, event: SessionEnded) -> None:
        code = event.code
        self._count_close(code)
        who = conn.peer_id or f"{conn.remote[0]}:{conn.remote[1]}"
        if not conn.opened.is_set():
            self.stats["handshake_failures"] += 1
            self._count_handshake_failure(code)
            if conn.dialed is not None:
                self._note_failure(conn.dialed)
        if not conn.opened.is_set() and conn.dialed is None and not event.by_peer:
            self._log_refused(conn.remote[0], code, event.message)
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
            error: BaseException = _Retry()
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
        self._fail_waiters(conn, error)
        conn.opened.set()

    def _log_refused(self, source: str, code: ErrorCode, message: str) -> None:
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

    # -- serving requests ----------------------------------------------------

    def _dispatch(self, conn: _Connection, event: RequestReceived) -> None:
        """Hand a request to a parked worker of this connection, or start one."""
        if conn.idle_workers:
            trio.lowlevel.reschedule(conn.idle_workers.pop(), outcome.Value(event))
        else:
            assert conn.nursery is not None
            conn.nursery.start_soon(self._worker, conn, event)

    async def _worker(self, conn: _Connection, event: RequestReceived | None) -> None:
        """Serve requests of one connection until cancelled or too many are idle.

        The worker's one cancel scope is cancelled by the peer's CANCEL or the
        request's deadline (fired by ``Deadlines``); the worker then ends and
        later requests get a fresh one.
        """
        session = conn.session
        peer = conn.peer_id or ""
        deadlines = self._deadlines
        entry = None
        with trio.CancelScope() as scope:
            while event is not None:
                rid = event.request_id
                conn.handlers[rid] = scope
                if event.timeout_ms:
                    when = trio.current_time() + event.timeout_ms / 1000
                    entry = deadlines.add(when, scope.cancel)
                try:
                    reply = await self._handler(peer, event.channel, event.payload)
                    if type(reply) is not bytes:
                        if not isinstance(reply, bytearray | memoryview):
                            raise TypeError(f"handler returned {type(reply).__name__}, not bytes")
                        reply = bytes(reply)
                    if conn.leftover is not None and conn.is_full:
                        await conn.wait_for_room()
                    session.send_response(rid, reply)
                except MeshError as exc:
                    session.send_error(rid, ErrorCode(exc.code), str(exc))
                except Exception:
                    log.exception(
                        "request handler failed (channel %d, from %s)", event.channel, peer
                    )
                    session.send_error(
                        rid, ErrorCode.UNAVAILABLE, "internal error; see that host's log"
                    )
                if entry is not None:
                    deadlines.cancel(entry)
                    entry = None
                del conn.handlers[rid]
                conn.flush()
                if conn.draining and session.outstanding == 0 and not conn.handlers:
                    self._close_duplicate(conn)
                event = None
                if len(conn.idle_workers) < MAX_IDLE_WORKERS and not session.is_closed:
                    event = await self._next_job(conn)
        if scope.cancelled_caught and event is not None:
            # Cancelled by the deadline (a peer's CANCEL removed the request first).
            rid = event.request_id
            conn.handlers.pop(rid, None)
            if entry is not None:
                deadlines.cancel(entry)
            if session.send_error(rid, ErrorCode.TIMEOUT, "the handler missed the deadline"):
                conn.flush()

    async def _next_job(self, conn: _Connection) -> RequestReceived | None:
        task = trio.lowlevel.current_task()
        conn.idle_workers.append(task)

        def abort(_: Any) -> trio.lowlevel.Abort:
            if task in conn.idle_workers:
                conn.idle_workers.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        job: RequestReceived = await trio.lowlevel.wait_task_rescheduled(abort)
        return job

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
        if self._closing:
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
                return await self._request_on(conn, channel, payload, deadline - now, timeout_s)
            except _Retry:
                now = trio.current_time()
        self.stats["request_timeouts"] += 1
        raise RequestTimeout(
            f"no reply from {addr[0]}:{addr[1]} (channel {channel}) within {timeout_s} s"
        )

    async def _request_on(
        self, conn: _Connection, channel: int, payload: bytes, left_s: float, timeout_s: float
    ) -> bytes:
        if not conn.usable:
            raise _Retry()
        session = conn.session
        deadline = trio.current_time() + left_s
        timeout_ms = max(1, math.ceil(left_s * 1000))
        rid = session.send_request(channel, payload, timeout_ms)
        self.stats["requests_sent"] += 1
        waiter = _Waiter()
        conn.waiters[rid] = waiter
        conn.flush()

        def expire() -> None:
            if waiter.result is None:
                conn.waiters.pop(rid, None)
                session.cancel(rid)  # tell the peer to stop working on it
                conn.flush()
                self.stats["request_timeouts"] += 1
                peer = conn.peer_id or "peer"
                waiter.fire(
                    outcome.Error(
                        RequestTimeout(
                            f"no reply from {peer} (channel {channel}) within {timeout_s} s"
                        )
                    )
                )

        entry = self._deadlines.add(deadline, expire)
        try:
            return await waiter.wait()
        finally:
            self._deadlines.cancel(entry)
            if waiter.result is None:  # the caller was cancelled: tell the peer to stop
                conn.waiters.pop(rid, None)
                session.cancel(rid)
                conn.flush()

    def _usable_session(self, addr: Address, expected_peer: str | None) -> _Connection | None:
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
    ) -> _Connection:
        while True:
            if self._closing:
                raise TransportClosed("the transport is closed")
            conn = self._usable_session(addr, expected_peer)
            if conn is not None:
                return conn
            dial = self._dials.get(addr) or self._start_dial(addr, deadline)
            await dial.done.wait()
            if dial.error is not None and not isinstance(dial.error, _Retry):
                raise dial.error
            # Success (or a duplicate the peer closed): find the session by peer id.

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
                session = self._new_session(initiator=True, psk=psk)
                conn = _Connection(self, sock, session, remote, addr)
                self._conns.add(conn)
                assert self._nursery is not None
                self._nursery.start_soon(self._run_connection, conn)
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
