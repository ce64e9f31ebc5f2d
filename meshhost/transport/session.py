"""Host session core: one authenticated Noise session between two hosts, sans-IO.

Theory of operation.  A :class:`Session` turns bytes from a TCP connection
into events and application calls into bytes, with no I/O of its own:

* ``receive_data(data, now)`` feeds bytes read from the socket; afterwards
  the driver drains ``next_event()`` and sends ``data_to_send()``.
* ``send_request`` / ``send_response`` / ``send_error`` / ``cancel`` /
  ``close`` / ``retire`` queue frames; the driver then drains events and
  sends ``data_to_send()``.
* ``get_timer()`` says when to call ``handle_timer(now)`` next (or None);
  the driver re-reads it after every input.  Time comes only as ``now``
  (any monotonic clock; the driver's), as in aioquic's QuicConnection.

Handshake: ``Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b`` with the prologue
``b"meshhost/2\\x00" + lattice`` and the lattice PSK.  The PSK is mixed in
before message 1, whose (empty) payload carries a MAC under it: a responder
checks that MAC against each PSK it accepts and, if none fits, closes without
writing a byte, having done no Diffie-Hellman and parsed nothing.  Only then
does it send its signed hello (message 2), encrypted under keys the initiator
can derive only with that PSK and its own ephemeral key, so a peer without the
lattice secret (or one replaying a captured message 1) learns nothing.  The
initiator's hello travels in message 3; the responder answers READY (or a
CLOSE saying why it refuses the hello).  Nothing a peer says is used before
it is authenticated by both the PSK and its host-key signature.

Requests: ids are odd for the initiator's requests and even for the
responder's, strictly increasing, so both sides can send requests on the one
session and a reused or reordered id is caught.  A body that does not fit one
frame (or the peer's window) is streamed: the first frame announces the total
size, DATA frames follow, and the sender never has more bytes in flight than
the receiver granted (initial window from the peer's hello, then CREDIT
frames).  Bodies are encrypted lazily in ``data_to_send``, so a 64 MiB reply
costs no more than the window in buffers.

Errors: a peer's bad bytes never raise out of ``receive_data``; the session
closes itself (sending CLOSE with a code when it can) and emits
:class:`SessionEnded` carrying the typed error.  Misuse by the caller raises
``LocalProtocolError`` subclasses.

Timers (all in the core, driven by ``now``): the handshake must finish
within ``handshake_timeout_s`` of the session's creation; an open session
that has received nothing for ``keepalive_interval_s`` sends PING, and one
silent for ``KEEPALIVE_MISSES`` intervals closes with ``unavailable``; one
that carried no application traffic (PING/PONG do not count) for
``idle_timeout_s`` closes with ``ok`` "idle" when nothing is in flight.
Idleness is sampled when a timer fires (``activity`` compared with its
value then), so the hot path reads no clock beyond ``receive_data``'s
``now``; an idle close may come up to one keepalive interval late.

Duplicates: two sessions between the same two hosts (both dialed at once)
are ordered by ``tie_key`` (the initiator's host id, then the handshake
hash), which both ends compute alike; the pool keeps ``survivor(...)`` and
``retire()``s the others, which stop taking requests and close with ``ok``
"duplicate session" as soon as nothing is in flight on them.

Size: this module is over the ~800-line mark on purpose.  It is one state
machine: the handshake, request ids, streams with credit, rekeying and the
timers all read and change the same state (the state, the ciphers, the
pending and inbound tables), and the receive hot path (``_on_frame``) reads
them directly; splitting it would spread one transition table over files.

State table (``_TRANSITIONS``): initiator START -start-> WAIT_MSG2 -msg->
WAIT_READY -msg-> OPEN; responder WAIT_MSG1 -msg-> WAIT_MSG3 -msg-> OPEN;
OPEN -msg-> OPEN; any state -close/fail/lost-> CLOSED, which ignores input.
"""

from __future__ import annotations

import enum
import math
import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from meshhost.config import TransportConfig
from meshhost.errors import (
    ErrorCode,
    FrameError,
    HandshakeRefused,
    HandshakeRejected,
    LocalProtocolError,
    MeshError,
    NoiseError,
    PayloadTooLarge,
    PeerMismatch,
    PeerUnavailable,
    RemoteProtocolError,
    SessionClosed,
    UnsupportedVersion,
)
from meshhost.identity.nkeys import KeyPair
from meshhost.transport import frames as fr
from meshhost.transport.handshake import (
    FEATURES,
    VERSIONS,
    HelloPayload,
    decode_hello,
    encode_hello,
    negotiate,
    prologue,
    sign_static,
)
from meshhost.transport.handshake import (
    MAX_PAYLOAD_BYTES as MAX_HELLO_BYTES,
)
from meshhost.transport.noise import (
    DHLEN,
    TAG_BYTES,
    CipherState,
    HandshakeState,
    KeyPair25519,
)
from meshhost.transport.records import open_record, seal_record

__all__ = [
    "KEEPALIVE_MISSES",
    "PROTOCOL_NAME",
    "CloseCause",
    "Event",
    "HandshakeComplete",
    "LocalIdentity",
    "RequestCancelled",
    "RequestFailed",
    "RequestReceived",
    "ResponseReceived",
    "Session",
    "SessionEnded",
    "State",
    "survivor",
]

PROTOCOL_NAME = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b"
MAX_HANDSHAKE_RECORD = MAX_HELLO_BYTES + 2 * DHLEN + 2 * TAG_BYTES + 64
"""Largest handshake message we accept: keys, tags and the largest hello."""
MIN_TRANSPORT_RECORD = TAG_BYTES + fr.HEADER.size
"""Smallest transport message: a header and its tag."""
MAX_BACKLOG_BYTES = 32 << 20
"""Unsent output beyond this means the peer does not read what it provokes."""
DEFAULT_SEND_CHUNK = 256 << 10
"""``data_to_send`` stops pulling stream chunks past this many bytes."""
MAX_PSKS = 8
"""Lattice PSKs a responder tries on message 1: a rotation needs two; each
candidate costs three keyed hashes and one Poly1305 check (no X25519) per
handshake that fails them all."""
_MAX_RID = (1 << 32) - 1
KEEPALIVE_MISSES = 3
"""Nothing received for this many keepalive intervals (two PINGs unanswered)
ends the session with ``unavailable``: one lost PING on a busy peer is not death."""

