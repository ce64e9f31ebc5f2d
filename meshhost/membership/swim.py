"""SWIM + Lifeguard membership core (sans-IO).

Theory of operation.  Every host keeps a view of every other host: alive,
suspect, dead or left, with an *incarnation* number only that host may raise.

* **Probe.**  Every ``probe_interval_s`` (stretched by local health) we ping
  the next host of a shuffled round-robin list.  No ack within
  ``probe_timeout_s``: we ask ``indirect_checks`` random alive hosts to ping it
  for us; they answer with the target's ack, or a *nack* if they got none
  (Lifeguard).  No ack by the end of the probe interval (or once every relay
  has nacked): we *suspect* the target.
* **Suspicion.**  A suspect is declared dead when its timer runs out.  The
  timer starts long and shrinks as other hosts independently suspect it too
  (``suspicion.py``), so a lone confused accuser cannot kill a healthy host.
* **Refutation.**  A host that hears itself suspected or declared dead raises
  its incarnation and broadcasts a new signed alive, which outranks the
  accusation everywhere; it also sends that alive straight back to whoever
  told it (gossip misses a host now and then), and pings are answered after
  the rest of their datagram so the ack carries it.  Just before a suspicion
  expires the observer reminds the suspect directly, once: a live one
  answers at once, so a missed refutation does not become a false death.
  A host that restarts starts from an incarnation
  derived from ``now`` and, should anyone still remember a higher one of its
  previous life, refutes that too: a restarted host always outranks its old
  self.
* **Local health.**  Probes that fail because *our* packets do not get
  through (missing nacks) raise our awareness score, which stretches our
  probe interval and timeouts (``awareness.py``).
* **Gossip.**  Every state change is queued in a transmit-limited queue
  (``broadcast.py``) and piggybacked on every packet we send, and pushed to
  ``gossip_nodes`` random hosts every ``gossip_interval_s``.  Hosts declared
  dead within ``gossip_to_dead_s`` still get gossip, so they can refute.
* **Anti-entropy.**  Every ``push_pull_interval_s`` (scaled up for big
  lattices) we exchange full state with one random host over TCP (the driver
  carries it).  Joining is a push-pull with the seeds plus a UDP hello.
* **Healing.**  Every ``reconnect_interval_s`` we try one failed host (the
  lattice as a whole tries each failed host about once per interval, as
  Serf does): a push-pull plus a UDP ping that tells it it was declared dead.
  A partition therefore heals by itself once packets flow again.
* **Leave.**  ``leave()`` broadcasts a dead-from-self (leave intent); others
  mark the host *left* and forget it after ``dead_tombstone_s``; failed hosts
  are remembered ``reconnect_timeout_s``, so stale alives are refused.

Only alive messages are signed (by the host they are about); suspect and
dead can only provoke a refutation.  Everything a peer sends that breaks the
rules changes nothing: it is counted in :attr:`Swim.stats` and, when it is
malformed or forged, reported as :class:`PeerMisbehaved`.

Driving the core: after any call, drain :meth:`datagrams_to_send` (plaintext
datagrams; the driver seals them), :meth:`next_event`, and
:meth:`push_pull_due` (call until ``None``); then re-arm one timer at
:meth:`get_timer`.

Why this module is long (~1,390 lines): :class:`Swim` is one protocol state
machine. Probing (direct, indirect, relayed acks and nacks), suspicion and
its confirmations, incarnations and refutation, joins, leaves and push-pull
merges all read and change the same member table, probe round and broadcast
queue, and each message handler is a transition over all of them, as
memberlist keeps its state machine in one ``state.go``. What stands alone is
already its own module: the suspicion timer (:mod:`suspicion`), Lifeguard's
awareness (:mod:`awareness`), the broadcast queue (:mod:`broadcast`), the
wire messages (:mod:`messages`), signatures (:mod:`signing`) and events.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any, Protocol

from meshhost.config import MembershipConfig
from meshhost.errors import MembershipDecodeError, MembershipUsageError
from meshhost.identity import short_id
from meshhost.identity.nkeys import KeyPair, Prefix
from meshhost.membership.awareness import Awareness, probe_failure_delta
from meshhost.membership.broadcast import TransmitLimitedQueue
from meshhost.membership.events import (
    MemberAlive,
    MemberDead,
    MemberEvent,
    MemberJoined,
    MemberLeft,
    MemberSuspect,
    MemberUpdated,
    PeerMisbehaved,
)
from meshhost.membership.messages import (
    COMPOUND_HEADER_BYTES,
    MAX_COMPOUND_PARTS,
    MAX_META_BYTES,
    SEALING_OVERHEAD_BYTES,
    Ack,
    Alive,
    Dead,
    IndirectPing,
    Message,
    Nack,
    Ping,
    PushPullEntry,
    Suspect,
    User,
    decode_packet,
    decode_push_pull,
    encode,
    encode_compound,
    encode_push_pull,
    encode_push_pull_entry,
)
from meshhost.membership.shared import (
    LazyMembers,
    LazyShuffle,
    SharedAddrs,
    SharedIdList,
    SharedView,
)
from meshhost.membership.signing import DEFAULT_VERIFIER, AliveVerifier, sign_alive
from meshhost.membership.state import Member, MemberState, accepts
from meshhost.membership.suspicion import Suspicion, suspicion_bounds

__all__ = ["Delegate", "Swim"]

Addr = tuple[str, int]

ALIVE = MemberState.ALIVE
SUSPECT = MemberState.SUSPECT
DEAD = MemberState.DEAD
LEFT = MemberState.LEFT

MAX_PENDING_MISBEHAVED = 64
"""PeerMisbehaved events queued at once; beyond it only counters move, so a
flood of garbage cannot grow memory."""
MAX_SEEDS = 64
"""Seed addresses remembered for retries (discovery proposes them again anyway)."""
MAX_PENDING_PUSH_PULLS = 64
"""Push-pull exchanges waiting for the driver; more would only repeat."""
JOIN_REPLY_WAIT_S = 60.0
"""How long a push-pull to a seed counts as our join (its reply is not re-gossiped)."""
USER_MESSAGE_OVERHEAD = 64
"""Bytes a USER message adds around its payload (type, 56-char sender, headers)."""
PUSH_PULL_SCALE_THRESHOLD = 32
"""Above this many hosts push-pull slows down (memberlist ``pushPullScaleThreshold``)."""
REJOIN_SYNC_GAP_PROBES = 5
"""At most one push-pull per this many probe intervals with a host that came
back from the dead (a healed partition brings many at once)."""
SEQ_MASK = (1 << 32) - 1

# Timer kinds.  Keys are (kind, argument); at equal deadlines the one set
# first fires first.
_PROBE, _PROBE_TIMEOUT, _PROBE_END, _RELAY, _SUSPECT, _GOSSIP, _PUSH_PULL, _RECONNECT = range(8)


class Delegate(Protocol):
    """Lets a higher layer (the directory) ride on membership gossip."""

    def broadcasts(self, limit_bytes: int) -> list[bytes]:
        """Payloads to piggyback, their sizes summing to at most ``limit_bytes``."""
        ...

    def notify_message(self, sender_id: str, payload: bytes) -> None:
        """A payload another host broadcast."""
        ...

    def local_state(self) -> bytes:
        """Full state to send in a push-pull exchange."""
        ...

    def merge_remote_state(self, sender_id: str, data: bytes) -> None:
        """Full state received in a push-pull exchange."""
        ...


class _Entry:
    """What we hold about one host (mutable; snapshots are ``Member``)."""

    __slots__ = (
        "_wire",
        "alive",
        "changed",
        "id",
        "incarnation",
        "pp",
        "state",
        "suspicion",
        "told_at",
    )

    def __init__(self, alive: Alive, state: MemberState, incarnation: int, now: float) -> None:
        self.id = alive.node
        self.alive = alive
        self._wire: bytes | None = None  # encoded alive, made when first needed
        self.state = state
        self.incarnation = incarnation
        self.changed = now
        self.suspicion: Suspicion | None = None
        self.pp: bytes | None = None  # cached push-pull entry encoding
        self.told_at = -math.inf  # last time we told this host news about itself

    @property
    def alive_bytes(self) -> bytes:
        """The signed alive message as sent (encoded once per incarnation)."""
        wire = self._wire
        if wire is None:
            wire = self._wire = encode(self.alive)
        return wire

    def snapshot(self) -> Member:
        a = self.alive
        return Member(self.id, a.addr, self.state, self.incarnation, a.meta)


class _Probe:
    __slots__ = ("acked", "expected_nacks", "indirect", "nacks", "seq", "target")

    def __init__(self, seq: int, target: str) -> None:
        self.seq = seq
        self.target = target
        self.acked = False
        self.indirect = False
        self.expected_nacks = 0
        self.nacks = 0


class _Relay:
    __slots__ = ("nacked", "orig_seq", "requester", "want_nack")

    def __init__(self, orig_seq: int, requester: Addr, want_nack: bool) -> None:
        self.orig_seq = orig_seq
        self.requester = requester
        self.want_nack = want_nack
        self.nacked = False


class _IdList:
    """Ids with O(1) add, remove and uniform random choice."""

    __slots__ = ("_index", "items")

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: str) -> bool:
        return item in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def choice(self, rng: random.Random) -> str:
        """A uniformly random id (the list must not be empty)."""
        items = self.items
        return items[rng.randrange(len(items))]

    def add(self, item: str) -> None:
        if item not in self._index:
            self._index[item] = len(self.items)
            self.items.append(item)

    def discard(self, item: str) -> None:
        i = self._index.pop(item, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self._index[last] = i


class Swim:
    """One host's SWIM + Lifeguard state machine.  See the module docstring.

    ``identity`` is the host's ``N…`` key pair; its public key is the node id.
    ``rng`` is the only source of randomness; ``now`` is seconds on any clock
    that only moves forward (a wall clock makes the start incarnation of a
    restarted host outrank its previous life without a refutation round).
    ``verifier`` caches alive-signature checks (shared per process by default).
    Raises ``MembershipUsageError`` for a non-host key or oversized ``meta``.
    """

    def __init__(
        self,
        identity: KeyPair,
        addr: Addr,
        config: MembershipConfig,
        rng: random.Random,
        now: float,
        meta: bytes = b"",
        delegate: Delegate | None = None,
        *,
        verifier: AliveVerifier | None = None,
    ) -> None:
        if identity.prefix != Prefix.SERVER:
            raise MembershipUsageError(
                f"membership needs a host (N...) key, got a {identity.prefix.name.lower()} key"
            )
        _check_meta(meta)
        meta = bytes(meta)
        self.config = config
        self.id = identity.public_key
        self.addr: Addr = (str(addr[0]), int(addr[1]))
        _check_fits(self.id, self.addr, meta, config)
        self.stats: Counter[str] = Counter()
        """Counters: ``received``, ``malformed``, ``oversized``, ``unknown_type``,
        ``stale``, ``duplicate``, ``forged_alive``, ``wrong_target``,
        ``unknown_node``, ``unexpected_ack``, ``refutations``, ``probes``,
        ``probe_failures``, ``sent``, ``push_pull_merged``, ``push_pull_malformed``,
        ``user_broadcast_dropped``, ``alive_after_accusation`` (an alive at an
        incarnation first heard of from a suspect or dead: its metadata taken)."""
        self._identity = identity
        self._rng = rng
        self._delegate = delegate
        self._verifier = verifier if verifier is not None else DEFAULT_VERIFIER
        self._send_limit = config.udp_packet_bytes - SEALING_OVERHEAD_BYTES
        self._recv_limit = config.udp_packet_bytes
        # With local health off the multiplier can never leave 1.
        self._awareness = Awareness(
            config.awareness_max_multiplier if config.lifeguard_awareness else 1
        )
        self._members: Any = {}  # dict[str, _Entry], or LazyMembers over a SharedView
        self._by_addr: Any = {}  # who sends from where (dict, or SharedAddrs)
        self._live: Any = _IdList()  # alive or suspect, not us (or SharedIdList)
        self._shared = False
        self._lazy_order: LazyShuffle | None = None  # the probe order over a SharedView
        self._failed = _IdList()  # dead (not left)
        self._recent_dead: deque[tuple[float, str]] = deque()
        self._probe_list: list[str] = []
        self._probe_index = 0
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._seq = rng.getrandbits(32)
        self._timers: dict[tuple[int, object], float] = {}
        self._heap: list[tuple[float, int, tuple[int, object]]] = []
        self._counter = itertools.count()
        self._out: list[tuple[Addr, bytes]] = []
        self._events: deque[MemberEvent] = deque()
        self._misbehaved_pending = 0
        self._dead_counted = -1
        """Highest incarnation of ours a peer has declared dead (``stats['dead_refuted']``)."""
        self._pp_queue: list[tuple[Addr, bool]] = []
        self._pp_join_wait: dict[Addr, float] = {}
        self._joining = True
        self._last_rejoin_sync = -math.inf
        self._seeds: dict[Addr, float] = {}  # proposed addresses -> when
        self._left = False
        self._queue = TransmitLimitedQueue(config.retransmit_mult, self._num_nodes)
        # Start incarnation from the clock, so a restarted host outranks its
        # previous life without first being refuted (ms resolution).
        self._incarnation = max(0, int(now * 1000))
        self._self_entry = _Entry(self._sign(meta), ALIVE, self._incarnation, now)
        self._members[self.id] = self._self_entry
        interval = config.probe_interval_s
        # Random phases, so hosts started together do not probe in lockstep.
        self._set_timer((_PROBE, None), now + rng.uniform(0, interval))
        self._set_timer((_PUSH_PULL, None), now + rng.uniform(0.5, 1.0) * self._pp_interval())
        self._set_timer(
            (_RECONNECT, None), now + rng.uniform(0.5, 1.0) * config.reconnect_interval_s
        )
        # Gossip runs on a fixed grid of ticks at a random phase, as
        # memberlist's ticker does: news queued while the queue was empty
        # leaves at the next tick, half an interval later on average, not a
        # whole interval after it was queued.
        self._gossip_phase = now + rng.uniform(0, config.gossip_interval_s)
        if delegate is not None:
            self._set_timer((_GOSSIP, None), self._gossip_phase)

    # -- public API ---------------------------------------------------------

    def adopt_shared_view(self, view: SharedView, now: float) -> None:
        """Start as a member of the converged lattice ``view`` (simulators only).

        Every host of ``view`` becomes known and alive at once, without a
        join: the records stay shared with every other core over ``view``
        until this core touches them (``shared.py``), so a simulator can
        start thousands of hosts in O(n).  Call on a fresh core, whose own
        alive must be the one in ``view``; raises ``MembershipUsageError``
        otherwise.
        """
        if self._live or len(self._members) != 1 or self._shared:
            raise MembershipUsageError("a shared view can only be adopted by a fresh core")
        if view.alives.get(self.id) != self._self_entry.alive:
            raise MembershipUsageError("the shared view holds another alive for this host")

        def make(alive: Alive) -> _Entry:
            return _Entry(alive, ALIVE, alive.incarnation, now)

        self._shared = True
        self._members = LazyMembers(view, make)
        self._members[self.id] = self._self_entry
        self._by_addr = SharedAddrs(view)
        self._live = SharedIdList(view, without=[self.id])
        self._lazy_order = LazyShuffle()
        self._probe_list = []
        self._joining = False
        # The first push-pull was timed for a lattice of one.
        self._set_timer((_PUSH_PULL, None), now + self._rng.uniform(0.5, 1.0) * self._pp_interval())

    @property
    def owned_records(self) -> int:
        """Member records this core holds itself (all of them unless over a shared view)."""
        members = self._members
        return members.owned if self._shared else len(members)

    @property
    def incarnation(self) -> int:
        """Our current incarnation."""
        return self._incarnation

    @property
    def own_alive(self) -> Alive:
        """Our current signed alive message."""
        return self._self_entry.alive

    @property
    def meta(self) -> bytes:
        """Our current metadata."""
        return self._self_entry.alive.meta

    @property
    def awareness(self) -> int:
        """Lifeguard local health score (0 = healthy)."""
        return self._awareness.score

    @property
    def left(self) -> bool:
        """True once :meth:`leave` was called."""
        return self._left

    def members(self) -> list[Member]:
        """Every host we know, ourselves included, dead and left ones too."""
        return [e.snapshot() for e in self._members.values()]

    def member(self, node_id: str) -> Member | None:
        """What we hold about ``node_id``, or None if we do not know it."""
        e = self._members.get(node_id)
        return None if e is None else e.snapshot()

    def is_live(self, node_id: str) -> bool:
        """Whether ``node_id`` is alive or suspect (ourselves: until we leave); O(1)."""
        if node_id == self.id:
            return not self._left
        return node_id in self._live

    def addr_of(self, node_id: str) -> Addr | None:
        """The address we hold for ``node_id`` (any state), or None; no snapshot made."""
        e = self._members.get(node_id)
        return None if e is None else e.alive.addr

    def live_ids(self) -> set[str]:
        """Ids of hosts alive or suspect, ourselves included (cheap)."""
        ids = self._live.to_set() if self._shared else set(self._live.items)
        if not self._left:
            ids.add(self.id)
        return ids

    def alive_ids(self) -> set[str]:
        """Ids of hosts we hold as alive (not suspect), ourselves included."""
        ids: set[str]
        if self._shared:
            ids = self._live.to_set()
            ids.difference_update(
                node for node, e in self._members.own_items() if e.state is not ALIVE
            )
        else:
            members = self._members
            ids = {i for i in self._live.items if members[i].state is ALIVE}
        if not self._left:
            ids.add(self.id)
        return ids

    def join(self, addrs: list[Addr], now: float) -> None:
        """Contact seeds: a push-pull with each (via the driver) and a UDP hello.

        Seeds are only proposals; whoever answers becomes a member.  Our own
        address is skipped.
        """
        # Gossip our alive too (memberlist does at start): the seeds' own
        # re-gossip uses their small early retransmit limits.
        self._broadcast_alive(self.id, self._self_entry.alive_bytes, now)
        for raw in addrs:
            addr = (str(raw[0]), int(raw[1]))
            if addr == self.addr:
                continue
            if addr not in self._seeds and len(self._seeds) >= MAX_SEEDS:
                del self._seeds[next(iter(self._seeds))]
            self._seeds[addr] = now
            self._want_push_pull(addr, join=True)
            parts = [self._self_entry.alive_bytes, encode(Ping(self._next_seq(), "", self.id))]
            self._send(addr, parts)

    def leave(self, now: float) -> None:
        """Announce a graceful leave; we stop probing and only gossip from now."""
        if self._left:
            return
        self._left = True
        msg = Dead(self.id, self._incarnation, self.id)
        self._self_entry.state = LEFT
        self._self_entry.changed = now
        self._self_entry.pp = None
        # Our leave supersedes our alive: nobody should learn it after this.
        self._queue.drop(_alive_key(self.id))
        self._broadcast(encode(msg), self.id, now)
        self._cancel((_PROBE, None))

    def update_meta(self, meta: bytes, now: float) -> None:
        """Publish new metadata with a new incarnation.

        Raises ``MembershipUsageError`` if ``meta`` is larger than
        ``MAX_META_BYTES`` or we have left.
        """
        _check_meta(meta)
        meta = bytes(meta)
        _check_fits(self.id, self.addr, meta, self.config)
        if self._left:
            raise MembershipUsageError("cannot update metadata after leave()")
        self._incarnation = max(self._incarnation + 1, int(now * 1000))
        self._publish_self(meta, now)

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Handle one datagram's plaintext from ``addr``. Never raises for bad bytes."""
        self.stats["received"] += 1
        if len(data) > self._recv_limit:
            self._misbehaved(addr, "oversized", f"datagram of {len(data)} bytes")
            return
        try:
            msgs, unknown = decode_packet(data, self._recv_limit)
        except MembershipDecodeError as exc:
            self._misbehaved(addr, "malformed", str(exc))
            return
        if unknown:
            self.stats["unknown_type"] += unknown
        pings = None
        defer_pings = self.config.refute_at_once
        for msg in msgs:
            if defer_pings and type(msg) is Ping:
                # Answer after the rest of the packet: if it told us we are
                # suspected, the ack then carries our refutation.
                pings = [msg] if pings is None else [*pings, msg]
            else:
                self._dispatch(msg, addr, now)
        if pings is not None:
            for ping in pings:
                self._on_ping(ping, addr, now)
        node = self._by_addr.get(addr)
        if node is not None:
            e = self._find(node)  # only non-alive records (our own) change below
            if e is not None and e.state is DEAD:
                self._tell_dead(e, now)
            elif e is not None and e.state is SUSPECT and self.config.refute_at_once:
                self._tell_suspect(e, now)

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now``."""
        heap = self._heap
        timers = self._timers
        while heap and heap[0][0] <= now:
            deadline, _, key = heapq.heappop(heap)
            if timers.get(key) != deadline:
                continue
            del timers[key]
            kind, arg = key
            if kind == _PROBE:
                self._probe_round(now)
            elif kind == _PROBE_TIMEOUT:
                self._probe_timeout(arg, now)  # type: ignore[arg-type]
            elif kind == _PROBE_END:
                probe = self._probe
                if probe is not None and probe.seq == arg:
                    self._probe_failed(probe, now)
            elif kind == _RELAY:
                self._relay_timeout(arg, now)  # type: ignore[arg-type]
            elif kind == _SUSPECT:
                self._suspicion_expired(arg, now)  # type: ignore[arg-type]
            elif kind == _GOSSIP:
                self._gossip(now)
            elif kind == _PUSH_PULL:
                self._periodic_push_pull(now)
            elif kind == _RECONNECT:
                self._reconnect(now)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called (None: never)."""
        heap = self._heap
        timers = self._timers
        while heap:
            deadline, _, key = heap[0]
            if timers.get(key) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def datagrams_to_send(self) -> list[tuple[Addr, bytes]]:
        """Plaintext datagrams queued since the last call (each fits sealed)."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> MemberEvent | None:
        """The next event, or None."""
        if not self._events:
            return None
        ev = self._events.popleft()
        if type(ev) is PeerMisbehaved:
            self._misbehaved_pending -= 1
        return ev

    def push_pull_due(self, now: float) -> Addr | None:
        """The address of the next push-pull exchange to start, or None.

        Call until it returns None; for each address send
        :meth:`push_pull_payload` over TCP and pass the reply to
        :meth:`merge_push_pull`.
        """
        if not self._pp_queue:
            return None
        addr, join = self._pp_queue.pop(0)
        if join:
            self._pp_join_wait[addr] = now + JOIN_REPLY_WAIT_S
        return addr

    def push_pull_payload(self, now: float) -> bytes:
        """Our full state for a push-pull exchange (request or reply)."""
        entries = []
        for e in self._members.values():
            if e.pp is None:
                e.pp = encode_push_pull_entry(PushPullEntry(e.alive, e.state, e.incarnation))
            entries.append(e.pp)
        user = self._delegate.local_state() if self._delegate is not None else b""
        return encode_push_pull(self.id, self._joining, entries, user)

    def merge_push_pull(self, data: bytes, addr: Addr, now: float) -> str | None:
        """Merge a peer's full state (a request we answer, or the reply to ours).

        Malformed state changes nothing: it is counted and reported as
        ``PeerMisbehaved``, and the reason is returned (None when merged) so
        a driver can answer the peer with an error.  What we learn is
        re-gossiped, except from the reply to our own join (everyone else
        knows it already).
        """
        try:
            pp = decode_push_pull(data)
        except MembershipDecodeError as exc:
            self._misbehaved(addr, "push_pull_malformed", str(exc))
            return str(exc)
        self.stats["push_pull_merged"] += 1
        deadline = self._pp_join_wait.pop(addr, None)
        rebroadcast = deadline is None or deadline < now
        for entry in pp.entries:
            self._merge_entry(entry, pp.sender, addr, now, rebroadcast)
        if not rebroadcast and not self._left:
            # Our join completed: now that we know the lattice's size, gossip
            # our alive again with a retransmit limit to match.
            self._broadcast_alive(self.id, self._self_entry.alive_bytes, now)
            # And sync once more when the joins around us have settled: gossip
            # at start-up, while every view is small, leaves holes.
            follow_up = now + self._rng.uniform(2.0, 4.0) * self.config.probe_interval_s
            if self._timers.get((_PUSH_PULL, None), math.inf) > follow_up:
                self._set_timer((_PUSH_PULL, None), follow_up)
        if self._delegate is not None and pp.user_state:
            self._delegate.merge_remote_state(pp.sender, pp.user_state)
        if self._live:
            self._joining = False
        return None

    # -- sending ------------------------------------------------------------

    def _send(self, addr: Addr, parts: list[bytes]) -> None:
        """Queue one datagram: ``parts`` plus as many broadcasts as fit."""
        budget = self._send_limit - COMPOUND_HEADER_BYTES - sum(map(len, parts))
        room = MAX_COMPOUND_PARTS - len(parts)
        if self._queue:
            extra = self._queue.get(0, budget, room)
            if extra:
                budget -= sum(map(len, extra))
                room -= len(extra)
                parts = parts + extra
        if self._delegate is not None and budget > USER_MESSAGE_OVERHEAD and room > 0:
            parts = parts + self._user_parts(budget, room)
        if not parts:
            return
        self._out.append((addr, encode_compound(parts)))
        self.stats["sent"] += 1

    def _user_parts(self, budget: int, room: int) -> list[bytes]:
        assert self._delegate is not None
        out = []
        for payload in self._delegate.broadcasts(budget - USER_MESSAGE_OVERHEAD):
            part = encode(User(self.id, bytes(payload)))
            if len(part) > budget or room <= 0:
                self.stats["user_broadcast_dropped"] += 1
                continue
            out.append(part)
            budget -= len(part)
            room -= 1
        return out

    def _broadcast_alive(
        self, node: str, payload: bytes, now: float, supersedes: bool = True
    ) -> None:
        """Queue ``node``'s signed alive under a key of its own.

        An alive carries the host's metadata; an accusation (suspect, dead)
        carries only an incarnation.  memberlist queues every message about
        a host under the host's name, so a suspicion queued after an alive
        replaces it and the relay stops spreading the metadata (at 1000
        hosts and 20 % loss, where suspicions never stop, hosts missed an
        update until push-pull repaired it).  Here an accusation never
        evicts a queued alive; an alive that ``supersedes`` (it revived the
        host, so it outranks any queued accusation) drops the accusation.
        """
        if supersedes:
            self._queue.drop(node)
        self._broadcast(payload, _alive_key(node), now)

    def _broadcast(self, payload: bytes, key: str, now: float) -> None:
        self._queue.queue(payload, key)
        if (_GOSSIP, None) not in self._timers:
            self._set_timer((_GOSSIP, None), self._next_gossip_tick(now))

    def _next_gossip_tick(self, now: float) -> float:
        """The first gossip tick after ``now`` (ticks: phase + k x interval)."""
        interval = self.config.gossip_interval_s
        phase = self._gossip_phase
        tick = phase + (math.floor((now - phase) / interval) + 1) * interval
        # Rounding can land the tick we are handling on ``now`` itself.
        if tick <= now + interval * 1e-9:
            tick += interval
        return tick

    # -- receiving ----------------------------------------------------------

    def _dispatch(self, msg: Message, addr: Addr, now: float) -> None:
        t = type(msg)
        if t is Alive:
            self._on_alive(msg, addr, now)  # type: ignore[arg-type]
        elif t is Ping:
            self._on_ping(msg, addr, now)  # type: ignore[arg-type]
        elif t is Ack:
            self._on_ack(msg, now)  # type: ignore[arg-type]
        elif t is Suspect:
            self._on_suspect(msg, now, addr=addr)  # type: ignore[arg-type]
        elif t is Dead:
            self._on_dead(msg, now, addr=addr)  # type: ignore[arg-type]
        elif t is IndirectPing:
            self._on_indirect_ping(msg, addr, now)  # type: ignore[arg-type]
        elif t is Nack:
            self._on_nack(msg, now)  # type: ignore[arg-type]
        elif t is User:
            if self._delegate is not None and msg.sender != self.id:  # type: ignore[union-attr]
                self._delegate.notify_message(msg.sender, msg.payload)  # type: ignore[union-attr]

    def _on_ping(self, msg: Ping, addr: Addr, now: float) -> None:
        if msg.target and msg.target != self.id:
            # Someone else used to live at this address: let the prober time out.
            self.stats["wrong_target"] += 1
            return
        parts = []
        src = self._members.get(msg.source)
        if not msg.target or src is None or src.state is not ALIVE:
            parts.append(self._self_entry.alive_bytes)
        if (
            src is not None
            and src.state is not ALIVE
            and src.id != self.id
            and self.config.refute_at_once
        ):
            # Tell it what we think, so it can refute at once.
            if src.state is SUSPECT:
                parts.append(encode(Suspect(src.id, src.incarnation, self.id)))
            elif src.state is DEAD:
                parts.append(encode(Dead(src.id, src.incarnation, self.id)))
                src.told_at = now
        parts.append(encode(Ack(msg.seq)))
        self._send(addr, parts)
        if src is None and msg.source != self.id:
            # A host we have not heard of yet: say hello, its ack will carry
            # its signed alive (gossip about it may have missed us).
            self._send(
                addr, [self._self_entry.alive_bytes, encode(Ping(self._next_seq(), "", self.id))]
            )

    def _on_indirect_ping(self, msg: IndirectPing, addr: Addr, now: float) -> None:
        seq = self._next_seq()
        self._relays[seq] = _Relay(msg.seq, addr, msg.want_nack)
        self._send(msg.target_addr, [encode(Ping(seq, msg.target, self.id))])
        self._set_timer((_RELAY, seq), now + self.config.probe_timeout_s)

    def _on_ack(self, msg: Ack, now: float) -> None:
        probe = self._probe
        if probe is not None and probe.seq == msg.seq:
            probe.acked = True
            self._probe = None
            self._cancel((_PROBE_TIMEOUT, probe.seq))
            self._cancel((_PROBE_END, probe.seq))
            self._awareness.apply_delta(-1)
            return
        relay = self._relays.pop(msg.seq, None)
        if relay is not None:
            self._cancel((_RELAY, msg.seq))
            self._send(relay.requester, [encode(Ack(relay.orig_seq))])
            return
        self.stats["unexpected_ack"] += 1  # late, or the answer to a join hello

    def _on_nack(self, msg: Nack, now: float) -> None:
        probe = self._probe
        if probe is None or probe.seq != msg.seq:
            return
        probe.nacks += 1
        if probe.indirect and 0 < probe.expected_nacks <= probe.nacks:
            # Every relay tried and failed: waiting longer cannot help.
            self._probe_failed(probe, now)

    def _on_alive(
        self, msg: Alive, addr: Addr | None, now: float, rebroadcast: bool = True
    ) -> None:
        node = msg.node
        if node == self.id:
            if self._left or msg == self._self_entry.alive:
                return
            if msg.incarnation < self._incarnation:
                self.stats["stale"] += 1
                return
            if not self._verifier.verify(msg):
                self._misbehaved(
                    addr, "forged_alive", f"alive for {short_id(node)} not signed by it"
                )
                return
            # An alive of our previous life at or above our incarnation.
            self._refute(msg.incarnation, now)
            return
        e = self._find(node)
        if e is not None and msg.incarnation <= e.incarnation:
            if msg == e.alive:
                self.stats["duplicate"] += 1
                return
            if msg.incarnation == e.incarnation > e.alive.incarnation:
                self._adopt_alive(e, msg, addr, now, rebroadcast)
                return
            self.stats["stale"] += 1
            if addr == msg.addr == e.alive.addr and now - e.told_at >= self.config.probe_interval_s:
                # The host itself announces an older life than we hold (it
                # restarted with a clock that went back): show it what we
                # hold, so it refutes.
                e = self._members.get(node)
                e.told_at = now
                self._send(addr, [e.alive_bytes])
            return
        if not self._verifier.verify(msg):
            self._misbehaved(addr, "forged_alive", f"alive for {short_id(node)} not signed by it")
            return
        if e is not None and self._shared:
            e = self._members.get(node)  # ours now: it changes
        if e is None:
            e = _Entry(msg, ALIVE, msg.incarnation, now)
            self._members[node] = e
            self._by_addr[msg.addr] = node
            self._became_live(e)
            self._emit(MemberJoined(e.snapshot()))
        else:
            prev = e.state
            changed = msg.meta != e.alive.meta or msg.addr != e.alive.addr
            if msg.addr != e.alive.addr:
                if self._by_addr.get(e.alive.addr) == node:
                    del self._by_addr[e.alive.addr]
                self._by_addr[msg.addr] = node
            e.alive = msg
            e._wire = None
            e.state = ALIVE
            e.incarnation = msg.incarnation
            e.changed = now
            e.pp = None
            if e.suspicion is not None:
                e.suspicion = None
                self._cancel((_SUSPECT, node))
            if prev is SUSPECT:
                self.stats["suspicions_refuted"] += 1
            elif prev is DEAD:
                self.stats["flaps"] += 1  # declared dead, then alive again
            if prev is DEAD or prev is LEFT:
                self._failed.discard(node)
                self._became_live(e)
                self._emit(MemberJoined(e.snapshot()))
                if (
                    now - self._last_rejoin_sync
                    >= REJOIN_SYNC_GAP_PROBES * self.config.probe_interval_s
                ):
                    # A host came back: maybe a partition healed.  Its side's
                    # view is what we missed; gossip alone leaves stragglers.
                    self._last_rejoin_sync = now
                    self._want_push_pull(msg.addr, join=False)
            else:
                if prev is SUSPECT:
                    self._emit(MemberAlive(e.snapshot()))
                if changed:
                    self._emit(MemberUpdated(e.snapshot()))
        if rebroadcast:
            self._broadcast_alive(node, e.alive_bytes, now)

    def _adopt_alive(
        self, e: _Entry, msg: Alive, addr: Addr | None, now: float, rebroadcast: bool
    ) -> None:
        """Take ``msg``'s metadata and address for a host we hold suspect or
        dead at ``msg``'s incarnation, without changing its state.

        An accusation carries no metadata: a host that hears "suspect X at
        n" before X's alive at n (which carries the new metadata) knows the
        incarnation but not the metadata.  SWIM's order (an alive needs a
        higher incarnation than a suspicion) would drop that alive as stale,
        and the metadata would wait for push-pull.
        """
        node = msg.node
        if not self._verifier.verify(msg):
            self._misbehaved(addr, "forged_alive", f"alive for {short_id(node)} not signed by it")
            return
        if self._shared:
            e = self._members.get(node)  # ours now: it changes
        changed = msg.meta != e.alive.meta or msg.addr != e.alive.addr
        if msg.addr != e.alive.addr:
            if self._by_addr.get(e.alive.addr) == node:
                del self._by_addr[e.alive.addr]
            self._by_addr[msg.addr] = node
        e.alive = msg
        e._wire = None
        e.pp = None
        self.stats["alive_after_accusation"] += 1
        if changed and e.state is SUSPECT:
            self._emit(MemberUpdated(e.snapshot()))
        if rebroadcast:
            # The accusation queued beside it stays: it is as new as this alive.
            self._broadcast_alive(node, e.alive_bytes, now, supersedes=False)

    def _answer_accusation(self, incarnation: int, now: float, addr: Addr | None) -> None:
        """Someone says we are suspect or dead: refute, unless we are leaving."""
        if self._left:
            return
        if incarnation < self._incarnation:
            # Already refuted, but this sender has not heard yet.
            self.stats["stale"] += 1
            if self.config.refute_at_once:
                self._show_alive(addr, now)
            return
        self._refute(incarnation, now)
        if addr is not None and self.config.refute_at_once:
            # Straight back to whoever told us, whatever gossip does.
            self._send(addr, [self._self_entry.alive_bytes])

    def _on_suspect(
        self, msg: Suspect, now: float, rebroadcast: bool = True, addr: Addr | None = None
    ) -> None:
        node = msg.node
        if node == self.id:
            self._answer_accusation(msg.incarnation, now, addr)
            return
        e = self._members.get(node)
        if e is None:
            self.stats["unknown_node"] += 1
            return
        verdict = accepts(e.state, e.incarnation, "suspect", msg.incarnation)
        if verdict == "stale":
            self.stats["stale"] += 1
            return
        if verdict == "ignore":
            return
        if verdict == "confirm":
            s = e.suspicion
            if s is not None and s.confirm(msg.sender):
                self._arm_suspicion(node, s, now)
                if rebroadcast:
                    self._broadcast(encode(msg), node, now)
            return
        e.state = SUSPECT
        e.incarnation = msg.incarnation
        e.changed = now
        e.pp = None
        self.stats["suspicions"] += 1
        cfg = self.config
        k, min_s, max_s = suspicion_bounds(
            cfg.suspicion_mult,
            cfg.suspicion_max_timeout_mult,
            self._num_nodes(),
            cfg.probe_interval_s,
            cfg.lifeguard_suspicion,
        )
        e.suspicion = Suspicion(msg.sender, k, min_s, max_s, now)
        self._arm_suspicion(node, e.suspicion, now)
        if rebroadcast:
            self._broadcast(encode(msg), node, now)
        self._emit(MemberSuspect(e.snapshot()))

    def _on_dead(
        self, msg: Dead, now: float, rebroadcast: bool = True, addr: Addr | None = None
    ) -> None:
        node = msg.node
        if node == self.id:
            if not self._left and msg.incarnation > self._dead_counted:
                # Declared dead while alive: a false positive, counted once per
                # incarnation however many copies gossip brings (an earlier
                # refutation of the suspicion may already have moved us on).
                self._dead_counted = msg.incarnation
                self.stats["dead_refuted"] += 1
            self._answer_accusation(msg.incarnation, now, addr)
            return
        e = self._members.get(node)
        if e is None:
            self.stats["unknown_node"] += 1
            return
        verdict = accepts(e.state, e.incarnation, "dead", msg.incarnation)
        if verdict == "stale":
            self.stats["stale"] += 1
            return
        if verdict != "apply":
            return
        left = msg.sender == node
        e.state = LEFT if left else DEAD
        e.incarnation = msg.incarnation
        e.changed = now
        e.pp = None
        if e.suspicion is not None:
            e.suspicion = None
            self._cancel((_SUSPECT, node))
        self._live.discard(node)
        if not left:
            self._failed.add(node)
            self._recent_dead.append((now, node))
        if rebroadcast:
            self._broadcast(encode(msg), node, now)
        self._emit((MemberLeft if left else MemberDead)(e.snapshot()))

    def _merge_entry(
        self, entry: PushPullEntry, sender: str, addr: Addr, now: float, rebroadcast: bool
    ) -> None:
        alive = entry.alive
        node = alive.node
        state = entry.state
        if node == self.id:
            self._on_alive(alive, addr, now, rebroadcast)
            if state is not ALIVE and not self._left and entry.incarnation >= self._incarnation:
                self._refute(entry.incarnation, now)
            return
        e = self._find(node)
        if e is None and state is LEFT:
            return  # it is gone; nothing to retry
        if e is None and state is DEAD:
            # A host we never knew, reported dead: remember it quietly (the
            # tombstone refuses its stale alives, and it is retried).
            if not self._verifier.verify(alive):
                self._misbehaved(
                    addr, "forged_alive", f"alive for {short_id(node)} not signed by it"
                )
                return
            e = _Entry(alive, state, max(entry.incarnation, alive.incarnation), now)
            self._members[node] = e
            self._by_addr[alive.addr] = node
            if state is DEAD:
                self._failed.add(node)
            return
        self._on_alive(alive, addr, now, rebroadcast)
        if state is SUSPECT or state is DEAD:
            # Another host's "dead" is only a suspicion to us: we let the
            # host refute rather than kill it on hearsay (as memberlist does).
            self._on_suspect(Suspect(node, entry.incarnation, sender), now, rebroadcast)
        elif state is LEFT:
            self._on_dead(Dead(node, entry.incarnation, node), now, rebroadcast)

    # -- our own state ------------------------------------------------------

    def _sign(self, meta: bytes) -> Alive:
        return sign_alive(self._identity, self.id, self.addr, self._incarnation, meta)

    def _publish_self(self, meta: bytes, now: float) -> None:
        alive = self._sign(meta)
        e = self._self_entry
        e.alive = alive
        e._wire = None
        e.incarnation = self._incarnation
        e.changed = now
        e.pp = None
        self._broadcast_alive(self.id, e.alive_bytes, now)

    def _refute(self, seen: int, now: float) -> None:
        self.stats["refutations"] += 1
        self._incarnation = max(self._incarnation, seen) + 1
        self._awareness.apply_delta(1)  # being suspected hints we are the slow one
        self._publish_self(self._self_entry.alive.meta, now)

    # -- probing ------------------------------------------------------------

    def _probe_round(self, now: float) -> None:
        if self._left:
            return
        if self._probe is not None:  # a late end of the previous round
            self._probe_failed(self._probe, now)
        interval = self._awareness.scale(self.config.probe_interval_s)
        target = self._next_probe_target(now)
        if target is not None:
            self.stats["probes"] += 1
            seq = self._next_seq()
            parts = [encode(Ping(seq, target.id, self.id))]
            if target.state is SUSPECT and self.config.lifeguard_buddy:
                # Lifeguard's buddy system: tell it, so it can refute even if our
                # gossip never reaches it.
                parts.append(encode(Suspect(target.id, target.incarnation, self.id)))
            self._send(target.alive.addr, parts)
            self._probe = _Probe(seq, target.id)
            timeout = self._awareness.scale(self.config.probe_timeout_s)
            self._set_timer((_PROBE_TIMEOUT, seq), now + timeout)
            self._set_timer((_PROBE_END, seq), now + interval)
        self._set_timer((_PROBE, None), now + interval)

    def _next_probe_target(self, now: float) -> _Entry | None:
        if self._lazy_order is not None:
            return self._next_lazy_target(now)
        for _ in range(2):
            while self._probe_index < len(self._probe_list):
                node = self._probe_list[self._probe_index]
                self._probe_index += 1
                e: _Entry | None = self._members.get(node)
                if e is not None and (e.state is ALIVE or e.state is SUSPECT):
                    return e
            self._reap(now)
            self._probe_list = list(self._live.items)
            self._rng.shuffle(self._probe_list)
            self._probe_index = 0
            if not self._probe_list:
                return None
        return None

    def _next_lazy_target(self, now: float) -> _Entry | None:
        """``_next_probe_target`` over a shared view: the shuffle is drawn lazily."""
        for _ in range(2):
            order = self._lazy_order
            assert order is not None
            while (node := order.next(self._rng)) is not None:
                e: _Entry | None = self._members.get(node)
                if e is not None and (e.state is ALIVE or e.state is SUSPECT):
                    return e
            self._reap(now)
            base, extra = self._live.snapshot()
            self._lazy_order = LazyShuffle(base, extra)
            if not self._live:
                return None
        return None

    def _probe_timeout(self, seq: int, now: float) -> None:
        probe = self._probe
        if probe is None or probe.seq != seq:
            return
        target = self._members.get(probe.target)
        if target is None or target.state is DEAD or target.state is LEFT:
            return
        peers = self._random_live(
            self.config.indirect_checks, exclude=probe.target, alive_only=True
        )
        nacks = self.config.lifeguard_nacks
        msg = encode(IndirectPing(seq, target.id, target.alive.addr, self.id, nacks))
        for peer in peers:
            self._send(peer.alive.addr, [msg])
        probe.indirect = True
        probe.expected_nacks = len(peers) if nacks else 0

    def _probe_failed(self, probe: _Probe, now: float) -> None:
        self._probe = None
        self._cancel((_PROBE_TIMEOUT, probe.seq))
        self._cancel((_PROBE_END, probe.seq))
        self.stats["probe_failures"] += 1
        # Lifeguard: missing nacks mean our own packets are not getting out.
        expected = probe.expected_nacks if probe.indirect else 0
        self._awareness.apply_delta(probe_failure_delta(expected, probe.nacks))
        e = self._members.get(probe.target)
        if e is not None and (e.state is ALIVE or e.state is SUSPECT):
            msg = Suspect(e.id, e.incarnation, self.id)
            self._on_suspect(msg, now)
            if self.config.refute_at_once:
                # Tell the suspect straight away, so a live one refutes in one
                # round trip instead of after gossip.
                self._send(e.alive.addr, [encode(msg)])

    def _relay_timeout(self, seq: int, now: float) -> None:
        relay = self._relays.get(seq)
        if relay is None:
            return
        if relay.want_nack and not relay.nacked:
            relay.nacked = True
            self._send(relay.requester, [encode(Nack(relay.orig_seq))])
            # Keep forwarding a late ack until the requester's round is over.
            self._set_timer((_RELAY, seq), now + self.config.probe_interval_s)
            return
        del self._relays[seq]

    def _arm_suspicion(self, node: str, s: Suspicion, now: float) -> None:
        """Fire a last-chance check ``probe_timeout_s`` before the deadline, then the deadline."""
        if s.last_chance_sent or not self.config.last_chance:
            self._set_timer((_SUSPECT, node), s.deadline)
        else:
            self._set_timer((_SUSPECT, node), max(now, s.deadline - self.config.probe_timeout_s))

    def _suspicion_expired(self, node: str, now: float) -> None:
        e = self._members.get(node)
        s = e.suspicion if e is not None else None
        if e is None or s is None or e.state is not SUSPECT:
            return
        if not s.last_chance_sent and self.config.last_chance:
            # Last chance: tell the suspect directly.  A live one answers at
            # once with its (new) alive; gossip alone misses a host now and
            # then, and a refutation missed here would be a false death.
            s.last_chance_sent = True
            self._send(e.alive.addr, [encode(Suspect(node, e.incarnation, self.id))])
            self._set_timer((_SUSPECT, node), max(now, s.deadline))
            return
        self._on_dead(Dead(node, e.incarnation, self.id), now)

    # -- gossip, push-pull, reconnect ----------------------------------------

    def _gossip(self, now: float) -> None:
        cfg = self.config
        has_user = self._delegate is not None
        if self._queue or has_user:
            targets = self._random_live(cfg.gossip_nodes, exclude=None, alive_only=False)
            dead = self._gossip_dead_target(now)
            if dead is not None:
                targets.append(dead)
            for target in targets:
                self._send(target.alive.addr, [])
        if self._queue or has_user:
            self._set_timer((_GOSSIP, None), self._next_gossip_tick(now))

    def _gossip_dead_target(self, now: float) -> _Entry | None:
        """Sometimes one host declared dead recently, so it hears it and refutes."""
        recent = self._recent_dead
        horizon = now - self.config.gossip_to_dead_s
        while recent and recent[0][0] < horizon:
            recent.popleft()
        if not recent:
            return None
        # Weight like memberlist: dead hosts are as likely as any other target.
        if self._rng.random() * (len(self._live) + len(recent)) >= len(recent):
            return None
        _, node = recent[self._rng.randrange(len(recent))]
        e = self._members.get(node)
        return e if e is not None and e.state is DEAD else None

    def _pp_interval(self) -> float:
        # memberlist pushPullScale: slower anti-entropy in big lattices.
        n = self._num_nodes()
        base = self.config.push_pull_interval_s
        if n <= PUSH_PULL_SCALE_THRESHOLD:
            return base
        mult = math.ceil(math.log2(n) - math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1.0
        return base * mult

    def _periodic_push_pull(self, now: float) -> None:
        if self._left:
            return
        peers = self._random_live(1, exclude=None, alive_only=True)
        if peers:
            self._want_push_pull(peers[0].alive.addr, join=False)
        self._set_timer((_PUSH_PULL, None), now + self._pp_interval())

    def _reconnect(self, now: float) -> None:
        self._set_timer((_RECONNECT, None), now + self.config.reconnect_interval_s)
        if self._left:
            return
        self._retry_seed(now)
        failed = self._failed
        if not failed:
            return
        # Serf: the lattice as a whole retries each failed host about once
        # per interval, whatever its size.
        prob = len(failed) / max(1, len(self._live) + 1)
        if self._rng.random() > prob:
            return
        e = self._members.get(failed.items[self._rng.randrange(len(failed))])
        if e is None:
            return
        self._want_push_pull(e.alive.addr, join=False)
        e.told_at = -math.inf
        self._tell_dead(e, now)

    def _retry_seed(self, now: float) -> None:
        """Try one seed that never became a member (it was down or cut off
        when we joined; two groups that never met merge this way)."""
        horizon = now - self.config.reconnect_timeout_s
        for addr in [a for a, t in self._seeds.items() if t < horizon]:
            del self._seeds[addr]
        unresolved = [a for a in self._seeds if a not in self._by_addr]
        if not unresolved:
            return
        addr = unresolved[self._rng.randrange(len(unresolved))]
        self._want_push_pull(addr, join=False)
        self._send(
            addr, [self._self_entry.alive_bytes, encode(Ping(self._next_seq(), "", self.id))]
        )

    def _show_alive(self, addr: Addr | None, now: float) -> None:
        """Send our alive to ``addr``, which holds old news about us (at most
        once per probe interval per known host)."""
        if addr is None:
            return
        node = self._by_addr.get(addr)
        e = self._members.get(node) if node is not None else None
        if e is not None:
            if now - e.told_at < self.config.probe_interval_s:
                return
            e.told_at = now
        self._send(addr, [self._self_entry.alive_bytes])

    def _tell_dead(self, e: _Entry, now: float) -> None:
        """Tell a host we hold as dead that we do, so it can refute if it lives.

        Sent when we retry it, and when a packet comes from its address (it
        is evidently running and has missed the news): at most once per
        probe interval per host.
        """
        if now - e.told_at < self.config.probe_interval_s:
            return
        e.told_at = now
        self._send(
            e.alive.addr,
            [
                self._self_entry.alive_bytes,
                encode(Dead(e.id, e.incarnation, self.id)),
                encode(Ping(self._next_seq(), e.id, self.id)),
            ],
        )

    def _tell_suspect(self, e: _Entry, now: float) -> None:
        """Tell a host we suspect, which is sending to us, so it refutes now.

        Otherwise it hears only from our gossip, whose transmissions may all
        have been lost (a partition), or when our probes come round to it
        again: a whole probe round later.  At most once per probe interval.
        """
        if now - e.told_at < self.config.probe_interval_s:
            return
        e.told_at = now
        self._send(e.alive.addr, [encode(Suspect(e.id, e.incarnation, self.id))])

    def _want_push_pull(self, addr: Addr, join: bool) -> None:
        for i, (queued, _) in enumerate(self._pp_queue):
            if queued == addr:
                if join:
                    self._pp_queue[i] = (addr, True)
                return
        if len(self._pp_queue) < MAX_PENDING_PUSH_PULLS:
            self._pp_queue.append((addr, join))

    # -- helpers ------------------------------------------------------------

    def _num_nodes(self) -> int:
        return len(self._live) + 1

    def _became_live(self, e: _Entry) -> None:
        self._live.add(e.id)
        if self._lazy_order is not None:
            self._lazy_order.insert(e.id)  # drawn at a random place among the rest
            return
        # Insert at a random place among the hosts still to be probed this
        # round, so a newcomer is probed soon (memberlist does the same).
        lst = self._probe_list
        start = self._probe_index
        lst.insert(start + int(self._rng.random() * (len(lst) - start + 1)), e.id)

    def _random_live(self, k: int, exclude: str | None, alive_only: bool) -> list[_Entry]:
        """Up to ``k`` distinct random live hosts (not us, not ``exclude``)."""
        live = self._live
        n = len(live)
        if n == 0 or k <= 0:
            return []
        members = self._members
        rng = self._rng
        if n <= 4 * k + 4:
            cands = [
                members[i]
                for i in live
                if i != exclude and (not alive_only or members[i].state is ALIVE)
            ]
            return rng.sample(cands, min(k, len(cands)))
        out: list[_Entry] = []
        chosen: set[str] = set()
        for _ in range(4 * k + 4):
            node = live.choice(rng)
            if node in chosen or node == exclude:
                continue
            chosen.add(node)
            e = members[node]
            if alive_only and e.state is not ALIVE:
                continue
            out.append(e)
            if len(out) >= k:
                break
        return out

    def _reap(self, now: float) -> None:
        cfg = self.config
        # Over a shared view every record not alive is the core's own.
        records = self._members.own_items() if self._shared else self._members.items()
        gone = [
            node
            for node, e in records
            if (e.state is LEFT and now - e.changed > cfg.dead_tombstone_s and node != self.id)
            or (e.state is DEAD and now - e.changed > cfg.reconnect_timeout_s)
        ]
        for node in gone:
            e = self._members.pop(node)
            self._failed.discard(node)
            if self._by_addr.get(e.alive.addr) == node:
                del self._by_addr[e.alive.addr]

    def _find(self, node: str) -> _Entry | None:
        """The record of ``node`` or None, to read only (over a shared view it
        may be shared: take it with ``self._members.get`` before changing it)."""
        if self._shared:
            return self._members.peek(node)  # type: ignore[no-any-return]
        return self._members.get(node)  # type: ignore[no-any-return]

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & SEQ_MASK
        return self._seq

    def _set_timer(self, key: tuple[int, object], deadline: float) -> None:
        self._timers[key] = deadline
        heapq.heappush(self._heap, (deadline, next(self._counter), key))

    def _cancel(self, key: tuple[int, object]) -> None:
        self._timers.pop(key, None)

    def _emit(self, event: MemberEvent) -> None:
        self._events.append(event)

    def _misbehaved(self, addr: Addr | None, counter: str, reason: str) -> None:
        self.stats[counter] += 1
        if addr is None or self._misbehaved_pending >= MAX_PENDING_MISBEHAVED:
            return
        self._misbehaved_pending += 1
        self._events.append(PeerMisbehaved(addr, f"{counter}: {reason}"))


def _alive_key(node: str) -> str:
    """The broadcast-queue key of ``node``'s alive (accusations use ``node``)."""
    return "alive:" + node


