"""The directory core: what every host knows about the lattice.

Theory of operation.  Two kinds of data, two merge rules:

* **Per-host state** (:mod:`hoststate`): each host's actors (claims summary
  and instance count), providers, labels, load, address and version.  Only
  its owner writes it; a Scuttlebutt map versioned per owner.  When
  membership declares a host dead or gone, :meth:`Directory.forget_host`
  drops its state here, and stale gossip cannot bring it back.
* **Lattice-wide entries** (:mod:`lww`): link definitions (namespace
  ``link``), config (``config``), deployed manifests (``control.*``, see
  ``meshhost/apps/store.py``) and any other namespace, as a
  last-writer-wins map stamped with a hybrid logical clock (:mod:`hlc`),
  deletes as tombstones collected after a horizon.  Every
  change is written to the :class:`~meshhost.directory.store.EntryStore`
  before it is acknowledged or passed on, so a full lattice restart keeps
  links and config.

Spreading rides on SWIM (this class is its ``Delegate``): every change is
queued as a small piggyback message (:meth:`broadcasts`), sent a bounded
number of times, a newer change of the same key replacing the queued one;
a host that learns something new queues it again, so news spreads as an
epidemic.  Push-pull anti-entropy exchanges full state
(:meth:`local_state` / :meth:`merge_remote_state`) and repairs whatever
piggybacking missed.  Both merges are commutative, associative and
idempotent, so every host that has seen the same messages, in any order and
any number of times, holds the same maps.

Sans-IO: time comes from the injected ``clock`` (seconds, as the host's or
the simulator's clock gives it), storage from the injected store; nothing
here touches sockets, threads or the system clock.  Events for the router,
providers and control plane queue up; drain them with :meth:`next_event`.
Bad bytes from a peer never raise out of the delegate methods: the message
is dropped, counted in ``bad_messages`` and reported as ``PeerMisbehaved``.

Around this class: the wire messages are in :mod:`codec`, the two maps in
:mod:`hoststate` and :mod:`lww`, the piggyback queue and large-value pieces
in :mod:`broadcast` and :mod:`chunks`, link keys in :mod:`links`, the
actor-by-host index the router reads in :mod:`actorindex`, and a control
op's staged (operator-signed) writes in :mod:`staging`.

Why this module is long (~930 lines): :class:`Directory` is one state
machine. Its local writes (own host state, put/delete/commit), its merges of
peer gossip (piggyback deltas, large-value pieces, push-pull and sync full
states) and its maintenance all read and change the same two maps, the
hybrid clock, the durable store, the broadcast queue and the event stream,
under one rule: every change is stored, then queued, then reported.
Splitting the merge half into another class would need a mixin or a
back-reference reaching into that same private state, which hides the rule
instead of isolating anything; memberlist keeps its delegate's state
machine in one file for the same reason. Everything that is a concept of
its own has moved out (the modules above).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshhost.directory import records as rec
from meshhost.directory.actorindex import ActorIndex
from meshhost.directory.broadcast import BroadcastQueue, transmit_limit
from meshhost.directory.chunks import Reassembler, split
from meshhost.directory.codec import (
    MAX_KEY_CHARS,
    MAX_VALUE_BYTES,
    FullState,
    HostDelta,
    HostSection,
    LwwChunk,
    LwwDelta,
    LwwEntry,
    SyncRequest,
    Value,
    check_value,
    decode_piggyback,
    decode_state,
    decode_sync_request,
    encode,
    encode_value,
)
from meshhost.directory.events import (
    ActorsChanged,
    ClockSkewDetected,
    ConfigChanged,
    EntryChanged,
    EntryRefused,
    Event,
    HostRemoved,
    HostStateChanged,
    LinkDeleted,
    LinkPut,
    PeerMisbehaved,
    StoreFailed,
)
from meshhost.directory.hlc import MAX_DRIFT_MS, HybridClock, Stamp
from meshhost.directory.hoststate import ApplyResult, HostStateMap
from meshhost.directory.links import (
    LinkDefinition,
    link_from_value,
    link_key,
    parse_link_key,
)
from meshhost.directory.lww import LwwMap
from meshhost.directory.records import ActorLocation, ActorSummary, HostRecord, ProviderRecord
from meshhost.directory.staging import Staging, active_staging, stage, staged
from meshhost.directory.store import EntryStore
from meshhost.errors import (
    ClockDriftError,
    DecodeError,
    DirectoryStoreFailed,
    DirectoryValueError,
    LocalProtocolError,
)

__all__ = [
    "CONFIG_NS",
    "LINK_NS",
    "MANIFEST_NS",
    "Directory",
    "DirectoryConfig",
    "Staging",
    "link_key",
    "parse_link_key",
]

LINK_NS = "link"
CONFIG_NS = "config"
MANIFEST_NS = "manifest"

HOST_DELTA_FRAMING_BYTES = 100
"""Upper bound of a HOST_DELTA's bytes besides owner id, key and value
(type, generation, since, upto, version and msgpack headers)."""
_LOCATION_KEYS = frozenset({rec.LOAD_KEY, rec.ADDR_KEY})
"""Host keys (besides actors) that hosts_running reports."""
MAX_SEEN_MESSAGES = 4096
"""Fingerprints of recently applied piggyback messages, to skip repeats
(a repeat arrives within a few gossip rounds, so a short memory suffices)."""
REFUSAL_REPORT_S = 10.0
"""A peer's refused entries are reported (an event, a log line) at most this often."""
MAX_EVENTS = 100_000
"""Undrained events kept; beyond this the oldest are dropped (a stuck consumer
must not grow memory without bound).  Counted in ``events_dropped``."""