_LEN = fr.RECORD_HEADER.pack
_REQ = struct.Struct("!BBHII")
_REQ_MORE = struct.Struct("!BBHIIQ")
_RESP_MORE = struct.Struct("!BBHIQ")
_H = fr.HEADER
_T_READY, _T_REQUEST, _T_RESPONSE, _T_DATA = 1, 2, 3, 4
_REKEY_FRAME = fr.encode_frame(fr.Rekey())


class State(enum.Enum):
    START = "start"
    WAIT_MSG1 = "wait-msg1"
    WAIT_MSG2 = "wait-msg2"
    WAIT_MSG3 = "wait-msg3"
    WAIT_READY = "wait-ready"
    OPEN = "open"
    CLOSED = "closed"


_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.START, "start"): State.WAIT_MSG2,
    (State.WAIT_MSG1, "message"): State.WAIT_MSG3,
    (State.WAIT_MSG2, "message"): State.WAIT_READY,
    (State.WAIT_MSG3, "message"): State.OPEN,
    (State.WAIT_READY, "message"): State.OPEN,
    (State.OPEN, "message"): State.OPEN,
}
_HANDSHAKING = frozenset({State.WAIT_MSG1, State.WAIT_MSG2, State.WAIT_MSG3})


# --- events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The peer is authenticated: ``peer_id`` is its verified ``N...`` key."""

    peer_id: str
    version: int
    features: tuple[str, ...]
    peer_port: int


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A whole request body arrived; answer with send_response or send_error."""

    request_id: int
    channel: int
    payload: bytes
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    request_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """Our request ``request_id`` ended with an error code (sent by the peer or local)."""

    request_id: int
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class RequestCancelled:
    """The peer cancelled its request ``request_id``; stop working on it."""

    request_id: int


class CloseCause(enum.Enum):
    """Why a session closed itself, for the driver's counters; OTHER is anything
    but the core's own timers and duplicate rule (errors, CLOSE, ``close()``)."""

    OTHER = "other"
    HANDSHAKE_TIMEOUT = "handshake-timeout"
    KEEPALIVE_TIMEOUT = "keepalive-timeout"
    IDLE = "idle"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session is over. ``error`` is what to raise to callers still waiting."""

    code: ErrorCode
    message: str
    by_peer: bool
    error: MeshError | None
    cause: CloseCause = CloseCause.OTHER


Event = (
    HandshakeComplete
    | RequestReceived
    | ResponseReceived
    | RequestFailed
    | RequestCancelled
    | SessionEnded
)


# --- identity ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalIdentity:
    """Our host key, our Noise static key and the signature binding them.

    Made once per transport (signing costs ~20 µs) and shared by its sessions.
    """

    keypair: KeyPair
    static: KeyPair25519
    signature: bytes

    @classmethod
    def create(cls, keypair: KeyPair, random_bytes: Callable[[int], bytes]) -> LocalIdentity:
        static = KeyPair25519.from_private(random_bytes(DHLEN))
        return cls(keypair, static, sign_static(keypair, static.public))

    @property
    def host_id(self) -> str:
        return self.keypair.public_key


# --- streams -----------------------------------------------------------------


class _Reassembly:
    """An incoming body being received in chunks, with the credit we granted."""

    __slots__ = ("granted", "parts", "received", "total", "unacked")

    def __init__(self, total: int, granted: int) -> None:
        self.total = total
        self.granted = granted
        self.received = 0
        self.unacked = 0
        self.parts: list[bytes | memoryview] = []


class _Outgoing:
    """A body being sent in chunks as the peer's credit allows."""

    __slots__ = ("aborted", "channel", "credit", "kind", "offset", "rid", "timeout_ms", "view")

    def __init__(
        self, kind: int, rid: int, channel: int, timeout_ms: int, payload: bytes, credit: int
    ) -> None:
        self.kind = kind
        self.rid = rid
        self.channel = channel
        self.timeout_ms = timeout_ms
        self.view = memoryview(payload)
        self.offset = 0
        self.credit = credit
        self.aborted = False


class _Inbound:
    """A request from the peer: being received (``body``) or being handled."""

    __slots__ = ("body", "channel", "timeout_ms")

    def __init__(self, channel: int, timeout_ms: int, body: _Reassembly | None) -> None:
        self.channel = channel
        self.timeout_ms = timeout_ms
        self.body = body


# --- session -----------------------------------------------------------------


