"""Trio driver for the SWIM core: one UDP socket, one timer, sealed datagrams.

Theory of operation.  The core (:mod:`meshhost.membership.swim`) decides
everything; this shell only moves bytes and time:

* a receive task reads datagrams, drops any larger than
  ``udp_packet_bytes`` (counted as ``oversized``), opens the rest with the
  lattice :class:`~meshhost.identity.keyring.Keyring` (failures are counted
  there, before a single byte is parsed) and hands the plaintext to
  ``core.receive_datagram``;
* a timer task sleeps until ``core.get_timer()`` and calls
  ``core.handle_timer``; every input re-arms it, so there is exactly one
  timer, always the core's latest;
* after any input the driver *pumps*: seals and sends every datagram the core
  queued, moves every event into a bounded trio memory channel for the host,
  and starts a push-pull exchange if the core says one is due.

Push-pull (full-state anti-entropy) runs over the transport's Noise sessions
on channel :data:`PUSH_PULL_CHANNEL`; the host routes inbound requests on that
channel to :meth:`MembershipDriver.handle_push_pull`.

Time given to the core is ``trio.current_time() + clock_offset``: it moves
with trio's clock (so tests can run the driver under a ``MockClock`` when no
real sockets or threads are involved) but is anchored to the Unix clock, so a
restarted host starts from a higher incarnation than its previous life (the
core derives its first incarnation from ``now``).  Construct the core with
``now=trio.current_time() + offset`` using the offset it passes here
(:func:`wall_clock_offset`).
"""

from __future__ import annotations

import errno
import math
import socket as stdlib_socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from meshhost.config import MembershipConfig
from meshhost.errors import LocalProtocolError, MembershipDecodeError, MeshError
from meshhost.identity.keyring import Keyring
from meshhost.transport import channels

__all__ = [
    "EVENT_BUFFER",
    "PUSH_PULL_CHANNEL",
    "Addr",
    "MembershipDriver",
    "PushPullTransport",
    "UdpStats",
    "wall_clock_offset",
]

Addr = tuple[str, int]

PUSH_PULL_CHANNEL = channels.PUSH_PULL
"""Transport channel number of push-pull requests (from the one registry)."""
EVENT_BUFFER = 4096
"""Membership events buffered for the host; beyond it events are dropped and
counted (the host can always read ``core.members()`` for the current truth)."""
RECV_BUFFER_BYTES = 65536
"""Read whole datagrams, even oversized ones, so they are counted, not truncated."""
UNKNOWN_ADDR = ("0.0.0.0", 0)
"""Reported as the source of a bad push-pull from a host whose address we do not know."""
PUSH_PULL_TIMEOUT_S = 5.0
"""Deadline of one push-pull exchange; a slow peer must not pin state."""
MAX_PUSH_PULLS_IN_FLIGHT = 4
"""Outbound exchanges at once; more wait their turn (the core bounds its queue)."""


MAX_REMEMBERED_ERRORS = 256
"""Push-pull failures remembered by address (the oldest is forgotten first)."""


def _addr_key(addr: Any) -> Addr:
    return (str(addr[0]), int(addr[1]))


class SwimCore(Protocol):
    """What the driver needs of the sans-IO core (``meshhost.membership.swim.Swim``)."""

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None: ...
    def handle_timer(self, now: float) -> None: ...
    def get_timer(self) -> float | None: ...
    def datagrams_to_send(self) -> list[tuple[Any, bytes]]: ...
    def next_event(self) -> object | None: ...
    def join(self, addrs: list[Addr], now: float) -> None: ...
    def leave(self, now: float) -> None: ...
    def update_meta(self, meta: bytes, now: float) -> None: ...
    def push_pull_due(self, now: float) -> Any | None: ...
    def push_pull_payload(self, now: float) -> bytes: ...
    def merge_push_pull(self, data: bytes, addr: Any, now: float) -> str | None: ...


class PushPullTransport(Protocol):
    """The slice of :class:`meshhost.transport.pool.Transport` push-pull uses."""

    async def request(
        self, addr: Addr, channel: int, payload: bytes, *, timeout_s: float
    ) -> bytes: ...


@dataclass(slots=True)
class UdpStats:
    """Counters of the driver (the keyring counts what failed to open)."""

    received: int = 0
    """Datagrams read from the socket, whatever became of them."""
    delivered: int = 0
    """Datagrams that opened and went to the core."""
    oversized: int = 0
    """Inbound datagrams above ``udp_packet_bytes``: dropped unopened."""
    oversized_out: int = 0
    """Outbound datagrams that would exceed the limit once sealed: not sent (a core bug)."""
    sent: int = 0
    """Datagrams handed to the kernel."""
    bytes_received: int = 0
    """Bytes of every datagram read."""
    bytes_sent: int = 0
    """Bytes of the datagrams handed to the kernel."""
    send_errors: int = 0
    """``sendto`` failures (unreachable network, no buffer space)."""
    core_errors: int = 0
    """Peer bytes the core rejected by raising instead of reporting an event."""
    events_dropped: int = 0
    """Events lost because the host did not drain the channel in time."""
    push_pulls: int = 0
    """Push-pull exchanges completed (both directions)."""
    push_pull_failures: int = 0
    """Outbound exchanges that failed or timed out."""
    push_pulls_skipped: int = 0
    """Exchanges the core asked for while no transport was given."""