@dataclass(frozen=True, slots=True)
class DirectoryConfig:
    """Directory parameters; every field has its unit in its name."""

    retransmit_mult: int = 4
    """A piggyback message is sent retransmit_mult * ceil(log10(N + 1)) times
    (memberlist's LAN default)."""
    piggyback_bytes: int = 700
    """Largest single piggyback message; larger LWW values travel in pieces.
    A SWIM packet is <= 1200 bytes sealed and also carries a ping or ack and
    membership news; 700 bytes leaves them room so our messages are not
    starved."""
    chunk_bytes: int = 460
    """Size of one piece of a large value's message: two pieces and their
    framing fit the ~1070 bytes SWIM offers per packet."""
    broadcast_overhead_bytes: int = 64
    """Bytes SWIM adds around each piggybacked message (its USER message:
    type, 56-character sender, headers; ``swim.USER_MESSAGE_OVERHEAD``),
    counted against the ``limit_bytes`` it offers so nothing we hand over is
    dropped for lack of room."""
    tombstone_horizon_s: float = 7 * 24 * 3600.0
    """Deleted links and config are remembered this long, so a put still in
    flight cannot resurrect them.  A host cut off for longer may."""
    max_drift_ms: int = MAX_DRIFT_MS
    """How far a peer's stamp may pull our hybrid clock ahead of physical time."""
    load_interval_s: float = 2.0
    """Load is published at most this often (later values wait for ``tick``):
    1000 hosts gossiping every load change would drown the real news."""

    def __post_init__(self) -> None:
        if self.retransmit_mult < 1:
            raise DirectoryValueError("retransmit_mult must be >= 1")
        if not 300 <= self.piggyback_bytes <= 65_000:
            raise DirectoryValueError("piggyback_bytes must be within 300..65000")
        if not 300 <= self.chunk_bytes <= self.piggyback_bytes:
            raise DirectoryValueError("chunk_bytes must be within 300..piggyback_bytes")
        if self.broadcast_overhead_bytes < 0:
            raise DirectoryValueError("broadcast_overhead_bytes must be >= 0")
        if self.tombstone_horizon_s <= 0:
            raise DirectoryValueError("tombstone_horizon_s must be > 0")
        if self.max_drift_ms < 0:
            raise DirectoryValueError("max_drift_ms must be >= 0")
        if self.load_interval_s < 0:
            raise DirectoryValueError("load_interval_s must be >= 0")


