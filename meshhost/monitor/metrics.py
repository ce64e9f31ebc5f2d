"""Every figure of one host as Prometheus metrics, in a registry of its own.

:class:`HostMetrics` is two things:

* the host's :class:`~meshhost.observe.Observer`: calls made, calls run,
  actor starts and HTTP requests go into counters and histograms as they
  happen (and into :class:`~meshhost.monitor.window.RecentCalls` for the
  live views);
* a Prometheus collector that, at each scrape, reads the counters the layers
  keep anyway (membership, transport, directory, runtime, providers), so
  those cost nothing between scrapes.

Each host has its own ``CollectorRegistry`` (never the global one), so
several hosts in one process (tests, the simulator's lab) do not mix.
Every metric carries the labels ``host`` and ``lattice``; the names, their
units and their other labels are listed in docs/monitoring.md.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from meshhost.monitor.window import ActorTally, RecentCalls

if TYPE_CHECKING:
    from meshhost.monitor.source import MonitoredHost

__all__ = ["CALL_BUCKETS", "HostMetrics"]

CALL_BUCKETS = (
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Seconds; a small local call takes ~25 µs, a remote one ~0.3 ms, a slow one seconds."""
START_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BASE = ("host", "lattice")
MAX_SERIES = 5000
"""Label sets per tally kind; past it, new operations count as ``_other`` and new
actors as ``_other`` too (callers name both: a typo or a scan must not grow memory
and every scrape without bound)."""
OTHER = "_other"