class Session:
    """One session with one peer; see the module docstring for the protocol.

    ``expected_peer`` (initiator only) fails the handshake with PeerMismatch
    if the responder's verified host id differs.  ``listen_port`` is sent in
    our hello so the peer can reuse this session for requests to our address.
    ``psk`` is the lattice PSK an initiator uses; a responder also accepts
    ``accepted_psks`` (the other secrets of a keyring being rotated, at most
    ``MAX_PSKS`` in all) and records the one the initiator proved in ``psk``.
    ``fresh_ephemeral`` (responder only) is asked, once message 1 has proven
    the PSK, whether the initiator's ephemeral key is new; ``False`` (a
    replayed message 1) closes the connection without a word, like a wrong PSK.
    ``now`` is when the connection was made (the handshake deadline counts
    from it); ``keepalive_interval_s`` defaults to ``min(config's,
    idle_timeout_s / 4)``, so a silent peer is found out before idleness.
    """

    versions: tuple[int, ...] = VERSIONS
    """Protocol versions offered and accepted (a class attribute: tests play an
    older peer by overriding it)."""

    def __init__(
        self,
        *,
        initiator: bool,
        identity: LocalIdentity,
        lattice: str,
        psk: bytes,
        config: TransportConfig,
        random_bytes: Callable[[int], bytes],
        listen_port: int = 0,
        expected_peer: str | None = None,
        accepted_psks: Sequence[bytes] = (),
        fresh_ephemeral: Callable[[bytes], bool] | None = None,
        now: float,
        keepalive_interval_s: float | None = None,
    ) -> None:
        if keepalive_interval_s is None:
            # TCP's own keepalive waits two hours by default, and a peer whose
            # packets are dropped (firewall, dead host, cut cable) never sends
            # a RST or FIN: declare it dead well before the idle timeout.
            keepalive_interval_s = min(config.keepalive_interval_s, config.idle_timeout_s / 4)
        if not math.isfinite(keepalive_interval_s) or keepalive_interval_s <= 0:
            raise LocalProtocolError(
                f"keepalive_interval_s must be a positive number, got {keepalive_interval_s}"
            )
        if len(psk) != 32:
            raise LocalProtocolError(f"the lattice PSK must be 32 bytes, got {len(psk)}")
        candidates = [bytes(psk)]
        for other in accepted_psks:
            if len(other) != 32:
                raise LocalProtocolError(f"the lattice PSK must be 32 bytes, got {len(other)}")
            if bytes(other) not in candidates:
                candidates.append(bytes(other))
        if len(candidates) > MAX_PSKS:
            raise LocalProtocolError(
                f"at most {MAX_PSKS} lattice PSKs may be accepted at once, got {len(candidates)}"
            )
        self._psks = candidates
        self.psk = candidates[0]
        """The PSK this session uses (responder: the one the initiator proved)."""
        self.psk_refused = False
        """Initiator: the responder hung up right after message 1 without a byte,
        so it most likely does not accept our PSK (rotation in progress)."""
        self.replayed = False
        """Responder: message 1 authenticated but its ephemeral key was seen before."""
        self._fresh_ephemeral = fresh_ephemeral
        self.initiator = initiator
        self.state = State.START if initiator else State.WAIT_MSG1
        self._identity = identity
        self._config = config
        self._expected_peer = expected_peer
        self._listen_port = listen_port
        self._hs: HandshakeState | None = HandshakeState(
            PROTOCOL_NAME,
            initiator=initiator,
            prologue=prologue(lattice),
            s=identity.static,
            psks=[psk],
            random_bytes=random_bytes,
        )
        self.peer_id: str | None = None
        self.peer_port = 0
        self.version = 0
        self.features: tuple[str, ...] = ()
        self.handshake_hash = b""
        self._peer_window = 0
        self._window = config.stream_window_bytes
        self._max_payload = config.max_payload_bytes
        self._max_inbound = config.max_concurrent_requests
        self._rekey_after = config.rekey_after_messages
        self._send: CipherState | None = None
        self._recv: CipherState | None = None
        self._sent_since_rekey = 0
        self._out = bytearray()
        self._out_frames = 0
        self._in = bytearray()
        self._events: deque[Event] = deque()
        self._next_rid = 1 if initiator else 2
        self._peer_parity = 0 if initiator else 1
        self._last_peer_rid = 0
        self._pending: dict[int, _Reassembly | None] = {}
        self._inbound: dict[int, _Inbound] = {}
        self._streams: dict[int, _Outgoing] = {}
        self._ready: deque[_Outgoing] = deque()
        self._buffered = 0
        self.rekeys = 0
        self.streams_sent = 0
        self.streams_received = 0
        """Bodies too big for one frame, sent and received in chunks (monitoring)."""
        self._keepalive_records = 0
        self.pongs_received = 0
        self.pings_sent = 0
        # Timers (see the module docstring); all times are the driver's ``now``.
        self._handshake_deadline = now + config.handshake_timeout_s
        self._keepalive_s = keepalive_interval_s
        self._idle_s = config.idle_timeout_s
        self._last_rx = now
        """When bytes last arrived (liveness; PONGs count)."""
        self._last_ping = -math.inf
        self._active_at = now
        """When application traffic was last noticed (idleness; PINGs do not)."""
        self._activity_seen = 0
        self.retiring = False
        """A duplicate being let go: no new requests; closes once nothing is in flight."""

    # -- introspection -------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.state is State.OPEN

    @property
    def is_closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def usable(self) -> bool:
        """Open and not retiring: new requests may be sent on it."""
        return self.state is State.OPEN and not self.retiring

    @property
    def keepalive_interval_s(self) -> float:
        return self._keepalive_s

    @property
    def tie_key(self) -> tuple[str, bytes]:
        """Order of duplicate sessions between one pair of hosts; both ends of one
        session compute the same key (the initiator's host id, the handshake hash).
        Only for an open session."""
        peer = self.peer_id
        if peer is None or self.state is not State.OPEN:
            raise LocalProtocolError("only an open session has a tie key")
        return (self._identity.host_id if self.initiator else peer, self.handshake_hash)

    @property
    def outstanding(self) -> int:
        """Requests in progress in either direction (0 means the session is idle)."""
        return len(self._pending) + len(self._inbound)

    @property
    def activity(self) -> int:
        """Records sent and received so far other than PING and PONG.

        Grows whenever the session carries application traffic (requests,
        replies, chunks, credit); keepalives leave it unchanged, so a driver
        can tell an idle session from a silent one without a clock read per
        frame.
        """
        sent = self._send.n if self._send is not None else 0
        received = self._recv.n if self._recv is not None else 0
        return sent + received - self._keepalive_records

    @property
    def queued_frames(self) -> int:
        """Frames waiting in ``data_to_send`` plus streams with chunks to send."""
        return self._out_frames + len(self._ready)

    def next_event(self) -> Event | None:
        """Pop the oldest event, or None."""
        return self._events.popleft() if self._events else None

    # -- timers --------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must run next (the driver's time), or None once closed.

        Handshaking: the handshake deadline.  Open: the earliest of the next
        PING, the keepalive death and the idle timeout.  The value changes
        with input (``receive_data``), so re-read it after each one.
        """
        state = self.state
        if state is State.OPEN:
            interval = self._keepalive_s
            last_rx = self._last_rx
            return min(
                max(last_rx, self._last_ping) + interval,
                last_rx + interval * KEEPALIVE_MISSES,
                self._active_at + self._idle_s,
            )
        if state is State.CLOSED:
            return None
        return self._handshake_deadline

    def handle_timer(self, now: float) -> None:
        """Run whatever timer is due at ``now`` (nothing if none is; calling early is fine).

        May close the session (SessionEnded with cause HANDSHAKE_TIMEOUT,
        KEEPALIVE_TIMEOUT or IDLE) or queue a PING (``pings_sent`` grows).
        Liveness counts any bytes from the peer (PONGs included); idleness
        counts only application traffic (``activity``), so pings find a dead
        peer without keeping an unused session open.
        """
        state = self.state
        if state is State.CLOSED:
            return
        if state is not State.OPEN:
            if now >= self._handshake_deadline:
                if state is State.WAIT_MSG1:
                    message = "no handshake message 1 in time"
                else:
                    message = f"handshake not finished in {self._config.handshake_timeout_s} s"
                self._closed(
                    ErrorCode.UNAVAILABLE,
                    message,
                    by_peer=False,
                    error=PeerUnavailable(message),
                    cause=CloseCause.HANDSHAKE_TIMEOUT,
                )
            return
        interval = self._keepalive_s
        activity = self.activity
        if activity != self._activity_seen:
            self._activity_seen = activity
            self._active_at = now
        if now >= self._last_rx + interval * KEEPALIVE_MISSES:
            silent = now - self._last_rx
            self._close(
                ErrorCode.UNAVAILABLE,
                f"peer silent for {silent:.1f} s despite keepalive pings",
                CloseCause.KEEPALIVE_TIMEOUT,
            )
            return
        if now >= self._active_at + self._idle_s:
            if not self._pending and not self._inbound:
                self._close(ErrorCode.OK, "idle", CloseCause.IDLE)
                return
            # Requests in flight have their own deadlines; idleness counts again from now.
            self._active_at = now
        if now >= max(self._last_rx, self._last_ping) + interval:
            self._last_ping = now
            self.pings_sent += 1
            self.ping(self.pings_sent)

    # -- duplicates ----------------------------------------------------------

    def retire(self) -> None:
        """Let this session go in favour of a duplicate: ``usable`` turns False at
        once, and the session closes with ``ok`` "duplicate session" (cause
        DUPLICATE) as soon as no request is in flight either way (now, if none
        is).  Its callers may retry on the survivor.  No-op unless open."""
        if self.state is State.OPEN and not self.retiring:
            self.retiring = True
            self._close_if_retired()

    def _close_if_retired(self) -> None:
        if self.retiring and not self._pending and not self._inbound and self.is_open:
            self._close(ErrorCode.OK, "duplicate session", CloseCause.DUPLICATE)

    # -- output --------------------------------------------------------------

    def data_to_send(self, max_bytes: int = DEFAULT_SEND_CHUNK) -> bytes | bytearray:
        """Return bytes to write to the socket (possibly empty), pulling stream
        chunks until about ``max_bytes`` are ready; the caller owns the result."""
        ready = self._ready
        while ready and len(self._out) < max_bytes:
            stream = ready.popleft()
            if stream.aborted:
                continue
            self._pump(stream)
            if stream.offset >= len(stream.view):
                if self._streams.get(stream.rid) is stream:
                    del self._streams[stream.rid]
            elif stream.credit > 0:
                ready.append(stream)
        out = self._out
        if not out:
            return b""  # keep the (empty) buffer; no allocation on idle flushes
        self._out = bytearray()
        self._out_frames = 0
        return out

    def _emit(self, head: bytes, body: bytes | memoryview = b"") -> None:
        send = self._send
        assert send is not None
        out = self._out
        seal_record(send, out, head, body)
        self._out_frames += 1
        self._sent_since_rekey += 1
        if self._sent_since_rekey >= self._rekey_after:
            # Announce, then switch: the peer rekeys right after decrypting REKEY.
            seal_record(send, out, _REKEY_FRAME)
            send.rekey()
            self._sent_since_rekey = 0
            self.rekeys += 1

    def _pump(self, s: _Outgoing) -> None:
        size = len(s.view)
        n = min(fr.CHUNK_BYTES, size - s.offset, s.credit)
        chunk = s.view[s.offset : s.offset + n]
        if s.offset == 0:
            if s.kind == _T_REQUEST:
                head = _REQ_MORE.pack(
                    _T_REQUEST, fr.FLAG_MORE, s.channel, s.rid, s.timeout_ms, size
                )
            else:
                head = _RESP_MORE.pack(_T_RESPONSE, fr.FLAG_MORE, 0, s.rid, size)
        else:
            more = fr.FLAG_MORE if s.offset + n < size else 0
            head = _H.pack(_T_DATA, more, 0, s.rid)
        self._emit(head, chunk)
        s.offset += n
        s.credit -= n

    def _queue_body(self, kind: int, rid: int, channel: int, timeout_ms: int, body: bytes) -> None:
        size = len(body)
        if size <= fr.CHUNK_BYTES and size <= self._peer_window:
            if kind == _T_REQUEST:
                self._emit(_REQ.pack(_T_REQUEST, 0, channel, rid, timeout_ms), body)
            else:
                self._emit(_H.pack(_T_RESPONSE, 0, 0, rid), body)
            return
        stream = _Outgoing(kind, rid, channel, timeout_ms, body, self._peer_window)
        # The first frame goes out now, so the peer sees REQUEST frames in id
        # order even when small requests overtake the rest of this body.
        self._pump(stream)
        self._streams[rid] = stream
        self.streams_sent += 1
        if stream.credit > 0:
            self._ready.append(stream)

    def _abort_stream(self, rid: int) -> None:
        stream = self._streams.pop(rid, None)
        if stream is not None:
            stream.aborted = True

    # -- application calls ---------------------------------------------------

    def start(self) -> None:
        """Initiator: write the first handshake message."""
        self._transition("start")
        assert self._hs is not None
        self._record(self._hs.write_message(b""))

    def send_request(self, channel: int, payload: bytes, timeout_ms: int = 0) -> int:
        """Queue a request; return its id. The reply comes as ResponseReceived
        or RequestFailed with that id. Raises PayloadTooLarge or
        LocalProtocolError (session not open, bad channel)."""
        if self.state is not State.OPEN:
            raise LocalProtocolError(
                f"cannot send a request on a session in state {self.state.value}"
            )
        if not 0 <= channel <= 0xFFFF:
            raise LocalProtocolError(f"channel must be within 0..65535, got {channel}")
        if len(payload) > self._max_payload:
            raise PayloadTooLarge(
                f"request body of {len(payload)} bytes is over the limit of {self._max_payload}"
            )
        rid = self._next_rid
        if rid > _MAX_RID:
            raise LocalProtocolError("request ids of this session are used up; open a new session")
        self._next_rid = rid + 2
        self._pending[rid] = None
        self._queue_body(_T_REQUEST, rid, channel, min(max(timeout_ms, 0), 0xFFFFFFFF), payload)
        return rid

    def send_response(self, request_id: int, payload: bytes) -> bool:
        """Queue the reply to the peer's request; False if it was cancelled meanwhile.
        A body over max_payload_bytes is replaced by a ``too_large`` error."""
        if self.state is not State.OPEN or self._inbound.pop(request_id, None) is None:
            return False
        if len(payload) > self._max_payload:
            self._emit(
                fr.encode_frame(
                    fr.Error(
                        request_id,
                        ErrorCode.TOO_LARGE,
                        f"reply of {len(payload)} bytes is over the limit",
                    )
                )
            )
            self._close_if_retired()
            return True
        self._queue_body(_T_RESPONSE, request_id, 0, 0, payload)
        if self.retiring:
            self._close_if_retired()
        return True

    def send_error(self, request_id: int, code: ErrorCode, message: str) -> bool:
        """Answer the peer's request with an error; False if it was cancelled meanwhile."""
        if self.state is not State.OPEN or self._inbound.pop(request_id, None) is None:
            return False
        self._emit(fr.encode_frame(fr.Error(request_id, ErrorCode(code), message)))
        self._close_if_retired()
        return True

    def cancel(self, request_id: int) -> None:
        """Give up on our request: tell the peer, forget the reply. Idempotent."""
        if request_id not in self._pending:
            return
        body = self._pending.pop(request_id)
        if body is not None:
            self._buffered -= body.received
        self._abort_stream(request_id)
        if self.state is State.OPEN:
            self._emit(fr.encode_frame(fr.Cancel(request_id)))
            self._close_if_retired()

    def ping(self, opaque: int = 0) -> None:
        """Queue a PING (keepalive); the peer answers PONG. No-op unless open."""
        if self.state is State.OPEN:
            self._keepalive_records += 1
            self._emit(fr.encode_frame(fr.Ping(opaque & 0xFFFFFFFFFFFFFFFF)))

    def close(self, code: ErrorCode = ErrorCode.OK, message: str = "") -> None:
        """Close gracefully: send CLOSE (if open) and emit SessionEnded. Idempotent."""
        self._close(code, message, CloseCause.OTHER)

    def _close(self, code: ErrorCode, message: str, cause: CloseCause) -> None:
        if self.state is State.CLOSED:
            return
        if self.state is State.OPEN:
            self._emit(fr.encode_frame(fr.Close(code, message)))
        self._closed(
            code,
            message,
            by_peer=False,
            error=SessionClosed(
                f"session closed by us: {code.name.lower()}{': ' + message if message else ''}",
                code,
            ),
            cause=cause,
        )

    def connection_lost(self) -> None:
        """The TCP connection ended (EOF or error) without a CLOSE frame."""
        if self.state is State.CLOSED:
            return
        if self.state is State.OPEN:
            who = self.peer_id or "peer"
            self._closed(
                ErrorCode.UNAVAILABLE,
                "connection lost",
                by_peer=True,
                error=SessionClosed(f"connection to {who} lost", ErrorCode.UNAVAILABLE),
            )
        else:
            # After message 1 the responder either answers message 2 or, when
            # none of its PSKs verifies our message 1, hangs up without a word.
            self.psk_refused = self.state is State.WAIT_MSG2
            message = (
                "peer closed the connection during the handshake: it does not share our "
                "lattice secret, or it refused us (connection limit, shutting down)"
            )
            if self.state is State.WAIT_MSG3:
                # It read our hello and hung up: what an older host does when it
                # cannot speak our version (it cannot tell us why before message 3).
                message = (
                    "peer closed the connection after reading our hello: it may speak "
                    f"another meshhost protocol version (this host speaks "
                    f"{', '.join(map(str, self.versions))}; its log says which), or it "
                    "expected another host at this address"
                )
            error = HandshakeRefused(message) if self.psk_refused else PeerUnavailable(message)
            self._closed(ErrorCode.UNAVAILABLE, message, by_peer=True, error=error)

    # -- input ---------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray, now: float) -> None:
        """Feed bytes read from the connection at time ``now``. Never raises for
        bad peer input: the session closes itself and emits SessionEnded instead."""
        if self.state is State.CLOSED or not data:
            return
        self._last_rx = now
        try:
            if self._in:
                self._in += data
                data = self._in
                self._in = bytearray()
            pos = 0
            end = len(data)
            while end - pos >= 2:
                n = (data[pos] << 8) | data[pos + 1]
                self._check_record_size(n)
                if end - pos - 2 < n:
                    break
                self._on_record(data, pos + 2, n)
                pos += 2 + n
                if self.is_closed:
                    return
            if pos < end:
                self._in = bytearray(memoryview(data)[pos:])
            if len(self._out) > MAX_BACKLOG_BYTES:
                raise _Overloaded("peer does not read what it asks for: output backlog over limit")
        except RemoteProtocolError as exc:
            self._fail(exc)
            return
        if self.retiring:
            self._close_if_retired()

    def _check_record_size(self, n: int) -> None:
        if self.state in _HANDSHAKING:
            if n > MAX_HANDSHAKE_RECORD:
                raise FrameError(
                    f"handshake message of {n} bytes announced, limit {MAX_HANDSHAKE_RECORD}"
                )
        elif n < MIN_TRANSPORT_RECORD:
            raise FrameError(f"transport message of {n} bytes is too short to be a frame")

    def _record(self, message: bytes) -> None:
        self._out += _LEN(len(message))
        self._out += message
        self._out_frames += 1

    def _transition(self, what: str) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, what)]
        except KeyError:
            raise LocalProtocolError(
                f"{what!r} is not allowed in state {self.state.value}"
            ) from None

    def _on_record(self, data: bytes | bytearray, start: int, size: int) -> None:
        state = self.state
        if state is State.OPEN:
            recv = self._recv
            assert recv is not None
            self._on_frame(open_record(recv, data, start, size))
            return
        if state is State.WAIT_READY:
            self._on_ready(data, start, size)
            return
        record = bytes(data[start : start + size])
        hs = self._hs
        assert hs is not None
        if state is State.WAIT_MSG1:
            hs = self._read_msg1(hs, record)
            if self._fresh_ephemeral is not None:
                assert hs.re is not None
                if not self._fresh_ephemeral(hs.re):
                    self.replayed = True
                    raise HandshakeRejected(
                        "handshake message 1 is a replay: its ephemeral key was seen before"
                    )
            self._transition("message")
            self._record(hs.write_message(self._hello()))
        elif state is State.WAIT_MSG2:
            try:
                payload = hs.read_message(record)
            except NoiseError:
                # The responder proved our PSK by answering at all (it checks
                # message 1 first), so this is tampering or a broken peer.
                raise HandshakeRejected(
                    "handshake message 2 did not decrypt: tampered in transit, or the peer "
                    "does not speak this protocol"
                ) from None
            hello = self._accept_hello(payload, hs)
            if self._expected_peer is not None and hello.host != self._expected_peer:
                raise _Mismatch(
                    f"the host at this address is {hello.host}, not {self._expected_peer}"
                )
            self._transition("message")
            self._record(hs.write_message(self._hello()))
            self._send, self._recv = hs.split()
            self.handshake_hash = hs.handshake_hash
        elif state is State.WAIT_MSG3:
            try:
                payload = hs.read_message(record)
            except NoiseError:
                raise HandshakeRejected(
                    "handshake message 3 did not decrypt: tampered in transit, or the peer "
                    "does not hold the static key it announced"
                ) from None
            # Split first: the initiator proved the PSK, so a refusal of its hello
            # can be sent to it encrypted (see _fail).
            self._send, self._recv = hs.split()
            self._accept_hello(payload, hs)
            self._transition("message")
            self.handshake_hash = hs.handshake_hash
            self._hs = None
            self._emit(fr.encode_frame(fr.Ready()))
            self._opened()

    def _hello(self) -> bytes:
        # Encoded only when sent: a responder sends it only to a peer that
        # proved the PSK, and a stranger should cost no work beyond the MAC.
        identity = self._identity
        return encode_hello(
            HelloPayload(
                host=identity.host_id,
                sig=identity.signature,
                versions=self.versions,
                features=FEATURES,
                port=self._listen_port,
                window=self._config.stream_window_bytes,
            )
        )

    def _read_msg1(self, hs: HandshakeState, record: bytes) -> HandshakeState:
        """Read message 1 with whichever accepted PSK the initiator used.

        With psk0 the PSK keys the MAC on message 1's payload, so each
        candidate is tried on its own copy of the fresh handshake state; the
        first that verifies wins.  The cost per candidate is three keyed
        hashes and a Poly1305 check: a stranger gets no X25519 out of us.
        """
        psks = self._psks
        for psk in psks:
            trial = hs.fork(psks=[psk]) if len(psks) > 1 else hs
            try:
                trial.read_message(record)  # an ephemeral key and an empty payload
            except NoiseError:
                continue
            self._hs = trial
            self.psk = psk
            return trial
        raise HandshakeRejected(
            "handshake message 1 did not verify: the peer does not hold any of our lattice "
            "secrets, or uses another lattice name or protocol version"
        )

    def _accept_hello(self, payload: bytes, hs: HandshakeState) -> HelloPayload:
        rs = hs.remote_static
        assert rs is not None
        hello = decode_hello(payload, rs)
        self.version, self.features = negotiate(hello, self.versions)
        self.peer_id = hello.host
        self.peer_port = hello.port
        self._peer_window = hello.window
        return hello

    def _on_ready(self, data: bytes | bytearray, start: int, size: int) -> None:
        recv = self._recv
        assert recv is not None
        try:
            plaintext = open_record(recv, data, start, size)
        except NoiseError:
            raise HandshakeRejected(
                "the responder's first frame did not decrypt: tampered in transit"
            ) from None
        frame = fr.decode_frame(bytes(plaintext))
        if isinstance(frame, fr.Close):
            text = f"peer refused the handshake: {frame.code.name.lower()}: {frame.message}"
            error = (
                UnsupportedVersion(text)
                if frame.code == ErrorCode.UNSUPPORTED
                else HandshakeRejected(text)
            )
            self._closed(frame.code, frame.message, by_peer=True, error=error)
            return
        if not isinstance(frame, fr.Ready):
            raise FrameError("the responder's first frame must be READY")
        self._transition("message")
        self._hs = None
        self._opened()

    def _opened(self) -> None:
        assert self.peer_id is not None
        self._active_at = self._last_rx
        self._activity_seen = self.activity
        self._events.append(
            HandshakeComplete(self.peer_id, self.version, self.features, self.peer_port)
        )

    # -- frames --------------------------------------------------------------

    def _on_frame(self, plaintext: memoryview) -> None:
        # Hot path: requests, responses and chunks parsed without a dataclass;
        # ``plaintext`` is scratch memory, so bodies are copied out exactly once.
        if len(plaintext) < _H.size:
            raise FrameError(f"frame of {len(plaintext)} bytes is shorter than its header")
        kind = plaintext[0]
        if kind == _T_DATA and plaintext[1] == fr.FLAG_MORE:
            _, _, channel, rid = _H.unpack_from(plaintext)
            if channel or not rid:
                raise FrameError("DATA frame carries a channel or request id 0")
            self._on_data(rid, bytes(plaintext[8:]), True)
            return
        if plaintext[1] == 0:
            if kind == _T_RESPONSE:
                _, _, channel, rid = _H.unpack_from(plaintext)
                if channel:
                    raise FrameError("RESPONSE frame carries a channel; only REQUEST may")
                self._on_response(rid, bytes(plaintext[8:]), None)
                return
            if kind == _T_DATA:
                _, _, channel, rid = _H.unpack_from(plaintext)
                if channel or not rid:
                    raise FrameError("DATA frame carries a channel or request id 0")
                self._on_data(rid, bytes(plaintext[8:]), False)
                return
            if kind == _T_REQUEST and len(plaintext) >= _REQ.size:
                _, _, channel, rid, timeout_ms = _REQ.unpack_from(plaintext)
                body = bytes(plaintext[_REQ.size :])
                self._on_request_start(rid, channel, timeout_ms, body, None)
                return
        frame = fr.decode_frame(bytes(plaintext))
        if isinstance(frame, fr.Response):
            self._on_response(frame.request_id, frame.body, frame.total)
        elif isinstance(frame, fr.Request):
            self._on_request_start(
                frame.request_id, frame.channel, frame.timeout_ms, frame.body, frame.total
            )
        elif isinstance(frame, fr.Data):  # pragma: no cover - handled by the fast path
            self._on_data(frame.request_id, frame.body, frame.more)
        elif isinstance(frame, fr.Credit):
            self._on_credit(frame)
        elif isinstance(frame, fr.Error):
            self._on_error(frame)
        elif isinstance(frame, fr.Cancel):
            self._on_cancel(frame)
        elif isinstance(frame, fr.Ping):
            self._keepalive_records += 2  # the PING and our PONG
            self._emit(fr.encode_frame(fr.Pong(frame.opaque)))
        elif isinstance(frame, fr.Pong):
            self._keepalive_records += 1
            self.pongs_received += 1
        elif isinstance(frame, fr.Close):
            message = f"peer closed the session: {frame.code.name.lower()}"
            if frame.message:
                message += f": {frame.message}"
            self._closed(
                frame.code,
                frame.message,
                by_peer=True,
                error=SessionClosed(message, frame.code),
            )
        elif isinstance(frame, fr.Rekey):
            recv = self._recv
            assert recv is not None
            recv.rekey()
        else:  # READY after the handshake
            raise FrameError(f"unexpected {type(frame).__name__.upper()} frame in an open session")

    def _mine(self, rid: int) -> bool:
        return rid % 2 != self._peer_parity

    def _on_request_start(
        self, rid: int, channel: int, timeout_ms: int, body: bytes, total: int | None
    ) -> None:
        if rid % 2 != self._peer_parity or rid <= self._last_peer_rid:
            raise FrameError(f"request id {rid} is reused, out of order or of the wrong side")
        self._last_peer_rid = rid
        if total is not None:
            if total > self._max_payload:
                self._emit(
                    fr.encode_frame(
                        fr.Error(
                            rid,
                            ErrorCode.TOO_LARGE,
                            f"request body of {total} bytes is over the limit {self._max_payload}",
                        )
                    )
                )
                return
            if total <= len(body):
                raise FrameError("a streamed request must announce more bytes than its first frame")
        if len(self._inbound) >= self._max_inbound:
            self._emit(
                fr.encode_frame(
                    fr.Error(
                        rid, ErrorCode.OVERLOADED, "too many requests in progress; retry later"
                    )
                )
            )
            return
        if total is None:
            if len(body) > self._window:
                raise FrameError("request body exceeds the stream window we granted")
            self._inbound[rid] = _Inbound(channel, timeout_ms, None)
            self._events.append(RequestReceived(rid, channel, body, timeout_ms))
            return
        asm = _Reassembly(total, self._window)
        self.streams_received += 1
        self._inbound[rid] = _Inbound(channel, timeout_ms, asm)
        self._add_chunk(rid, asm, body, more=True)

    def _add_chunk(self, rid: int, asm: _Reassembly, body: bytes | memoryview, more: bool) -> bool:
        """Append a chunk; return True when the body is complete."""
        n = len(body)
        received = asm.received + n
        if received > asm.granted:
            raise FrameError(f"peer sent more than the credit it was given for request {rid}")
        if received > asm.total:
            raise FrameError(
                f"body of request {rid} is longer than the {asm.total} bytes announced"
            )
        if not more and received != asm.total:
            raise FrameError(f"body of request {rid} ended at {received} of {asm.total} bytes")
        if more and received == asm.total:
            raise FrameError(f"body of request {rid} is complete but more data is announced")
        if n:
            asm.parts.append(body)
        asm.received = received
        asm.unacked += n
        self._buffered += n
        if not more:
            self._buffered -= asm.total
            return True
        self._grant(rid, asm)
        return False

    def _grant(self, rid: int, asm: _Reassembly) -> None:
        # Give credit back once half a window is used, unless this session already
        # buffers a maximum-size body: then senders wait until bodies complete.
        if asm.unacked >= self._window // 2 and self._buffered <= self._max_payload:
            self._emit(fr.encode_frame(fr.Credit(rid, asm.unacked)))
            asm.granted += asm.unacked
            asm.unacked = 0

    def _regrant_all(self) -> None:
        for rid, inbound in self._inbound.items():
            if inbound.body is not None:
                self._grant(rid, inbound.body)
        for rid, asm in self._pending.items():
            if asm is not None:
                self._grant(rid, asm)

    def _on_data(self, rid: int, body: bytes | memoryview, more: bool) -> None:
        if self._mine(rid):
            if rid not in self._pending:
                if rid < self._next_rid:
                    return  # a reply we cancelled or gave up on
                raise FrameError(f"DATA for request {rid} that we never sent")
            asm = self._pending[rid]
            if asm is None:
                raise FrameError(f"DATA for request {rid} before its RESPONSE")
            if self._add_chunk(rid, asm, body, more):
                del self._pending[rid]
                self._events.append(ResponseReceived(rid, b"".join(asm.parts)))
                self._regrant_all()
            return
        inbound = self._inbound.get(rid)
        if inbound is None:
            if rid <= self._last_peer_rid:
                return  # a request we refused or that was cancelled
            raise FrameError(f"DATA for request {rid} that was never started")
        asm = inbound.body
        if asm is None:
            raise FrameError(f"DATA for request {rid} after its body ended")
        if self._add_chunk(rid, asm, body, more):
            inbound.body = None
            self._events.append(
                RequestReceived(rid, inbound.channel, b"".join(asm.parts), inbound.timeout_ms)
            )
            self._regrant_all()

    def _on_response(self, rid: int, body: bytes, total: int | None) -> None:
        if not self._mine(rid) or rid >= self._next_rid:
            raise FrameError(f"RESPONSE for request {rid} that we never sent")
        if rid not in self._pending:
            return  # cancelled or timed out on our side
        if self._pending[rid] is not None:
            raise FrameError(f"second RESPONSE for request {rid}")
        self._abort_stream(rid)  # the peer answered before taking all of our body
        if total is None:
            if len(body) > self._window:
                raise FrameError("reply body exceeds the stream window we granted")
            del self._pending[rid]
            self._events.append(ResponseReceived(rid, body))
            return
        if total > self._max_payload:
            self.cancel(rid)
            self._events.append(
                RequestFailed(rid, ErrorCode.TOO_LARGE, f"reply of {total} bytes is over the limit")
            )
            return
        if total <= len(body):
            raise FrameError("a streamed reply must announce more bytes than its first frame")
        asm = _Reassembly(total, self._window)
        self.streams_received += 1
        self._pending[rid] = asm
        self._add_chunk(rid, asm, body, more=True)

    def _on_error(self, frame: fr.Error) -> None:
        rid = frame.request_id
        if not self._mine(rid) or rid >= self._next_rid:
            raise FrameError(f"ERROR for request {rid} that we never sent")
        if rid not in self._pending:
            return
        asm = self._pending.pop(rid)
        if asm is not None:
            self._buffered -= asm.received
        self._abort_stream(rid)
        self._events.append(RequestFailed(rid, frame.code, frame.message))

    def _on_cancel(self, frame: fr.Cancel) -> None:
        rid = frame.request_id
        if self._mine(rid) or rid > self._last_peer_rid:
            raise FrameError(f"CANCEL for request {rid} that the peer never sent")
        inbound = self._inbound.pop(rid, None)
        self._abort_stream(rid)
        if inbound is None:
            return
        if inbound.body is not None:
            self._buffered -= inbound.body.received
            self._regrant_all()
        else:
            self._events.append(RequestCancelled(rid))

    def _on_credit(self, frame: fr.Credit) -> None:
        rid = frame.request_id
        stream = self._streams.get(rid)
        if stream is None:
            known = rid < self._next_rid if self._mine(rid) else rid <= self._last_peer_rid
            if known:
                return  # the body finished or was aborted before the credit arrived
            raise FrameError(f"CREDIT for unknown request {rid}")
        was_blocked = stream.credit <= 0
        stream.credit += frame.increment
        if was_blocked and stream.credit > 0:
            self._ready.append(stream)

    # -- ending --------------------------------------------------------------

    def _fail(self, exc: MeshError, code: ErrorCode | None = None) -> None:
        error: MeshError
        if isinstance(exc, _Mismatch):
            code, error = ErrorCode.UNAUTHENTICATED, PeerMismatch(str(exc))
        else:
            code = code if code is not None else ErrorCode(exc.code)
            error = exc
        if self.state is State.OPEN or (self.state is State.WAIT_MSG3 and self._send is not None):
            self._emit(fr.encode_frame(fr.Close(code, str(exc))))
        self._closed(code, str(exc), by_peer=False, error=error)

    def _closed(
        self,
        code: ErrorCode,
        message: str,
        *,
        by_peer: bool,
        error: MeshError | None,
        cause: CloseCause = CloseCause.OTHER,
    ) -> None:
        self.state = State.CLOSED
        self._hs = None
        self._pending.clear()
        self._inbound.clear()
        self._streams.clear()
        self._ready.clear()
        self._in = bytearray()
        self._buffered = 0
        self._events.append(SessionEnded(code, message, by_peer, error, cause))


class _Mismatch(RemoteProtocolError):
    """Internal: the responder is not the host the caller expected."""

    code = ErrorCode.UNAUTHENTICATED


class _Overloaded(RemoteProtocolError):
    """Internal: the peer provokes output faster than it reads it."""

    code = ErrorCode.OVERLOADED


def survivor(sessions: Iterable[Session]) -> Session:
    """Of open sessions between the same two hosts, the one both hosts keep
    (lowest ``tie_key``); raises ValueError for none."""
    return min(sessions, key=lambda session: session.tie_key)