class MembershipDriver:
    """Runs a SWIM core on a trio UDP socket.

    Use: ``addr = await driver.bind(host, port)``, then
    ``await nursery.start(driver.serve)``.  Events come out of
    :attr:`events`.  Methods that feed the core (``join``, ``leave``,
    ``update_meta``, ``handle_push_pull``) must be called from trio.
    """

    def __init__(
        self,
        core: SwimCore,
        keyring: Keyring,
        config: MembershipConfig,
        *,
        transport: PushPullTransport | None = None,
        event_buffer: int = EVENT_BUFFER,
        clock_offset: float | None = None,
        sock: trio.socket.SocketType | None = None,
    ) -> None:
        self.core = core
        self.keyring = keyring
        self.config = config
        self.transport = transport
        self.stats = UdpStats()
        self._sock: trio.socket.SocketType | None = sock
        """A UDP socket already bound by the caller, or None: call :meth:`bind`."""
        self._send_events, self.events = trio.open_memory_channel[object](event_buffer)
        self._rearm = trio.Event()
        self._outbox: list[tuple[Any, bytes]] = []
        self._outbox_ready = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._push_pull_limiter = trio.CapacityLimiter(MAX_PUSH_PULLS_IN_FLIGHT)
        self._clock_offset = clock_offset
        self.push_pull_errors: dict[Addr, BaseException] = {}
        """Why the last push-pull with an address failed (cleared when one works),
        so a host that cannot join can say why (seed refused, no answer, ...)."""

    def now(self) -> float:
        """The core's clock: trio time shifted to Unix time (see the module docstring)."""
        if self._clock_offset is None:
            self._clock_offset = wall_clock_offset()
        return trio.current_time() + self._clock_offset

    def _deadline_to_trio(self, deadline: float | None) -> float:
        if deadline is None:
            return math.inf
        return deadline - (self._clock_offset or 0.0)

    # -- setup --------------------------------------------------------------

    async def bind(self, host: str, port: int) -> Addr:
        """Open the UDP socket on ``(host, port)``; returns the bound address.

        Raises ``OSError`` (e.g. ``EADDRINUSE``) for the caller to handle.
        """
        if self._sock is not None:
            raise LocalProtocolError("the membership socket is already bound")
        sock = trio.socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        try:
            await sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        bound = sock.getsockname()
        return (bound[0], bound[1])

    @property
    def bound_addr(self) -> Addr:
        """The socket's local address."""
        if self._sock is None:
            raise LocalProtocolError("the membership socket is not bound; call bind() first")
        name = self._sock.getsockname()
        return (name[0], name[1])

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the receive, send and timer loops until cancelled."""
        if self._sock is None:
            raise LocalProtocolError("bind() the membership socket before serve()")
        self.now()  # fix the clock offset before the first timer is armed
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._receive_loop)
                nursery.start_soon(self._send_loop)
                nursery.start_soon(self._timer_loop)
                self._pump()
                task_status.started(self.bound_addr)
        finally:
            self._nursery = None
            self.close()

    # -- inputs from the host -----------------------------------------------

    def _note_push_pull_error(self, addr: Any, exc: BaseException) -> None:
        key = _addr_key(addr)
        self.push_pull_errors.pop(key, None)
        if len(self.push_pull_errors) >= MAX_REMEMBERED_ERRORS:
            del self.push_pull_errors[next(iter(self.push_pull_errors))]
        self.push_pull_errors[key] = exc

    def join(self, addrs: Sequence[Any]) -> None:
        """Propose peers to the core (discovery calls this; the core decides)."""
        if not addrs:
            return
        self.core.join(list(addrs), self.now())
        self._pump()

    def update_meta(self, meta: bytes) -> None:
        """Change this host's metadata; the core gossips it."""
        self.core.update_meta(meta, self.now())
        self._pump()

    async def leave(self, timeout_s: float = 1.0) -> None:
        """Announce a graceful leave and give the broadcast a moment to go out.

        Returns after ``timeout_s`` at most; the caller then cancels ``serve``.
        """
        self.core.leave(self.now())
        self._pump()
        with trio.move_on_after(timeout_s):
            # Let the send loop flush and a few gossip rounds carry the intent.
            await self._flushed()
            await trio.sleep(min(timeout_s, 3 * self.config.gossip_interval_s))

    async def handle_push_pull(self, peer_id: str, payload: bytes, addr: Any = None) -> bytes:
        """Answer an inbound push-pull: merge the peer's state, reply with ours.

        The host's transport handler calls this for channel :data:`PUSH_PULL_CHANNEL`.
        Raises MembershipDecodeError (the peer gets the reason) for malformed state.
        """
        now = self.now()
        if addr is None:
            # The transport knows the peer by id; the core reports trouble by
            # address, so use the one its signed alive gave, if we know it.
            member = getattr(self.core, "member", lambda _id: None)(peer_id)
            addr = member.addr if member is not None else UNKNOWN_ADDR
        reply = self.core.push_pull_payload(now)
        try:
            problem = self.core.merge_push_pull(payload, addr, now)
        except MeshError:
            self.stats.push_pull_failures += 1
            raise
        if problem is not None:  # the peer learns why instead of getting our state
            self.stats.push_pull_failures += 1
            raise MembershipDecodeError(f"push-pull state refused: {problem}")
        self.stats.push_pulls += 1
        self._pump()
        return reply

    # -- loops -------------------------------------------------------------

    async def _receive_loop(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data, addr = await self._sock.recvfrom(RECV_BUFFER_BYTES)
            except OSError as exc:
                # ICMP errors surface here on some kernels; they say nothing
                # about our socket's health.
                if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue
                raise
            self.datagram_received(data, (addr[0], addr[1]))

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        """Handle one datagram as read from the socket (must be called from trio).

        Oversized datagrams are dropped unopened and counted; the keyring
        counts what fails to open; only authenticated plaintext reaches the
        core.  Never raises for bad bytes.
        """
        self.stats.received += 1
        self.stats.bytes_received += len(data)
        if len(data) > self.config.udp_packet_bytes:
            self.stats.oversized += 1
            return
        plaintext = self.keyring.open(data)
        if plaintext is None:
            return  # counted by the keyring
        self.stats.delivered += 1
        try:
            self.core.receive_datagram(plaintext, addr, self.now())
        except MeshError:
            # The core should turn bad peer bytes into PeerMisbehaved
            # events; if one escapes, count it rather than die.
            self.stats.core_errors += 1
        self._pump()

    async def _timer_loop(self) -> None:
        while True:
            self._rearm = trio.Event()
            deadline = self._deadline_to_trio(self.core.get_timer())
            with trio.move_on_at(deadline):
                await self._rearm.wait()
                continue
            self.core.handle_timer(self.now())
            self._pump()

    async def _send_loop(self) -> None:
        assert self._sock is not None
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready = trio.Event()
            batch, self._outbox = self._outbox, []
            for addr, sealed in batch:
                try:
                    await self._sock.sendto(sealed, addr)
                except OSError:
                    self.stats.send_errors += 1
                else:
                    self.stats.sent += 1
                    self.stats.bytes_sent += len(sealed)

    async def _flushed(self) -> None:
        while self._outbox:
            await trio.sleep(0)

    # -- pump ----------------------------------------------------------------

    def _pump(self) -> None:
        """After any input: queue sealed datagrams, drain events, start push-pull, re-arm."""
        limit = self.config.udp_packet_bytes
        for addr, plaintext in self.core.datagrams_to_send():
            sealed = self.keyring.seal(plaintext)
            if len(sealed) > limit:
                self.stats.oversized_out += 1
                continue
            self._outbox.append((addr, sealed))
        if self._outbox:
            self._outbox_ready.set()
        while (event := self.core.next_event()) is not None:
            try:
                self._send_events.send_nowait(event)
            except trio.WouldBlock:
                self.stats.events_dropped += 1
        self._maybe_push_pull()
        self._rearm.set()

    def _maybe_push_pull(self) -> None:
        if self._nursery is None:
            return
        now = self.now()
        if self.transport is None:
            # UDP-only (tests, or a host without TCP): gossip alone converges,
            # more slowly; drop the exchanges so the core's queue stays empty.
            while self.core.push_pull_due(now) is not None:
                self.stats.push_pulls_skipped += 1
            return
        while (addr := self.core.push_pull_due(now)) is not None:
            self._nursery.start_soon(self._push_pull, addr)

    async def _push_pull(self, addr: Any) -> None:
        assert self.transport is not None
        async with self._push_pull_limiter:
            # The payload is taken when our turn comes, so it is fresh.
            payload = self.core.push_pull_payload(self.now())
            try:
                reply = await self.transport.request(
                    addr, PUSH_PULL_CHANNEL, payload, timeout_s=PUSH_PULL_TIMEOUT_S
                )
            except (MeshError, OSError) as exc:
                self.stats.push_pull_failures += 1
                self._note_push_pull_error(addr, exc)
                return
        self.push_pull_errors.pop(_addr_key(addr), None)
        try:
            problem = self.core.merge_push_pull(reply, addr, self.now())
        except MeshError:
            self.stats.push_pull_failures += 1
            return
        if problem is not None:
            self.stats.push_pull_failures += 1
            return
        self.stats.push_pulls += 1
        self._pump()


def wall_clock_offset() -> float:
    """Seconds to add to ``trio.current_time()`` to get (roughly) Unix time."""
    return time.time() - trio.current_time()