class _Tally:
    """Count, sum and bucket counts of one label set; filled on the hot path, read at scrape."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self, bounds: int) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (bounds + 1)  # the last one: above every bound (+Inf)

    def add(self, seconds: float, bounds: tuple[float, ...]) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect_left(bounds, seconds)] += 1


class HostMetrics(Collector):
    """The metrics of one host; see the module docstring.

    The observer methods run on the trio thread for every call, so they only
    add to plain Python tallies (a dict lookup, two additions and a bisect,
    well under a microsecond; prometheus-client's own Counter and Histogram
    take a lock and walk the buckets on each observation); :meth:`collect`
    turns the tallies into counter and histogram families when scraped.
    """

    def __init__(self, host_id: str, lattice: str, host: MonitoredHost | None = None) -> None:
        self.host_id = host_id
        self.lattice = lattice
        self.host = host
        """Read at each scrape for the figures the layers count themselves."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.recent = RecentCalls(CALL_BUCKETS, time.monotonic())
        """Recent figures of the calls run on this host, per actor (``top``, the dashboard)."""
        self._made: dict[tuple[str, str, str, str], _Tally] = {}
        """(actor, operation, where, outcome) of the calls this host made."""
        self._ran: dict[tuple[str, str, str, str], _Tally] = {}
        """(actor, operation, peer, outcome) of the calls this host ran."""
        self._starts: dict[str, _Tally] = {}
        self._http: dict[tuple[str, str], _Tally] = {}
        """(actor, status) of HTTP requests answered."""
        self._failovers: dict[str, int] = {}
        self._retries: dict[tuple[str, str], int] = {}
        self.registry.register(self)

    # -- Observer (hot path) ---------------------------------------------------

    def invocation(
        self, actor: str, operation: str, where: str, outcome: str, seconds: float
    ) -> None:
        key = (actor, operation, where, outcome)
        tally = self._made.get(key)
        if tally is None:
            tally = _new_tally(self._made, key)
        tally.count += 1  # Tally.add, inlined: this runs on every call
        tally.total += seconds
        tally.buckets[bisect_left(CALL_BUCKETS, seconds)] += 1

    def ran(self, actor: str, operation: str, peer: str, outcome: str, seconds: float) -> None:
        key = (actor, operation, peer, outcome)
        tally = self._ran.get(key)
        if tally is None:
            tally = _new_tally(self._ran, key)
        tally.count += 1
        tally.total += seconds
        tally.buckets[bisect_left(CALL_BUCKETS, seconds)] += 1

    def recent_figures(self) -> dict[str, dict[str, Any]]:
        """Per actor run here: totals, and calls/s, errors/s, p50, p99 of the recent past
        (see :class:`~meshhost.monitor.window.RecentCalls`)."""
        per_actor: dict[str, list[Any]] = {}
        for (actor, _op, _peer, outcome), tally in list(self._ran.items()):
            row = per_actor.setdefault(actor, [0, 0, [0] * len(tally.buckets)])
            row[0] += tally.count
            row[1] += tally.count if outcome != "ok" else 0
            row[2] = [a + b for a, b in zip(row[2], tally.buckets, strict=True)]
        tallies = {a: ActorTally(c, e, tuple(b)) for a, (c, e, b) in per_actor.items()}
        return self.recent.summary(time.monotonic(), tallies)

    def failover(self, actor: str) -> None:
        self._failovers[actor] = self._failovers.get(actor, 0) + 1

    def retry(self, actor: str, reason: str) -> None:
        self._retries[actor, reason] = self._retries.get((actor, reason), 0) + 1

    def actor_started(self, actor: str, seconds: float) -> None:
        tally = self._starts.get(actor)
        if tally is None:
            tally = self._starts[actor] = _Tally(len(START_BUCKETS))
        tally.add(seconds, START_BUCKETS)

    def http_request(self, actor: str, status: int, seconds: float) -> None:
        key = (actor, str(status))
        tally = self._http.get(key)
        if tally is None:
            tally = self._http[key] = _Tally(len(CALL_BUCKETS))
        tally.add(seconds, CALL_BUCKETS)

    # -- Collector -------------------------------------------------------------

    def describe(self) -> list[Any]:
        return []  # names vary with what runs; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        base = [self.host_id, self.lattice]
        yield from self._observed(base)
        host = self.host
        if host is None:
            return
        yield from _membership(host, base)
        yield from _transport(host, base)
        yield from _directory(host, base)
        yield from _runtime(host, base)
        yield from _providers(host, base)

    def _observed(self, base: list[str]) -> Iterator[Any]:
        made, ran = dict(self._made), dict(self._ran)  # copies: the trio thread adds keys
        yield _counter(
            "meshhost_invocations",
            "Calls this host made, by where they were "
            "answered (local, remote, none) and how they ended (ok or the error "
            "code).",
            ["actor", "operation", "where", "outcome"],
            [([*base, *key], t.count) for key, t in sorted(made.items())],
        )
        yield _histogram(
            "meshhost_invocation_duration_seconds",
            "Time from asking for a call to its answer, failovers included, as the caller saw it.",
            ["actor", "where"],
            base,
            CALL_BUCKETS,
            _merge(made, lambda k: (k[0], k[2])),
        )
        yield _counter(
            "meshhost_invocation_failovers",
            "Calls moved to the next host after "
            "one answered 'not here, not now' (unavailable, overloaded, gone).",
            ["actor"],
            [([*base, a], n) for a, n in sorted(self._failovers.items())],
        )
        yield _counter(
            "meshhost_invocation_retries",
            "Extra attempts of a call on another "
            "host: after a failure (failover) or beside a slow one (hedge).",
            ["actor", "reason"],
            [([*base, *k], n) for k, n in sorted(self._retries.items())],
        )
        deadlines: dict[str, int] = {}
        for (actor, _op, _where, outcome), tally in made.items():
            if outcome == "timeout":
                deadlines[actor] = deadlines.get(actor, 0) + tally.count
        yield _counter(
            "meshhost_invocation_deadline_exceeded",
            "Calls this host made that ran out of time.",
            ["actor"],
            [([*base, a], n) for a, n in sorted(deadlines.items())],
        )
        yield _counter(
            "meshhost_actor_calls",
            "Calls run on this host's instances, by calling host (peer) and outcome.",
            ["actor", "operation", "peer", "outcome"],
            [([*base, *key], t.count) for key, t in sorted(ran.items())],
        )
        yield _histogram(
            "meshhost_actor_call_duration_seconds",
            "Time an actor call took on this host, waiting for a free instance included.",
            ["actor"],
            base,
            CALL_BUCKETS,
            _merge(ran, lambda k: (k[0],)),
        )
        yield _histogram(
            "meshhost_actor_start_duration_seconds",
            "Time to start instances of "
            "an actor (verify, compile or load from the cache, instantiate).",
            ["actor"],
            base,
            START_BUCKETS,
            {(a,): t for a, t in sorted(self._starts.items())},
        )
        http = dict(self._http)
        yield _counter(
            "meshhost_http_requests",
            "Requests the HTTP server provider answered, by status code.",
            ["actor", "status"],
            [([*base, *key], t.count) for key, t in sorted(http.items())],
        )
        yield _histogram(
            "meshhost_http_request_duration_seconds",
            "Time from an HTTP request to its answer.",
            ["actor"],
            base,
            CALL_BUCKETS,
            _merge(http, lambda k: (k[0],)),
        )