class Directory:
    """One host's directory: implements the SWIM ``Delegate`` protocol.

    ``host_id`` is this host's ``N…`` key.  ``clock()`` returns the current
    time in seconds: Unix time in production (``time.time``; not trio's
    monotonic clock, since stamps are compared across hosts and restarts),
    the host's skewed virtual clock in the simulator.  ``store`` keeps
    lattice-wide entries across restarts (None: memory only).
    ``member_count()`` gives the lattice size for the retransmit limit
    (default: hosts whose state we hold).  ``is_live(id)`` is membership's
    view that a host is alive or suspect (see :meth:`attach_membership`).
    ``generation`` identifies this run of the host; it must grow across
    restarts (default: the hybrid clock at start).  ``admit``: see :attr:`admit`.

    Persistence: ``store=FileStore(data_dir / "directory")``.  Call
    :meth:`tick` about once a second.  Wiring with SWIM: build the
    directory, pass it as ``Swim(..., delegate=directory)``, then
    ``directory.attach_membership(is_live=lambda i: i in swim.live_ids(),
    member_count=...)``; feed ``MemberDead`` and ``MemberLeft`` to
    :meth:`forget_host` and ``MemberJoined`` to :meth:`host_alive`.
    """

    def __init__(
        self,
        host_id: str,
        *,
        clock: Callable[[], float],
        store: EntryStore | None = None,
        config: DirectoryConfig | None = None,
        member_count: Callable[[], int] | None = None,
        is_live: Callable[[str], bool] | None = None,
        generation: int | None = None,
        admit: Callable[[LwwEntry], bool] | None = None,
    ) -> None:
        self.host_id = host_id
        self.config = config or DirectoryConfig()
        self._clock = clock
        self._store = store
        self._member_count = member_count
        self._is_live = is_live
        self._hlc = HybridClock(host_id, max_drift_ms=self.config.max_drift_ms)
        self._lww = LwwMap()
        self._queue = BroadcastQueue()
        self._chunks = Reassembler()
        self._events: deque[Event] = deque()
        self.bad_messages = 0
        """Peer messages dropped because they did not decode."""
        self.events_dropped = 0
        self.on_event: Callable[[], None] | None = None
        """Called (no arguments) after each new event is queued: a driver's wake-up."""
        self.admit: Callable[[LwwEntry], bool] | None = admit
        """When set, a lattice-wide entry from a peer is merged only if ``admit(entry)``
        (e.g. signed security statements, ``control/security.py``); refused ones are
        counted in ``refused_entries``.  Must be a pure function of the entry and of
        what this map holds, so every host refuses alike.  Entries refused in a
        batch are tried once more after it when it admitted others (a grant and
        the entry it allows may arrive in one push-pull, in any order); anything
        still refused is dropped: the anti-entropy pull brings it again."""
        self.refused_entries = 0
        self._refusals_noted: dict[str, float] = {}
        if store is not None:
            for entry in store.load():
                self._lww.merge(entry)
                if entry.stamp.node == host_id:
                    self._hlc.restore(entry.stamp)  # never reissue a stamp we used before
        start = self._hlc.now(self._now_ms()).packed()
        self._hosts = HostStateMap(host_id, start if generation is None else generation)
        self._actors = ActorIndex(self._hosts)
        self._seen: dict[int, None] = {}  # insertion-ordered: oldest first
        self.duplicates = 0
        """Piggybacked messages skipped because they were applied before."""
        self._opened_ms = self._now_ms()
        self.remote_writes = 0
        self.remote_write_lag_ms = 0
        """Lattice-wide writes by other hosts, made after this directory opened, that
        reached it, and the sum of their delays (arrival here minus the writer's HLC
        wall time, so clock skew is included): the directory's convergence lag."""
        self._pending_load: float | None = None
        self._load_published_at = float("-inf")

    # --- time ----------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def clock(self) -> HybridClock:
        """The hybrid logical clock stamping this host's writes."""
        return self._hlc

    # --- events --------------------------------------------------------------

    def next_event(self) -> Event | None:
        """The oldest undrained event, or None."""
        return self._events.popleft() if self._events else None

    def _emit(self, event: Event) -> None:
        if len(self._events) >= MAX_EVENTS:
            self._events.popleft()
            self.events_dropped += 1
        self._events.append(event)
        if self.on_event is not None:
            self.on_event()

    # --- this host's own state -----------------------------------------------

    def set_host_value(self, key: str, value: Value) -> bool:
        """Set (or with None delete) one key of this host's own state.

        Returns True when something changed.  Raises DirectoryValueError for
        values that are not plain data or do not fit one piggyback message.
        """
        if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
            raise DirectoryValueError(
                f"host state key must be text of at most {MAX_KEY_CHARS} chars"
            )
        if value is not None:
            check_value(value, what=f"host state {key!r}")
            size = len(encode_value(value)) + len(key.encode()) + len(self.host_id.encode())
            limit = self.config.piggyback_bytes - HOST_DELTA_FRAMING_BYTES
            if size > limit:
                raise DirectoryValueError(
                    f"host state {key!r} needs {size} bytes with its key; the limit is "
                    f"{limit} (it must fit one gossip packet); keep labels and names short"
                )
        section = self._hosts.set(key, value)
        if section is None:
            return False
        self._queue_host(section)
        self._host_changed(self.host_id, {key})
        if self._hosts.needs_compaction():
            for s in self._hosts.new_generation(self._hlc.now(self._now_ms()).packed()):
                self._queue_host(s)
        return True

    def set_actor(self, summary: ActorSummary, instances: int) -> bool:
        """Announce that this host runs ``instances`` of an actor (0 removes it)."""
        if instances <= 0:
            return self.remove_actor(summary.id)
        return self.set_host_value(rec.ACTOR_PREFIX + summary.id, summary.to_value(instances))

    def remove_actor(self, actor_id: str) -> bool:
        """Announce that this host no longer runs the actor."""
        return self.set_host_value(rec.ACTOR_PREFIX + actor_id, None)

    def set_provider(self, provider: ProviderRecord) -> bool:
        """Announce a capability provider this host serves."""
        return self.set_host_value(provider.key(), provider.to_value())

    def remove_provider(self, provider_id: str, link_name: str = "default") -> bool:
        return self.set_host_value(f"{rec.PROVIDER_PREFIX}{provider_id}/{link_name}", None)

    def set_labels(self, labels: Mapping[str, str]) -> bool:
        return self.set_host_value(rec.LABELS_KEY, dict(labels))

    def set_load(self, load: float) -> bool:
        """Gossip this host's load (calls in flight per core), rounded to 0.01.

        Published at once if ``load_interval_s`` passed since the last
        publication, else by a later :meth:`tick`; an unchanged value costs
        nothing.  Returns True when a new value was published now.
        """
        self._pending_load = round(float(load), 2)
        return self._publish_load()

    def _publish_load(self) -> bool:
        now = self._clock()
        if (
            self._pending_load is None
            or now - self._load_published_at < self.config.load_interval_s
        ):
            return False
        load, self._pending_load = self._pending_load, None
        changed = self.set_host_value(rec.LOAD_KEY, load)
        if changed:
            self._load_published_at = now
        return changed

    def set_address(self, addr: str) -> bool:
        return self.set_host_value(rec.ADDR_KEY, addr)

    def set_version(self, version: str) -> bool:
        return self.set_host_value(rec.VERSION_KEY, version)

    def reannounce(self, since: int = 0) -> None:
        """Queue our own keys changed after version ``since`` again (0: all of them).

        Done by itself when a push-pull shows a peer behind on our state;
        the host may also call it after refuting a death.
        """
        for section in self._hosts.own_sections():
            if section.upto > since:
                self._queue_host(section)

    # --- lattice-wide entries --------------------------------------------------

    def put(self, ns: str, key: str, value: Value) -> Stamp:
        """Write ``value`` under (ns, key) lattice-wide; durable when this returns.

        The stamp is greater than the one of the value it replaces, so a
        write always supersedes what this host sees.  Raises
        DirectoryValueError for a bad namespace, key or value, and
        DirectoryStoreFailed (nothing changed) when the disk refuses.
        """
        self._check_key(ns, key)
        if value is None:
            raise DirectoryValueError("None cannot be stored; use delete() to remove a key")
        check_value(value, what=f"{ns}/{key}")
        size = len(encode_value(value))
        if size > MAX_VALUE_BYTES:
            raise DirectoryValueError(
                f"{ns}/{key} is {size} bytes encoded; the limit is {MAX_VALUE_BYTES}"
            )
        return self._write(ns, key, value)

    def delete(self, ns: str, key: str) -> bool:
        """Delete (ns, key) lattice-wide with a tombstone; durable when this returns.

        Returns True when a live value was deleted.  A tombstone is written
        even when we hold no value, so it also wins over a put we have not
        seen yet.
        """
        self._check_key(ns, key)
        existed = self._lww.get(ns, key) is not None
        self._write(ns, key, None)
        return existed

    def get(self, ns: str, key: str) -> Value:
        """The live value of (ns, key), or None.  Do not mutate what it returns."""
        return self._lww.get(ns, key)

    def items(self, ns: str) -> list[tuple[str, Value]]:
        """Live (key, value) pairs of a namespace, sorted by key."""
        return self._lww.items(ns)

    def entry(self, ns: str, key: str) -> LwwEntry | None:
        """The winning entry of (ns, key), tombstone and signature included, or None."""
        return self._lww.entry(ns, key)

    def changes(self, ns: str) -> int:
        """A counter that moves whenever an entry of ``ns`` changes (for caches)."""
        return self._lww.changes(ns)

    def staged(self, staging: Staging) -> contextlib.AbstractContextManager[Staging]:
        """Collect this task's writes in ``staging`` instead of applying them."""
        return staged(staging)

    def commit(self, staging: Staging) -> None:
        """Apply the ``ready`` writes of ``staging`` (all of them; durable on return).

        Raises DirectoryValueError, changing nothing, when one no longer supersedes
        what is held (another write came between), and DirectoryStoreFailed when
        the disk refuses.
        """
        now_ms = self._now_ms()
        for entry in staging.ready:
            current = self._lww.entry(entry.ns, entry.key)
            if current is not None and current.stamp >= entry.stamp:
                raise DirectoryValueError(
                    f"{entry.ns}/{entry.key} changed meanwhile; run the command again"
                )
        if self._store is not None and staging.ready:
            self._store.append(staging.ready)
        for entry in staging.ready:
            with contextlib.suppress(ClockDriftError):  # bounded when staged
                self._hlc.observe(entry.stamp, now_ms)
            current = self._lww.entry(entry.ns, entry.key)
            self._lww.merge(entry)
            self._lww_changed(entry, current)
            self._queue_lww(entry)

    def revalidate(
        self, check: Callable[[LwwEntry], bool], first: Sequence[str] = ()
    ) -> list[LwwEntry]:
        """Forget held entries ``check`` refuses (entries loaded from disk, before the
        host joins); namespaces in ``first`` are checked first, in that order (others
        may depend on them).  Returns what was dropped."""
        order = sorted(
            self._lww.namespaces(),
            key=lambda ns: (first.index(ns) if ns in first else len(first), ns),
        )
        dropped = []
        for ns in order:
            for entry in [e for e in self._lww.entries() if e.ns == ns]:
                if not check(entry):
                    self._lww.remove(ns, entry.key)
                    dropped.append(entry)
        return dropped

    def stamp_of(self, ns: str, key: str) -> Stamp | None:
        """The stamp of the winning entry (tombstone included), or None."""
        entry = self._lww.entry(ns, key)
        return None if entry is None else entry.stamp

    @staticmethod
    def _check_key(ns: str, key: str) -> None:
        if not isinstance(ns, str) or not ns or len(ns) > MAX_KEY_CHARS:
            raise DirectoryValueError(f"namespace must be 1..{MAX_KEY_CHARS} characters of text")
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
            raise DirectoryValueError(f"key must be 1..{MAX_KEY_CHARS} characters of text")

    def _write(self, ns: str, key: str, value: Value) -> Stamp:
        now_ms = self._now_ms()
        stamp = self._hlc.now(now_ms)
        current = self._lww.entry(ns, key)
        if current is not None and current.stamp >= stamp:
            # The value we replace carries a stamp from a clock ahead of ours;
            # step just past it so "delete what you see" always works.
            try:
                stamp = current.stamp.successor(self.host_id)
            except LocalProtocolError as exc:
                raise DirectoryValueError(f"cannot overwrite {ns}/{key}: {exc}") from None
        staging = active_staging()
        if staging is not None and ns not in staging.exempt:
            return stage(
                staging,
                ns,
                key,
                value,
                stamp,
                current,
                now_ms,
                self.host_id,
                self.config.max_drift_ms,
            )
        entry = LwwEntry(ns, key, stamp, value)
        if self._store is not None:
            self._store.append([entry])
        self._lww.merge(entry)
        self._lww_changed(entry, current)
        self._queue_lww(entry)
        return stamp

    # links, config: typed shortcuts over the generic namespaces

    def put_link(self, link: LinkDefinition) -> Stamp:
        """Create or replace a link definition lattice-wide."""
        if "/" in link.actor_id:
            raise DirectoryValueError("link actor_id must not contain '/'")
        key = link_key(link.actor_id, link.contract_id, link.link_name)
        return self.put(LINK_NS, key, link.to_dict())

    def delete_link(self, actor_id: str, contract_id: str, link_name: str = "default") -> bool:
        """Delete a link definition lattice-wide; True when it existed."""
        return self.delete(LINK_NS, link_key(actor_id, contract_id, link_name))

    def link(
        self, actor_id: str, contract_id: str, link_name: str = "default"
    ) -> LinkDefinition | None:
        return link_from_value(self._lww.get(LINK_NS, link_key(actor_id, contract_id, link_name)))

    def links(self) -> list[LinkDefinition]:
        """Every link definition, sorted by (actor id, contract id, link name)."""
        out = []
        for _, value in self._lww.items(LINK_NS):
            link = link_from_value(value)
            if link is not None:
                out.append(link)
        return out

    def config_put(self, name: str, value: Value) -> Stamp:
        return self.put(CONFIG_NS, name, value)

    def config_get(self, name: str) -> Value:
        return self.get(CONFIG_NS, name)

    def config_delete(self, name: str) -> bool:
        return self.delete(CONFIG_NS, name)

    # --- queries for the router and control plane ------------------------------

    def hosts_running(self, actor_id: str) -> list[ActorLocation]:
        """Hosts that run ``actor_id`` (this one included), sorted by host id.

        On the router's hot path: answered from a per-actor cache that a
        change of a host's actors, load or address invalidates.
        """
        return self._actors.hosts_running(actor_id)

    def locations(self, actor_id: str) -> tuple[ActorLocation, ...]:
        """:meth:`hosts_running` without the copy: the same tuple object until the
        actor's hosts, their load or address change (see ``ActorIndex.locations``)."""
        return self._actors.locations(actor_id)

    def actor(self, actor_id: str) -> ActorSummary | None:
        """The claims summary of an actor some host runs (from the smallest host id), or None."""
        return self._actors.actor(actor_id)

    def actor_by_alias(self, alias: str) -> ActorSummary | None:
        """The actor whose ``call_alias`` is ``alias`` (smallest id if several), or None."""
        return self._actors.actor_by_alias(alias)

    def hosts(self) -> list[str]:
        """Ids of every host whose state we hold, this one included, sorted."""
        return self._hosts.owners()

    def host_labels(self) -> dict[str, dict[str, str]]:
        """Labels of every host we hold state for (for placement: ``host_views``)."""
        out = {}
        for host_id in self._hosts.owners():
            labels = self._hosts.get(host_id, rec.LABELS_KEY)
            if isinstance(labels, Mapping) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
            ):
                out[host_id] = dict(labels)
            else:
                out[host_id] = {}
        return out

    def host(self, host_id: str) -> HostRecord | None:
        """Everything known about one host, or None."""
        generation = self._hosts.generation_of(host_id)
        if generation is None:
            return None
        return HostRecord.build(host_id, generation, dict(self._hosts.items(host_id)))

    def snapshot(self) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """(host state, lattice-wide entries) as comparable plain data (tests, tools)."""
        return self._hosts.snapshot(), self._lww.snapshot()

    def lww_snapshot(self) -> dict[Any, Any]:
        return self._lww.snapshot()

    # --- membership hooks ----------------------------------------------------

    def attach_membership(
        self,
        *,
        is_live: Callable[[str], bool] | None = None,
        member_count: Callable[[], int] | None = None,
    ) -> None:
        """Late-bind membership queries (the SWIM core is built after us).

        ``is_live(host_id)``: membership holds the host alive or suspect now.
        With it, state of a forgotten host is accepted again as soon as
        membership sees it alive, even before :meth:`host_alive` is called
        (SWIM merges a push-pull's members before handing us its state).
        """
        if is_live is not None:
            self._is_live = is_live
        if member_count is not None:
            self._member_count = member_count

    def forget_host(self, host_id: str) -> None:
        """Membership says ``host_id`` died or left: drop its state.

        Gossip about the life of that host we knew is ignored from now on; a
        restarted host (newer generation) is accepted, and
        :meth:`host_alive` lifts the block when the same process comes back.
        """
        if host_id == self.host_id:
            return
        had = host_id in self._hosts
        keys = self._hosts.forget(host_id, block_below=self._hlc.last.packed())
        self._queue.discard(lambda ident: isinstance(ident, tuple) and ident[:2] == ("h", host_id))
        self._actors.reindex(host_id)
        if keys:
            self._emit(HostStateChanged(host_id, tuple(sorted(keys))))
            if any(k.startswith(rec.ACTOR_PREFIX) for k in keys):
                self._emit(ActorsChanged(host_id))
        if had:
            self._emit(HostRemoved(host_id))

    def host_alive(self, host_id: str) -> None:
        """Membership says ``host_id`` is alive (joined or refuted): accept its state again."""
        if self._hosts.is_forgotten(host_id):
            self._hosts.allow(host_id)
            self._seen.clear()  # repeats of its messages are welcome again

    # --- maintenance ---------------------------------------------------------

    def tick(self) -> None:
        """Publish a pending load, collect old tombstones, compact the store.

        Call every second or so.
        """
        self._publish_load()
        horizon_ms = int(self.config.tombstone_horizon_s * 1000)
        self._lww.collect(self._now_ms() - horizon_ms)
        if self._store is not None and self._store.needs_compaction(len(self._lww)):
            try:
                self._store.compact(list(self._lww.entries()))
            except DirectoryStoreFailed as exc:  # the old log is intact; try at the next tick
                self._emit(StoreFailed(str(exc)))

    @property
    def pending_broadcasts(self) -> int:
        return len(self._queue)

    # --- SWIM Delegate -------------------------------------------------------

    def broadcasts(self, limit_bytes: int) -> list[bytes]:
        """Payloads to piggyback on the next SWIM packet, within ``limit_bytes``."""
        members = self._member_count() if self._member_count is not None else len(self._hosts)
        limit = transmit_limit(self.config.retransmit_mult, members)
        return self._queue.take(limit_bytes, limit, self.config.broadcast_overhead_bytes)

    def notify_message(self, sender_id: str, payload: bytes) -> None:
        """A piggybacked payload from ``sender_id``.  Never raises on bad bytes."""
        # Epidemic gossip delivers each message about retransmit-limit times;
        # applying a repeat changes nothing, so skip the decode.
        if isinstance(payload, bytearray | memoryview):
            payload = bytes(payload)
        fingerprint = hash(payload) if isinstance(payload, bytes) else 0
        if fingerprint in self._seen:
            self.duplicates += 1
            return
        try:
            message = decode_piggyback(payload)
        except DecodeError as exc:
            self._misbehaved(sender_id, exc)
            return
        if isinstance(message, HostDelta):
            self._merge_hosts(sender_id, [message.section])
            if self._hosts.is_forgotten(message.section.owner):
                return  # ignored for now; a repeat may be welcome once it is alive
        elif isinstance(message, LwwDelta):
            self._merge_lww(sender_id, message.entries)
        else:
            # pieces are not remembered: a buffer evicted under pressure must
            # be able to fill again from repeats
            self._merge_chunk(sender_id, message, payload)
            return
        self._seen[fingerprint] = None
        if len(self._seen) > MAX_SEEN_MESSAGES:
            del self._seen[next(iter(self._seen))]

    def local_state(self) -> bytes:
        """Everything we know, for push-pull."""
        return encode(FullState(tuple(self._hosts.full()), tuple(self._lww.entries())))

    def merge_remote_state(self, sender_id: str, data: bytes) -> None:
        """A peer's full state from push-pull.  Never raises on bad bytes."""
        state = self._merge_full_state(sender_id, data)
        if state is None:
            return
        # A full state shows what the peer knows of us.  If it is behind (it
        # forgot us while we were cut off or falsely declared dead), others
        # likely are too: gossip our own state again rather than wait for
        # push-pulls to carry it.
        mine = [s for s in state.hosts if s.owner == self.host_id]
        generation, version = self._hosts.generation, self._hosts.version
        if version and (not mine or (mine[0].generation, mine[0].upto) < (generation, version)):
            same_life = bool(mine) and mine[0].generation == generation
            self.reannounce(since=mine[0].upto if same_life else 0)

    def merge_sync_answer(self, sender_id: str, data: bytes) -> None:
        """Merge the FULL_STATE a peer sent in answer to our :meth:`sync_request`.

        Never raises on bad bytes (reported as ``PeerMisbehaved``).
        """
        self._merge_full_state(sender_id, data)

    def _merge_full_state(self, sender_id: str, data: bytes) -> FullState | None:
        """Decode and merge a peer's FULL_STATE; None (reported) when it is malformed."""
        try:
            state = decode_state(data)
        except DecodeError as exc:
            self._misbehaved(sender_id, exc)
            return None
        self._merge_hosts(sender_id, state.hosts)
        self._merge_lww(sender_id, state.entries)
        return state

    # --- digest-driven pull (transport channel 4) ------------------------------

    def sync_request(self) -> bytes:
        """A SYNC_REQUEST with our digest: ask a peer for what we lack."""
        digest = tuple((o, g, w) for o, (g, w) in sorted(self._hosts.digest().items()))
        return encode(SyncRequest(digest))

    def answer_sync(self, data: bytes) -> bytes:
        """Answer a peer's SYNC_REQUEST with a FULL_STATE of what its digest lacks.

        The peer merges the answer with :meth:`merge_sync_answer`.  Raises
        DirectoryDecodeError on a malformed request (the driver answers it
        with the ``protocol`` error code).
        """
        request = decode_sync_request(data)
        digest = {owner: (g, w) for owner, g, w in request.digest}
        return encode(FullState(tuple(self._hosts.delta(digest)), tuple(self._lww.entries())))

    # --- merging -------------------------------------------------------------

    def _misbehaved(self, sender_id: str, exc: Exception) -> None:
        self.bad_messages += 1
        self._emit(PeerMisbehaved(sender_id, str(exc)))

    def _merge_hosts(self, sender_id: str, sections: Iterable[HostSection]) -> None:
        for section in sections:
            if section.owner == self.host_id:
                if self._hosts.newer_self(section):
                    # Peers remember a life of ours we do not (our clock went
                    # back across a restart): start a newer one so they listen.
                    floor = max(section.generation + 1, self._hlc.now(self._now_ms()).packed())
                    for s in self._hosts.new_generation(floor):
                        self._queue_host(s)
                continue
            result = self._hosts.apply(section, self._is_live)
            if result:
                self._host_applied(result)

    def _host_applied(self, result: ApplyResult) -> None:
        generation = self._hosts.generation_of(result.owner)
        assert generation is not None
        for entry in result.changed:
            self._queue_host(
                HostSection(result.owner, generation, entry.version - 1, entry.version, (entry,))
            )
        self._host_changed(result.owner, set(result.keys))

    def _merge_lww(
        self, sender_id: str, entries: Iterable[LwwEntry], *, requeue: bool = True
    ) -> None:
        now_ms = self._now_ms()
        changed: list[tuple[LwwEntry, LwwEntry | None]] = []
        skew_reported = False
        pending = list(entries)
        for entry in pending:
            try:
                self._hlc.observe(entry.stamp, now_ms)
            except ClockDriftError:
                if not skew_reported:
                    skew_reported = True
                    ahead = entry.stamp.wall_ms - now_ms
                    self._emit(ClockSkewDetected(sender_id, entry.stamp.node, ahead))
        for _ in range(2):  # refused ones once more if the batch admitted others
            refused: list[LwwEntry] = []
            admitted = False
            for entry in pending:
                if self.admit is not None and not self.admit(entry):
                    refused.append(entry)
                    continue
                admitted = True
                previous = self._lww.entry(entry.ns, entry.key)
                if self._lww.merge(entry):
                    changed.append((entry, previous))
                    if entry.stamp.node != self.host_id and entry.stamp.wall_ms >= self._opened_ms:
                        # Older writes arrive with a join's full state: not a lag.
                        self.remote_writes += 1
                        self.remote_write_lag_ms += max(0, now_ms - entry.stamp.wall_ms)
            if not refused or not admitted:
                break
            pending = refused
        if refused:
            self._refused(sender_id, refused)
        if not changed:
            return
        if self._store is not None:
            try:
                self._store.append([e for e, _ in changed])
            except DirectoryStoreFailed as exc:
                # Not acknowledged to anyone: the writers hold these entries and
                # resend them after a restart; failing the merge would lose them now.
                self._emit(StoreFailed(str(exc)))
        for entry, previous in changed:
            self._lww_changed(entry, previous)
            if requeue:
                self._queue_lww(entry)

    def _refused(self, sender_id: str, refused: list[LwwEntry]) -> None:
        """Count entries ``admit`` refused; report the sender at most every few seconds
        (as misbehaving when it wrote one itself: an honest host never does)."""
        self.refused_entries += len(refused)
        now = self._clock()
        if now - self._refusals_noted.get(sender_id, float("-inf")) < REFUSAL_REPORT_S:
            return
        if len(self._refusals_noted) > 1024:
            self._refusals_noted.clear()
        self._refusals_noted[sender_id] = now
        own = [e for e in refused if e.stamp.node == sender_id]
        first = (own or refused)[0]
        what = (
            f"{len(refused)} lattice-wide entr{'y' if len(refused) == 1 else 'ies'} "
            f"(first {first.ns}/{first.key}) without a valid operator signature or role"
        )
        if own:
            self._emit(PeerMisbehaved(sender_id, f"wrote {what}"))
        else:
            self._emit(EntryRefused(sender_id, first.stamp.node, first.ns, first.key, len(refused)))

    def _merge_chunk(self, sender_id: str, chunk: LwwChunk, payload: bytes) -> None:
        current = self._lww.entry(chunk.ns, chunk.key)
        if current is not None and current.stamp >= chunk.stamp:
            return  # we hold this value or a newer one
        if self._chunks.has(chunk):
            return
        try:
            entry = self._chunks.add(chunk)
        except DecodeError as exc:
            self._misbehaved(sender_id, exc)
            return
        # Pass each new piece on at once: waiting for the whole value would
        # leave the spread to the writer alone, which sends each piece only
        # transmit-limit times.
        self._queue.push(("c", chunk.ns, chunk.key, chunk.index), payload)
        if entry is not None:
            self._chunks.discard(chunk.ns, chunk.key)
            self._merge_lww(sender_id, [entry], requeue=False)

    # --- change bookkeeping --------------------------------------------------

    def _host_changed(self, owner: str, keys: set[str]) -> None:
        self._emit(HostStateChanged(owner, tuple(sorted(keys))))
        if keys & _LOCATION_KEYS:
            self._actors.forget_locations(owner)
        if any(k.startswith(rec.ACTOR_PREFIX) for k in keys):
            self._actors.reindex(owner)
            self._emit(ActorsChanged(owner))

    def _lww_changed(self, entry: LwwEntry, previous: LwwEntry | None) -> None:
        if entry.value is None and (previous is None or previous.value is None):
            return  # a tombstone replacing nothing visible: nothing changed for readers
        if entry.ns == LINK_NS:
            link = link_from_value(entry.value)
            if link is not None:
                self._emit(LinkPut(link))
                return
            old = link_from_value(previous.value) if previous is not None else None
            if old is not None:
                self._emit(LinkDeleted(old.actor_id, old.contract_id, old.link_name))
            else:
                parts = parse_link_key(entry.key)
                if parts is not None:
                    self._emit(LinkDeleted(*parts))
        elif entry.ns == CONFIG_NS:
            self._emit(ConfigChanged(entry.key, entry.value))
        else:
            self._emit(EntryChanged(entry.ns, entry.key, entry.value))

    # --- queueing ------------------------------------------------------------

    def _queue_host(self, section: HostSection) -> None:
        ident = ("h", section.owner, tuple(e.key for e in section.entries))
        self._queue.push(ident, encode(HostDelta(section)))

    def _queue_lww(self, entry: LwwEntry) -> None:
        payload = encode(LwwDelta((entry,)))
        if len(payload) <= self.config.piggyback_bytes:
            self._queue.push(("l", entry.ns, entry.key), payload)
            return
        for chunk in split(entry, self.config.chunk_bytes):
            self._queue.push(("c", entry.ns, entry.key, chunk.index), encode(chunk))
        # no pieces (enormous key): push-pull carries it
