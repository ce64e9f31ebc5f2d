"""trio driver of one connection: its socket, its session's clock, reads, writes, handlers.

A :class:`Connection` owns one TCP socket and the :class:`Session` core on
it, and nothing else: it feeds the session the bytes it reads (with
``now``), sends what the session has to send, re-arms the session's one
timer, runs the requests the session delivers, and wakes the callers whose
replies arrive.  Every protocol decision (handshake deadline, keepalive,
idle close, which duplicate to keep) is the session's; pool-wide decisions
(which session serves a peer, dial failures, counters by close reason) are
the :class:`Owner`'s (``pool.Transport``).

Writes: after any change the session's output is sent at once with a
non-blocking ``send`` from the task that caused it (no task switch on the
hot path); whatever the kernel does not take is handed to the connection's
writer task, and writers of new frames wait while ``send_buffer_frames``
frames are queued (backpressure).

Reads: one task at a time holds the connection's reading role and feeds the
session; it reads without a checkpoint while data keeps coming and parks
right after a short read.  Handlers run in that task (``_serve_inbox``): one
that answers without awaiting costs no task switch; one that awaits keeps
the task (trio ties a suspended coroutine to it), whose timer cancel scope
becomes the handler's (deadline, CANCEL), while a parked or new task takes
over reading, so a slow handler never stalls the session.  Running a
handler's first step by hand is the one use of undocumented trio behaviour;
it lives in ``stepping.py`` with a test that pins it.  Request deadlines
are fired by one task per transport from a heap (``deadlines.py``) instead
of a cancel scope per request.

trio's API: the socket is a plain non-blocking socket read and written with
``recv``/``send`` when trio's public ``trio.lowlevel.wait_readable`` says so
(trio's own socket methods do the same, plus a checkpoint per call, which
is a scheduler pass per read and per write; the writer task uses trio's
``SocketStream.send_all`` on the same socket for a backlog).  Parking and
waking tasks uses ``trio.lowlevel.wait_task_rescheduled``/``reschedule``.
"""

from __future__ import annotations

import logging
import math
import socket as _socket
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import outcome
import trio

from meshhost.config import TransportConfig
from meshhost.errors import ErrorCode, MeshError, RemoteError, RequestTimeout
from meshhost.transport.deadlines import Deadlines
from meshhost.transport.session import (
    HandshakeComplete,
    RequestCancelled,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Session,
    SessionEnded,
)
from meshhost.transport.stepping import first_step, resume

__all__ = ["Address", "Connection", "Owner", "RequestHandler", "Retry"]

log = logging.getLogger("meshhost.transport")

RequestHandler = Callable[[str, int, bytes], Awaitable[bytes]]
Address = tuple[str, int]

RECV_BYTES = 256 << 10
"""Bytes asked of the kernel per read: several full records per wake-up."""
YIELD_BYTES = 1 << 20
"""A reader that keeps finding data yields to other tasks after this many bytes."""
MAX_IDLE_WORKERS = 8
"""Worker and reader tasks kept parked per connection (each kind) for reuse:
spawning a trio task costs more than waking a parked one."""


class Retry(Exception):
    """The session closed (idle or duplicate) before the peer saw our request:
    the request may simply be sent again on another session."""


class Owner(Protocol):
    """What a connection needs from the transport that owns it."""

    stats: dict[str, int]
    config: TransportConfig
    deadlines: Deadlines
    handler: RequestHandler

    def session_opened(self, conn: Connection, event: HandshakeComplete) -> None: ...

    def session_closed(self, conn: Connection, event: SessionEnded) -> None: ...

    def connection_ended(self, conn: Connection) -> None: ...


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