def _new_tally(
    tallies: dict[tuple[str, str, str, str], _Tally], key: tuple[str, str, str, str]
) -> _Tally:
    """The tally for a new label set (actor, operation, ...): its own while there are
    fewer than :data:`MAX_SERIES`, else one shared by the operations (then actors) over."""
    if len(tallies) >= MAX_SERIES:
        key = (key[0], OTHER, *key[2:])
        if key not in tallies and len(tallies) >= MAX_SERIES + 100:
            key = (OTHER, OTHER, *key[2:])
        found = tallies.get(key)
        if found is not None:
            return found
    tally = tallies[key] = _Tally(len(CALL_BUCKETS))
    return tally


def _merge(tallies: dict[Any, _Tally], key: Any) -> dict[tuple[str, ...], _Tally]:
    """Tallies summed over the labels ``key`` drops."""
    out: dict[tuple[str, ...], _Tally] = {}
    for k, tally in sorted(tallies.items()):
        merged = out.get(key(k))
        if merged is None:
            merged = out[key(k)] = _Tally(len(tally.buckets) - 1)
        merged.count += tally.count
        merged.total += tally.total
        merged.buckets = [a + b for a, b in zip(merged.buckets, tally.buckets, strict=True)]
    return out


def _histogram(
    name: str,
    doc: str,
    labels: list[str],
    base: list[str],
    bounds: tuple[float, ...],
    tallies: dict[tuple[str, ...], _Tally],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[*BASE, *labels])
    for values, tally in tallies.items():
        running, buckets = 0, []
        for bound, n in zip((*bounds, math.inf), tally.buckets, strict=True):
            running += n
            buckets.append((floatToGoString(bound), running))  # type: ignore[no-untyped-call]
        family.add_metric([*base, *values], buckets, tally.total)
    return family