def _check_meta(meta: bytes) -> None:
    if not isinstance(meta, bytes | bytearray):
        raise MembershipUsageError(f"host metadata must be bytes, not {type(meta).__name__}")
    if len(meta) > MAX_META_BYTES:
        raise MembershipUsageError(
            f"host metadata is {len(meta)} bytes; the limit is {MAX_META_BYTES} "
            "(it must fit one signed gossip packet)"
        )


def _check_fits(node: str, addr: Addr, meta: bytes, config: MembershipConfig) -> None:
    """Our largest fixed packet (alive + dead + ping) must fit a sealed datagram."""
    top = (1 << 64) - 1
    alive = Alive(node, addr, top, meta, bytes(64))
    size = (
        COMPOUND_HEADER_BYTES
        + len(encode(alive))
        + len(encode(Dead(node, top, node)))
        + len(encode(Ping(SEQ_MASK, node, node)))
    )
    limit = config.udp_packet_bytes - SEALING_OVERHEAD_BYTES
    if size > limit:
        raise MembershipUsageError(
            f"host metadata of {len(meta)} bytes does not fit a {config.udp_packet_bytes}-byte "
            f"gossip packet (needs {size + SEALING_OVERHEAD_BYTES}); use less metadata or "
            "raise membership.udp_packet_bytes"
        )