class Connection:
    """One TCP connection, its session and the tasks around it.

    ``dialed`` is the address we dialed (None for an accepted connection).
    Run it with ``await conn.run()`` in a task of its own; it returns when
    the connection ended (and ``owner.connection_ended`` ran).
    """

    def __init__(
        self,
        owner: Owner,
        sock: _socket.socket,
        session: Session,
        remote: Address,
        dialed: Address | None,
    ) -> None:
        self.owner = owner
        self.stats = owner.stats
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
        self.dead = False
        self.leftover: bytes | bytearray | memoryview | None = None
        self.write_wakeup = trio.Event()
        self.drained = trio.Event()
        self.nursery: trio.Nursery | None = None
        self.error: BaseException | None = None
        """Why the session ended before opening (raised to requests waiting for it)."""

    @property
    def usable(self) -> bool:
        """New requests may go on this connection (open, not retiring, socket alive)."""
        return self.session.usable and not self.dead

    # -- writing -------------------------------------------------------------

    def flush(self) -> None:
        """Send the session's output now, as far as the kernel takes it."""
        if self.leftover is not None or self.dead:
            return  # the writer task owns the socket until its backlog is gone
        session = self.session
        stats = self.stats
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

    def update(self) -> None:
        """After a call into the session: handle the events it raised, send its output."""
        self.process_events()
        self.flush()

    async def writer(self) -> None:
        stats = self.stats
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
        return self.session.queued_frames >= self.owner.config.send_buffer_frames

    async def wait_for_room(self) -> None:
        """Backpressure: wait while the writer is behind and too much is queued."""
        while self.leftover is not None and self.is_full and not self.dead:
            await self.drained.wait()

    # -- running -------------------------------------------------------------

    async def run(self) -> None:
        """Drive the connection until it ends; then tell the owner and close the socket."""
        session = self.session
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                nursery.start_soon(self.writer)
                if session.initiator:
                    session.start()
                self.flush()  # message 1, or an admitted responder's message 2
                await self._read()
                # If a handler blocked in this task, another task took over
                # reading; it sets ``finished`` when the connection ends.
                await self.finished.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.owner.connection_ended(self)
            if not self.opened.is_set():
                self.opened.set()
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _read(self) -> None:
        """Hold the connection's reading role: read, feed the session, run its
        timer and requests.  Returns when the connection ended (``finished``
        is set) or when a request handler this task started blocked: then
        another task reads and this one returns once that handler answered.

        Requests are run right here (``_serve_inbox``): a handler that answers
        without awaiting costs no task switch, and one that awaits keeps this
        task while a parked (or new) task takes over reading, so a slow
        handler never holds up the connection.
        """
        session = self.session
        sock = self.sock
        stats = self.stats
        wait_readable = trio.lowlevel.wait_readable
        current_time = trio.current_time
        eof = False
        while not session.is_closed and not self.dead and not eof:
            # One cancel scope per timer period, not per read: the hot path
            # only passes the time of each read to the session.
            wake_at = session.get_timer()
            assert wake_at is not None  # None only once closed
            serving: RequestReceived | None = None
            with trio.move_on_at(wake_at) as scope:
                unyielded = 0
                drained = False
                while True:
                    if self.inbox:
                        blocked = self._serve_inbox(scope)
                        self.update()
                        if blocked is not None:
                            serving = blocked[0]
                            await self._finish_handler(*blocked)
                            break
                        if session.is_closed or self.dead:
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
                    stats["bytes_received"] += len(data)
                    session.receive_data(data, current_time())
                    self.process_events()
                    if not self.inbox:
                        self.flush()
                    if session.is_closed or self.dead:
                        break
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
                    self.update()
                return
            if scope.cancelled_caught:
                pings = session.pings_sent
                session.handle_timer(current_time())
                stats["keepalive_pings"] += session.pings_sent - pings
                self.update()
        if eof and not session.is_closed:
            session.connection_lost()
            self.process_events()
        self.inbox.clear()
        self.finished.set()
        # Ends the writer, parked readers and handlers still running (in any task).
        assert self.nursery is not None
        self.nursery.cancel_scope.cancel()

    async def _reader_task(self) -> None:
        """Take over reading when a handler blocked the reader; park when done."""
        task = trio.lowlevel.current_task()

        def abort(_: Any) -> trio.lowlevel.Abort:
            if task in self.idle_readers:
                self.idle_readers.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        while True:
            await self._read()
            if self.finished.is_set() or len(self.idle_readers) >= MAX_IDLE_WORKERS:
                return
            self.idle_readers.append(task)
            await trio.lowlevel.wait_task_rescheduled(abort)

    # -- serving requests ----------------------------------------------------

    def _serve_inbox(
        self, scope: trio.CancelScope
    ) -> tuple[RequestReceived, Coroutine[Any, Any, bytes], Any] | None:
        """Run waiting requests in the reading task until one's handler blocks.

        A handler's first step runs here (``stepping.first_step``): if it
        returns without awaiting, it is answered at once.  If it yields to
        trio, this task keeps it (trio ties a suspended coroutine to its
        task): the reader's cancel ``scope`` becomes the handler's (deadline,
        CANCEL), another task takes over reading, and ``(event, coro, trap)``
        is returned for ``_finish_handler``, which must follow with no
        checkpoint in between.
        """
        inbox = self.inbox
        session = self.session
        peer = self.peer_id or ""
        limit = self.owner.config.send_buffer_frames
        handler = self.owner.handler
        while inbox:
            event = inbox.popleft()
            if session.is_closed:
                inbox.clear()
                return None
            if self.leftover is None and session.queued_frames >= limit:
                self.flush()  # hand a batch to the kernel (or the writer) first
            if scope.cancel_called or (self.leftover is not None and self.is_full):
                # The scope cannot serve a handler any more (a timer fired), or
                # the reply would have to wait for room: use a worker task.
                self._dispatch(event)
                continue
            rid = event.request_id
            try:
                value, coro = first_step(handler(peer, event.channel, event.payload))
            except MeshError as exc:
                session.send_error(rid, ErrorCode(exc.code), str(exc))
                continue
            except Exception:
                self._handler_failed(event)
                continue
            if coro is None:
                self._answer(event, value)
                continue
            # It waits: keep it in this task (the trap is yielded by ``resume``
            # in ``_finish_handler``, with no checkpoint in between).
            self.handlers[rid] = scope
            scope.deadline = (
                trio.current_time() + event.timeout_ms / 1000 if event.timeout_ms else math.inf
            )
            if self.idle_readers:
                trio.lowlevel.reschedule(self.idle_readers.pop())
            else:
                assert self.nursery is not None
                self.nursery.start_soon(self._reader_task)
            return event, coro, value
        return None

    async def _finish_handler(
        self,
        event: RequestReceived,
        coro: Coroutine[Any, Any, bytes],
        trap: Any,
    ) -> None:
        session = self.session
        rid = event.request_id
        try:
            try:
                reply = await resume(coro, trap)
            except MeshError as exc:
                session.send_error(rid, ErrorCode(exc.code), str(exc))
            except Exception:
                self._handler_failed(event)
            else:
                if self.leftover is not None and self.is_full:
                    await self.wait_for_room()
                self._answer(event, reply)
        finally:
            self.handlers.pop(rid, None)
        self.update()

    def _answer(self, event: RequestReceived, reply: Any) -> None:
        if type(reply) is not bytes:
            if not isinstance(reply, bytearray | memoryview):
                log.error(
                    "request handler returned %s, not bytes (channel %d)",
                    type(reply).__name__,
                    event.channel,
                )
                self.session.send_error(
                    event.request_id, ErrorCode.UNAVAILABLE, "internal error; see that host's log"
                )
                return
            reply = bytes(reply)
        self.session.send_response(event.request_id, reply)

    def _handler_failed(self, event: RequestReceived) -> None:
        log.exception(
            "request handler failed (channel %d, from %s)", event.channel, self.peer_id or ""
        )
        self.session.send_error(
            event.request_id, ErrorCode.UNAVAILABLE, "internal error; see that host's log"
        )

    def _dispatch(self, event: RequestReceived) -> None:
        """Hand a request to a parked worker of this connection, or start one."""
        if self.idle_workers:
            trio.lowlevel.reschedule(self.idle_workers.pop(), outcome.Value(event))
        else:
            assert self.nursery is not None
            self.nursery.start_soon(self._worker, event)

    async def _worker(self, event: RequestReceived | None) -> None:
        """Serve requests of this connection until cancelled or too many are idle.

        The worker's one cancel scope is cancelled by the peer's CANCEL or the
        request's deadline (fired by ``Deadlines``); the worker then ends and
        later requests get a fresh one.
        """
        session = self.session
        peer = self.peer_id or ""
        deadlines = self.owner.deadlines
        handler = self.owner.handler
        entry = None
        with trio.CancelScope() as scope:
            while event is not None:
                rid = event.request_id
                self.handlers[rid] = scope
                if event.timeout_ms:
                    when = trio.current_time() + event.timeout_ms / 1000
                    entry = deadlines.add(when, scope.cancel)
                try:
                    reply = await handler(peer, event.channel, event.payload)
                    if type(reply) is not bytes:
                        if not isinstance(reply, bytearray | memoryview):
                            raise TypeError(f"handler returned {type(reply).__name__}, not bytes")
                        reply = bytes(reply)
                    if self.leftover is not None and self.is_full:
                        await self.wait_for_room()
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
                del self.handlers[rid]
                self.update()
                event = None
                if len(self.idle_workers) < MAX_IDLE_WORKERS and not session.is_closed:
                    event = await self._next_job()
        if scope.cancelled_caught and event is not None:
            # Cancelled by the deadline (a peer's CANCEL removed the request first).
            rid = event.request_id
            self.handlers.pop(rid, None)
            if entry is not None:
                deadlines.cancel(entry)
            if session.send_error(rid, ErrorCode.TIMEOUT, "the handler missed the deadline"):
                self.update()

    async def _next_job(self) -> RequestReceived | None:
        task = trio.lowlevel.current_task()
        self.idle_workers.append(task)

        def abort(_: Any) -> trio.lowlevel.Abort:
            if task in self.idle_workers:
                self.idle_workers.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        job: RequestReceived = await trio.lowlevel.wait_task_rescheduled(abort)
        return job

    # -- making requests -----------------------------------------------------

    async def request(self, channel: int, payload: bytes, left_s: float, timeout_s: float) -> bytes:
        """Send one request on this connection and wait at most ``left_s`` for its reply.

        Raises Retry if the connection is no longer usable, RequestTimeout,
        RemoteError or SessionEnded; cancelling the caller cancels the
        request at the peer.
        """
        if not self.usable:
            raise Retry()
        session = self.session
        deadline = trio.current_time() + left_s
        timeout_ms = max(1, math.ceil(left_s * 1000))
        rid = session.send_request(channel, payload, timeout_ms)
        self.stats["requests_sent"] += 1
        waiter = _Waiter()
        self.waiters[rid] = waiter
        self.flush()

        def expire() -> None:
            if waiter.result is None:
                self.waiters.pop(rid, None)
                session.cancel(rid)  # tell the peer to stop working on it
                self.update()
                self.stats["request_timeouts"] += 1
                peer = self.peer_id or "peer"
                waiter.fire(
                    outcome.Error(
                        RequestTimeout(
                            f"no reply from {peer} (channel {channel}) within {timeout_s} s"
                        )
                    )
                )

        deadlines = self.owner.deadlines
        entry = deadlines.add(deadline, expire)
        try:
            return await waiter.wait()
        finally:
            deadlines.cancel(entry)
            if waiter.result is None:  # the caller was cancelled: tell the peer to stop
                self.waiters.pop(rid, None)
                session.cancel(rid)
                self.update()

    # -- events --------------------------------------------------------------

    def process_events(self) -> None:
        """Act on every event the session raised since the last call."""
        session = self.session
        stats = self.stats
        while (event := session.next_event()) is not None:
            if isinstance(event, ResponseReceived):
                waiter = self.waiters.pop(event.request_id, None)
                if waiter is not None:
                    waiter.fire(outcome.Value(event.payload))
            elif isinstance(event, RequestReceived):
                stats["requests_received"] += 1
                self.inbox.append(event)
            elif isinstance(event, RequestFailed):
                waiter = self.waiters.pop(event.request_id, None)
                if waiter is not None:
                    stats["remote_errors"] += 1
                    error = RemoteError(event.code, event.message, self.peer_id or "")
                    waiter.fire(outcome.Error(error))
            elif isinstance(event, RequestCancelled):
                scope = self.handlers.get(event.request_id)
                if scope is not None:
                    scope.cancel()
            elif isinstance(event, HandshakeComplete):
                self.peer_id = event.peer_id
                self.owner.session_opened(self, event)
            elif isinstance(event, SessionEnded):
                self.owner.session_closed(self, event)

    def fail_waiters(self, error: BaseException) -> None:
        """Fail every caller waiting on this connection; cancel its running handlers."""
        waiters, self.waiters = self.waiters, {}
        for waiter in waiters.values():
            waiter.fire(outcome.Error(error))
        for scope in self.handlers.values():
            scope.cancel()