def _counter(
    name: str, doc: str, labels: list[str], rows: Sequence[tuple[list[str], float]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[*BASE, *labels])
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _gauge(
    name: str, doc: str, labels: list[str], rows: Sequence[tuple[list[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[*BASE, *labels])
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _membership(host: MonitoredHost, base: list[str]) -> Iterator[Any]:
    core, driver = host.core, host.membership
    if core is None or driver is None:
        return
    states: dict[str, int] = {"alive": 0, "suspect": 0, "dead": 0, "left": 0}
    for member in core.members():
        name = member.state.name.lower()
        states[name] = states.get(name, 0) + 1
    yield _gauge(
        "meshhost_members",
        "Hosts this host knows, itself included, by state.",
        ["state"],
        [([*base, s], n) for s, n in sorted(states.items())],
    )
    yield _gauge(
        "meshhost_membership_health_score",
        "Lifeguard local health score "
        "(0 = healthy; higher: this host's own probes are failing, it slows down).",
        [],
        [(base, core.awareness)],
    )
    s, u = core.stats, driver.stats
    one = [
        ("meshhost_membership_probes", "Probes this host sent.", s["probes"]),
        (
            "meshhost_membership_probe_failures",
            "Probes that got no ack in time.",
            s["probe_failures"],
        ),
        ("meshhost_membership_suspicions", "Peers this host started to suspect.", s["suspicions"]),
        (
            "meshhost_membership_suspicions_refuted",
            "Suspected peers that proved alive.",
            s["suspicions_refuted"],
        ),
        (
            "meshhost_membership_refutations",
            "Times this host refuted a suspicion or death of itself.",
            s["refutations"],
        ),
        (
            "meshhost_membership_dead_refuted",
            "Times this host was declared dead while alive and refuted it (false positives).",
            s["dead_refuted"],
        ),
        ("meshhost_membership_flaps", "Peers declared dead that came back alive.", s["flaps"]),
        (
            "meshhost_membership_push_pulls",
            "Push-pull (anti-entropy) exchanges completed.",
            u.push_pulls,
        ),
    ]
    for name, doc, value in one:
        yield _counter(name, doc, [], [(base, value)])
    yield _counter(
        "meshhost_membership_packets",
        "UDP datagrams, by direction.",
        ["direction"],
        [([*base, "in"], u.received), ([*base, "out"], u.sent)],
    )
    # The keyring counts datagrams that failed to open (wrong key, forged, replayed).
    ks = host.keyring.stats
    dropped = [([*base, "oversized"], u.oversized), ([*base, "malformed"], u.core_errors)]
    dropped += [([*base, n], getattr(ks, n)) for n in ("too_short", "bad_version", "bad_auth")]
    yield _counter(
        "meshhost_membership_bad_packets",
        "Datagrams dropped: too big, malformed, or not sealed with the lattice key.",
        ["reason"],
        dropped,
    )
    yield _counter(
        "meshhost_membership_bytes",
        "UDP bytes, by direction.",
        ["direction"],
        [([*base, "in"], u.bytes_received), ([*base, "out"], u.bytes_sent)],
    )


def _transport(host: MonitoredHost, base: list[str]) -> Iterator[Any]:
    t = host.transport
    if t is None:
        return
    s = t.stats
    yield _gauge(
        "meshhost_transport_sessions",
        "Noise sessions open to peers.",
        [],
        [(base, s.get("sessions_open", 0))],
    )
    yield _counter(
        "meshhost_transport_handshakes",
        "Noise handshakes, by outcome.",
        ["outcome"],
        [
            ([*base, "ok"], s.get("handshakes_completed", 0)),
            ([*base, "failed"], s.get("handshake_failures", 0)),
            ([*base, "timeout"], s.get("handshake_timeouts", 0)),
        ],
    )
    yield _counter(
        "meshhost_transport_bytes",
        "TCP bytes on Noise sessions, by direction.",
        ["direction"],
        [([*base, "in"], s.get("bytes_received", 0)), ([*base, "out"], s.get("bytes_sent", 0))],
    )
    yield _counter(
        "meshhost_transport_requests",
        "Requests over sessions, by direction.",
        ["direction"],
        [
            ([*base, "in"], s.get("requests_received", 0)),
            ([*base, "out"], s.get("requests_sent", 0)),
        ],
    )
    yield _counter(
        "meshhost_transport_request_timeouts",
        "Requests to peers that got no answer in time.",
        [],
        [(base, s.get("request_timeouts", 0))],
    )
    yield _counter(
        "meshhost_transport_connections_refused",
        "Inbound connections closed "
        "unanswered before a session: over a source's handshake rate, over "
        "max_connections, a replayed handshake message 1, or evicted at "
        "max_connections before proving the secret.",
        ["reason"],
        [
            ([*base, "rate"], s.get("connections_refused_rate", 0)),
            ([*base, "limit"], s.get("connections_refused_limit", 0)),
            ([*base, "evicted"], s.get("connections_evicted_unproven", 0)),
            ([*base, "replay"], s.get("handshakes_replayed", 0)),
        ],
    )
    failed = [
        ([*base, k.removeprefix("handshake_failed_")], v)
        for k, v in sorted(s.items())
        if k.startswith("handshake_failed_")
    ]
    yield _counter(
        "meshhost_transport_handshake_failures",
        "Handshakes that failed, by the "
        "error code that ended them (unauthenticated: wrong lattice secret or "
        "identity; protocol; unavailable: no message in time; ...).",
        ["reason"],
        failed,
    )
    closes = [
        ([*base, k.removeprefix("closed_")], v)
        for k, v in sorted(s.items())
        if k.startswith("closed_")
    ]
    yield _counter(
        "meshhost_transport_sessions_closed",
        "Sessions closed, by the error code that ended them.",
        ["reason"],
        closes,
    )
    # Sessions count their own rekeys and streams; the transport keeps the
    # counts of the sessions that ended.
    open_sessions = [c.session for c in list(getattr(t, "_conns", ()))]

    def total(name: str) -> int:
        return s.get(f"ended_sessions_{name}", 0) + sum(getattr(x, name, 0) for x in open_sessions)

    yield _counter(
        "meshhost_transport_rekeys",
        "Session key ratchets (Noise rekeys) done.",
        [],
        [(base, total("rekeys"))],
    )
    yield _counter(
        "meshhost_transport_streams",
        "Bodies too big for one frame, sent or received in chunks, by direction.",
        ["direction"],
        [([*base, "in"], total("streams_received")), ([*base, "out"], total("streams_sent"))],
    )


def _directory(host: MonitoredHost, base: list[str]) -> Iterator[Any]:
    d, driver = host.directory, host.directory_driver
    if d is None:
        return
    hosts = d.hosts()
    lattice_entries = len(d.lww_snapshot())
    yield _gauge(
        "meshhost_directory_entries",
        "Directory entries this host holds: "
        "lattice-wide (links, config, manifests) and hosts with per-host state.",
        ["kind"],
        [([*base, "lattice"], lattice_entries), ([*base, "hosts"], len(hosts))],
    )
    lag = SummaryMetricFamily(
        "meshhost_directory_convergence_lag_seconds",
        "Delay from a lattice-wide write "
        "(link, config, manifest) on its writer to its arrival here, by the writer's clock; "
        "sum and count of the writes that arrived since this host started.",
        labels=list(BASE),
    )
    lag.add_metric(base, d.remote_writes, d.remote_write_lag_ms / 1000)
    yield lag
    if driver is None:
        return
    yield _counter(
        "meshhost_directory_syncs",
        "Directory pulls from peers, by outcome.",
        ["outcome"],
        [([*base, "ok"], driver.pulls), ([*base, "failed"], driver.pull_failures)],
    )
    yield _counter(
        "meshhost_directory_sync_bytes",
        "Bytes of directory pulls (asked and answered), by direction.",
        ["direction"],
        [([*base, "in"], driver.sync_bytes_received), ([*base, "out"], driver.sync_bytes_sent)],
    )
    age = _since(driver.last_pull_at)
    yield _gauge(
        "meshhost_directory_sync_age_seconds",
        "Seconds since a peer last "
        "answered a directory pull (how stale this host's view may be); no sample "
        "before the first.",
        [],
        [] if age is None else [(base, age)],
    )


def _since(at: float | None) -> float | None:
    if at is None:
        return None
    import trio  # only reached inside the host's trio run

    try:
        return max(0.0, trio.current_time() - at)
    except RuntimeError:  # scraped from outside trio (tests): no clock to compare
        return None


def _runtime(host: MonitoredHost, base: list[str]) -> Iterator[Any]:
    actors = host.actors
    if actors is None:
        return
    loaded = actors.runtime.actors()
    yield _gauge(
        "meshhost_actor_instances",
        "Instances of each actor this host runs (asked for).",
        ["actor"],
        [([*base, a["id"]], a["instances"]) for a in actors.inventory()["actors"]],
    )
    yield _gauge(
        "meshhost_actor_instances_live",
        "Instances that exist now, idle or busy.",
        ["actor"],
        [([*base, a.actor_id], a.pool.live) for a in loaded],
    )
    yield _counter(
        "meshhost_actor_pool_waits",
        "Calls that found every instance of the actor busy and waited for one.",
        ["actor"],
        [([*base, a.actor_id], a.pool.waits) for a in loaded],
    )
    traps = [([*base, a], n) for (a, kind), n in sorted(actors.faults.items()) if kind == "trap"]
    yield _counter(
        "meshhost_actor_traps",
        "Calls whose guest trapped (its instance is replaced).",
        ["actor"],
        traps,
    )
    limits = [
        ([*base, a, kind], n) for (a, kind), n in sorted(actors.faults.items()) if kind != "trap"
    ]
    yield _counter(
        "meshhost_actor_limit_hits",
        "Calls stopped by one of the actor's limits "
        "(cpu, memory, fuel, deadline, instances, message).",
        ["actor", "limit"],
        limits,
    )
    cache = actors.runtime.engine.stats
    yield _counter(
        "meshhost_runtime_compiles",
        "Modules compiled (cache misses).",
        [],
        [(base, cache.compiles)],
    )
    yield _counter(
        "meshhost_runtime_cache_hits",
        "Modules loaded from the compiled-module cache.",
        [],
        [(base, cache.cache_hits)],
    )
    yield _counter(
        "meshhost_runtime_compile_seconds",
        "Time spent compiling modules (cache misses).",
        [],
        [(base, cache.compile_seconds)],
    )
    yield _gauge(
        "meshhost_invocations_in_flight",
        "Calls running on this host now.",
        [],
        [(base, actors.in_flight)],
    )


def _providers(host: MonitoredHost, base: list[str]) -> Iterator[Any]:
    actors = host.actors
    if actors is None:
        return
    dispatcher = actors.dispatcher
    yield _counter(
        "meshhost_denials",
        "Host calls refused by policy, by actor and reason "
        "(not_signed, no_link, actor_call, host_not_allowed).",
        ["actor", "reason"],
        [([*base, a, r], n) for (a, r), n in sorted(dispatcher.denials.items())],
    )
    yield _counter(
        "meshhost_provider_operations",
        "Host calls answered by a built-in "
        "provider (key-value, messaging, ...), by contract, operation and outcome.",
        ["contract", "operation", "outcome"],
        [([*base, c, o, x], n) for (c, o, x), n in sorted(dispatcher.provider_ops.items())],
    )
    listeners = actors.httpserver.listener_stats()
    yield _gauge(
        "meshhost_http_connections",
        "Connections the HTTP server provider serves now, per listener (actor, link name).",
        ["actor", "link_name"],
        [([*base, link.actor_id, link.link_name], st.open_connections) for link, st in listeners],
    )
    yield _counter(
        "meshhost_http_connections_refused",
        "Connections refused with a 503 at a connection cap (total or per source address).",
        ["actor", "link_name"],
        [([*base, link.actor_id, link.link_name], st.refused) for link, st in listeners],
    )
    m = actors.messaging
    yield _counter(
        "meshhost_messaging_deliveries",
        "Messages delivered to subscribed actors, by outcome.",
        ["outcome"],
        [([*base, "ok"], m.delivered), ([*base, "failed"], m.failed)],
    )
