"""Actors on this host, and calls to actors anywhere in the lattice.

:class:`ActorHost` joins the runtime, the capabilities layer and the
invocation router for one host:

* the :class:`~meshhost.runtime.Runtime` runs the actors this host was asked
  to run; their instance counts are published in the directory (per-host
  state), which is how every other host finds them;
* the :class:`~meshhost.capabilities.Dispatcher` with the built-in providers
  answers their host calls; link definitions come from the directory;
* the :class:`~meshhost.rpc.invoker.Invoker` sends calls to whichever host
  runs the target (this one first) and answers calls from peers.

Every way into an actor goes through :meth:`ActorHost.invoke`: the CLI's
``call``, provider deliveries (HTTP requests, messages), and actor-to-actor
calls whose target runs elsewhere.  A call that arrives from a peer runs
with :meth:`run_local`.

Instances: a host runs one instance pool per actor, sized to the number of
instances it was asked for: by hand (``start``/``scale``/``stop``) and by
manifests (the reconciler, per component key).  The two add up.

Why this module is long (~920 lines): it is where the runtime, the
capabilities layer and the router meet, and both halves of it (the instance
lifecycle: start, stop, scale, links; and the call paths: invoke, run_local,
the guest's local and remote calls, peer ops) work on the same table of
running actors and their instance pools. The call paths are the hot path
the benchmarks measure and were being tuned while this was written; the
lifecycle half is the seam to take out next if it grows.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio

from meshhost.capabilities import (
    HTTPSERVER,
    Dispatcher,
    HttpClientProvider,
    HttpServerProvider,
    KeyValueProvider,
    LinkDefinition,
    LoggingProvider,
    MessagingProvider,
    NumberGenProvider,
    PolicyConfig,
    ResolvedActor,
)
from meshhost.capabilities.policy import ActorIdentity, is_actor_key
from meshhost.capabilities.providers.base import INCOMING_TRACEPARENT
from meshhost.config import ActorLimitsConfig, limits_with
from meshhost.directory import ActorLocation, ActorSummary, Directory
from meshhost.errors import (
    ActorLimitExceeded,
    ActorNotFound,
    ActorTrapped,
    ControlArgumentError,
    DeadlineExceeded,
    HopLimitExceeded,
    HostShuttingDown,
    HostUnreachable,
    LocalProtocolError,
    MeshError,
    ModuleNotStored,
)
from meshhost.identity import short_id
from meshhost.identity.claims import verify_module
from meshhost.modstore import ModuleStore
from meshhost.monitor.spans import SAMPLED, SpanRing, TraceContext, parse_traceparent
from meshhost.observe import NULL_OBSERVER, Observer
from meshhost.rpc import peer
from meshhost.rpc.envelope import MAX_HOPS, Invocation
from meshhost.rpc.inline import InlineGate
from meshhost.rpc.invoker import Invoker, Refresh
from meshhost.rpc.router import Candidate, Router
from meshhost.runtime import ActorLimits, LoadedActor, Runtime, current_deadline
from meshhost.runtime.api import MIB
from meshhost.transport import channels

__all__ = ["ActorHost", "HostSender"]

log = logging.getLogger(__name__)

DEFAULT_CALL_TIMEOUT_S = 10.0
"""Deadline of a provider-started or actor-to-actor call when none is known."""
DRAIN_POLL_S = 0.05
MAX_INSTANCES = 1000
"""Instances of one actor on one host (each is a wasm store of its own)."""
MAX_LOCATED = 1024
"""Actor keys whose call candidates :meth:`ActorHost._locate` keeps (all are
dropped when full: a caller naming many actors only loses the shortcut)."""

HostSender = Callable[[str, int, bytes, float], Awaitable[bytes]]
"""``await send(host_id, channel, payload, timeout_s)``: a request to a peer.

Raises HostUnreachable when the peer cannot be reached or did not answer in
time, and RemoteInvocationError-compatible MeshErrors for error answers."""

EventSink = Callable[[dict[str, Any]], None]

_call_context = threading.local()
"""Per worker thread: the invocation a guest is running for (hops, trace) in ``inv``,
and in ``span`` the TraceContext of the span it runs in (the parent of its calls)."""


@dataclass(slots=True)
class _Running:
    digest: str
    limits: ActorLimitsConfig
    manual: int = 0
    managed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.manual + sum(self.managed.values())


class ActorHost:
    """Runtime + providers + router of one host; see the module docstring."""

    def __init__(
        self,
        *,
        host_id: str,
        lattice: str,
        data_dir: Path,
        directory: Directory,
        send: HostSender,
        is_live: Callable[[str], bool],
        rng: Any,
        policy: PolicyConfig | None = None,
        limits: ActorLimits | None = None,
        limit_defaults: ActorLimitsConfig | None = None,
        allowed_issuers: tuple[str, ...] = (),
        on_event: EventSink | None = None,
        observer: Observer | None = None,
        admission: Callable[[str, str], None] | None = None,
        refresh: Refresh | None = None,
    ) -> None:
        self.host_id = host_id
        self.lattice = lattice
        self.directory = directory
        self._send = send
        self._is_live = is_live
        self._located: dict[str, tuple[tuple[ActorLocation, ...], list[Candidate]]] = {}
        """Per actor key: the directory's locations and the candidates built from
        them, reused while both hold (see :meth:`_locate`)."""
        self._on_event = on_event or (lambda _event: None)
        self.limits = limits or ActorLimits()
        self.limit_defaults = limit_defaults or ActorLimitsConfig()
        """Each actor's runtime limits unless its ``start`` names its own."""
        self.modules = ModuleStore(data_dir / "modules" / "blobs")
        self.dispatcher = Dispatcher(policy=policy or PolicyConfig())
        self.dispatcher.resolve_actor = self._resolve_for_guest
        self.dispatcher.current_invocation_id = _current_invocation_id
        self.spans = SpanRing()
        """This host's recent spans (control op ``spans``; see meshhost.monitor.spans)."""
        self._ids = random.Random(rng.getrandbits(64))
        """Trace and span ids: a stream of its own, so tracing leaves ``rng``'s draws alone."""
        self.runtime = Runtime(
            data_dir, _TracedHostCalls(self), allowed_issuers=allowed_issuers, limits=self.limits
        )
        self.messaging = MessagingProvider(
            self._invoke_for_provider, inbox_tag=host_id, forward_reply=self._forward_reply
        )
        self.messaging.current_traceparent = _current_traceparent
        self.httpserver = HttpServerProvider(self._invoke_for_provider)
        for provider in (
            KeyValueProvider(data_dir / "kv"),
            LoggingProvider(),
            NumberGenProvider(),
            self.messaging,
            self.httpserver,
            HttpClientProvider(),
        ):
            self.dispatcher.register(provider)
        self.router = Router(host_id, rng)
        self.invoker = Invoker(
            host_id=host_id,
            lattice=lattice,
            router=self.router,
            locate=self._locate,
            send=self._send_invocation,
            run_local=self.run_local,
            refresh=refresh,
        )
        self._running: dict[str, _Running] = {}
        self._gate = InlineGate()
        self._refused: dict[tuple[str, str, str], str] = {}
        self._linked: frozenset[str] = frozenset()
        """Actors that are the source of some link: their host calls may need trio."""
        self._lock = trio.Lock()
        self.in_flight = 0
        self.draining = False
        self.observer: Observer = NULL_OBSERVER
        """Told of calls run here and actor starts (see :meth:`set_observer`)."""
        self.faults: Counter[tuple[str, str]] = Counter()
        """Failed runs per (actor, kind): ``trap`` or the limit hit (``cpu``, ``memory``,
        ``fuel``, ``deadline``, ``instances``); read by the monitor."""
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self.admission = admission
        """``admission(actor_id, issuer)`` raises when this host must not run the actor
        (revoked, issuer not allowed lattice-wide): checked at every start."""
        if observer is not None:
            self.set_observer(observer)

    def set_observer(self, observer: Observer) -> None:
        """Report calls made, calls run, starts and HTTP requests to ``observer``."""
        self.observer = observer
        self.invoker.observer = observer
        self.httpserver.observer = observer

    # -- service ---------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the providers (with the directory's links) until cancelled; unload on exit."""
        self._trio_token = trio.lowlevel.current_trio_token()
        try:
            await self.apply_links(self.directory.links())
            async with trio.open_nursery() as nursery:
                await nursery.start(self.dispatcher.serve)
                task_status.started()
                await trio.sleep_forever()
        finally:
            for actor_id in list(self._running):
                self.directory.remove_actor(actor_id)
            self._running.clear()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.runtime.close)

    async def drain(self, timeout_s: float) -> int:
        """Refuse new calls from peers; wait up to ``timeout_s`` for calls in flight.

        Returns how many were still running when the time ran out.
        """
        self.draining = True
        with trio.move_on_after(timeout_s):
            while self.in_flight:
                await trio.sleep(DRAIN_POLL_S)
        return self.in_flight

    # -- links -------------------------------------------------------------------

    async def apply_links(self, links: list[LinkDefinition]) -> None:
        """Make the dispatcher's links exactly ``links``; log the ones a provider refused."""
        refused = {link.key: reason for link, reason in await self.dispatcher.apply_links(links)}
        for key, reason in refused.items():
            if self._refused.get(key) != reason:  # say it once, not at every resync
                log.warning("link %s refused on this host: %s", "/".join(key), reason)
        self._refused = refused
        self._refresh_linked()

    async def put_link(self, link: LinkDefinition) -> None:
        try:
            await self.dispatcher.put_link(link)
            self._refused.pop(link.key, None)
        except MeshError as exc:
            if self._refused.get(link.key) != str(exc):
                log.warning("%s refused on this host: %s", link.describe(), exc)
            self._refused[link.key] = str(exc)
        self._refresh_linked()

    async def del_link(self, actor_id: str, contract_id: str, link_name: str) -> None:
        await self.dispatcher.del_link(actor_id, contract_id, link_name)
        self._refresh_linked()

    def _refresh_linked(self) -> None:
        self._linked = frozenset(link.actor_id for link in self.dispatcher.links.snapshot())

    # -- starting and stopping --------------------------------------------------

    async def start(
        self,
        module: bytes,
        count: int = 1,
        *,
        managed_key: str | None = None,
        limits: Mapping[str, Any] | None = None,
    ) -> LoadedActor:
        """Run ``count`` more instances of the signed actor in ``module``.

        ``managed_key``: instances belong to that manifest component (the
        reconciler's); otherwise they are started by hand.  ``limits``: the
        actor's runtime limits that differ from this host's defaults (names of
        :data:`~meshhost.config.LIMIT_BOUNDS`); given, they replace the
        actor's limits here (all its instances restart with them); None keeps
        the limits it runs with (the defaults for a new actor).  Raises
        InvalidActorLimits, ActorLimitExceeded (``instances``), and the
        runtime's ClaimsError / ActorLoadError subclasses.
        """
        if count < 1:
            raise LocalProtocolError(f"count must be at least 1, got {count}")
        wanted = None if limits is None else limits_with(self.limit_defaults, limits)
        async with self._lock:
            claims = verify_module(
                module, now=time.time(), allowed_issuers=self.runtime.allowed_issuers
            )
            if self.admission is not None:
                self.admission(claims.subject, claims.issuer)
            digest = await trio.to_thread.run_sync(self.modules.put, module)
            actor_id = claims.subject
            running = old = self._running.get(actor_id)
            if (
                running is None
                or running.digest != digest
                or (wanted is not None and wanted != running.limits)
            ):
                new_limits = wanted or (old.limits if old is not None else self.limit_defaults)
                running = _Running(digest, new_limits)
                if old is not None:  # same actor, new module or limits: the counts stay
                    running.manual, running.managed = old.manual, dict(old.managed)
            _check_instances(actor_id, claims.name or "", running, running.total + count)
            if running is not old:
                self._running[actor_id] = running
            if managed_key is None:
                running.manual += count
            else:
                running.managed[managed_key] = running.managed.get(managed_key, 0) + count
            started = time.perf_counter()
            try:
                resized = await self._resize(actor_id, running, module)
            except BaseException:
                if old is not running:  # a new module failed: keep what ran before
                    if old is None:
                        self._running.pop(actor_id, None)
                    else:
                        self._running[actor_id] = old
                elif managed_key is None:
                    running.manual -= count
                else:
                    running.managed[managed_key] -= count
                raise
            assert resized is not None  # count >= 1 was just added
            actor = resized
            self.observer.actor_started(actor_id, time.perf_counter() - started)
        self._event("actor_started", actor.actor_id, name=actor.name, count=count)
        return actor

    async def stop(
        self, actor_id: str, count: int | None = None, *, managed_key: str | None = None
    ) -> int:
        """Stop ``count`` instances (all when None); returns how many stopped.

        Hand-started instances are stopped by hand; ``managed_key`` stops
        instances of that manifest component only.  Raises ActorNotFound.
        """
        async with self._lock:
            running = self._running.get(actor_id)
            if running is None:
                raise ActorNotFound(
                    actor_id, "", f"is not running on host {short_id(self.host_id)}"
                )
            if managed_key is None:
                have = running.manual if running.managed else running.total
                stopped = have if count is None else min(count, have)
                if running.managed:
                    running.manual -= stopped
                else:
                    running.manual = have - stopped
            else:
                have = running.managed.get(managed_key, 0)
                stopped = have if count is None else min(count, have)
                if have - stopped:
                    running.managed[managed_key] = have - stopped
                else:
                    running.managed.pop(managed_key, None)
            if stopped:
                await self._resize(actor_id, running, None)
        if stopped:
            self._event("actor_stopped", actor_id, count=stopped)
        return stopped

    async def stop_refused(
        self, refusal: Callable[[str, str], str | None]
    ) -> list[tuple[str, str]]:
        """Stop every instance (by hand or managed) of each running actor for which
        ``refusal(actor_id, issuer)`` gives a reason; returns ``(actor_id, reason)`` pairs."""
        stopped = []
        async with self._lock:
            for loaded in self.runtime.actors():
                ref = loaded.ref
                reason = refusal(ref.actor_id, ref.issuer)
                running = self._running.get(ref.actor_id)
                if reason is None or running is None:
                    continue
                count = running.total
                running.manual, running.managed = 0, {}
                await self._resize(ref.actor_id, running, None)
                stopped.append((ref.actor_id, reason, count))
        for actor_id, reason, count in stopped:
            self._event("actor_stopped", actor_id, count=count, reason=reason)
        return [(actor_id, reason) for actor_id, reason, _ in stopped]

    async def scale(self, actor_id: str, count: int) -> int:
        """Set the hand-started instances of ``actor_id`` to ``count``; returns the total."""
        async with self._lock:
            running = self._running.get(actor_id)
            if running is None and count == 0:
                return 0  # already none here
            if running is None:
                raise ActorNotFound(
                    actor_id,
                    "",
                    f"is not running on host {short_id(self.host_id)}; start it there first",
                )
            before = running.total
            _check_instances(actor_id, "", running, running.total - running.manual + count)
            running.manual = count
            await self._resize(actor_id, running, None)
            total = running.total
        if total > before:
            self._event("actor_started", actor_id, count=total - before)
        elif total < before:
            self._event("actor_stopped", actor_id, count=before - total)
        return total

    async def _resize(
        self, actor_id: str, running: _Running, module: bytes | None
    ) -> LoadedActor | None:
        """Make the runtime's pool match ``running.total`` (unload at 0: returns None)."""
        self._gate.forget(actor_id)
        total = running.total
        if total <= 0:
            self._running.pop(actor_id, None)
            try:
                self.runtime.unload(actor_id)
            except ActorNotFound:
                pass
            self.directory.remove_actor(actor_id)
            return None
        if total > MAX_INSTANCES:
            raise LocalProtocolError(
                f"{total} instances of {actor_id} on one host is over the limit of {MAX_INSTANCES}"
            )
        current = self.runtime.actors()
        loaded = next((a for a in current if a.actor_id == actor_id), None)
        wanted = self._limits_for(running)
        if module is not None or loaded is None or loaded.limits != wanted:
            if module is None:
                module = self.modules.get(running.digest)
                if module is None:
                    raise ActorNotFound(actor_id, "", "its module is gone from the module store")
            loaded = await self.runtime.load_async(module, limits=wanted)
        ref = loaded.ref
        self.directory.set_actor(
            ActorSummary(ref.actor_id, ref.name, ref.caps, ref.call_alias or "", ref.issuer),
            total,
        )
        return loaded

    def _limits_for(self, running: _Running) -> ActorLimits:
        """The runtime's limits for ``running``: its own, one pool slot per instance."""
        own = running.limits
        return replace(
            self.limits,
            max_instances=running.total,
            memory_bytes=own.max_memory_mib * MIB,
            cpu_time_s=own.max_cpu_time_ms / 1000,
            deadline_s=own.max_call_time_ms / 1000,
        )

    # -- queries -------------------------------------------------------------------

    def inventory(self) -> dict[str, Any]:
        """This host's actors and providers, as plain data (control op ``inventory``)."""
        actors = []
        for loaded in sorted(self.runtime.actors(), key=lambda a: a.actor_id):
            running = self._running.get(loaded.actor_id)
            if running is None:
                continue
            actors.append(
                {
                    "id": loaded.actor_id,
                    "name": loaded.name,
                    "instances": running.total,
                    "manual": running.manual,
                    "managed": dict(running.managed),
                    "caps": list(loaded.ref.caps),
                    "call_alias": loaded.ref.call_alias or "",
                    "kind": loaded.kind,
                    "module_sha256": running.digest,
                    "limits": running.limits.as_dict(),
                }
            )
        listeners = []
        http_links = [
            link
            for contract in (HTTPSERVER, *self.httpserver.CONTRACT_ALIASES)
            for link in self.dispatcher.links.for_contract(contract)
        ]
        for link in http_links:  # wascc:http_server links too
            info = self.httpserver.listener_info(link)
            if info is not None:
                listeners.append({"actor": link.actor_id, "link_name": link.link_name, **info})
        return {
            "host": self.host_id,
            "actors": actors,
            "providers": sorted(p.contract_id for p in self.dispatcher.providers),
            "http": sorted(listeners, key=lambda x: (x["actor"], x["link_name"])),
        }

    def managed_running(self) -> dict[str, int]:
        """Instances per manifest component key on this host (for the reconciler)."""
        out: dict[str, int] = {}
        for running in self._running.values():
            for key, n in running.managed.items():
                out[key] = out.get(key, 0) + n
        return out

    def actor_of_managed(self, key: str) -> str | None:
        """The actor whose instances run for manifest component ``key`` here, or None."""
        return next((a for a, r in self._running.items() if r.managed.get(key)), None)

    # -- calls -----------------------------------------------------------------------

    async def invoke(
        self,
        target: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        origin_actor: str = "",
        hops: int = 0,
        parent: TraceContext | None = None,
    ) -> bytes:
        """Call ``operation`` on ``target`` (``M…`` key or call alias) wherever it runs."""
        answer, _host, _ctx = await self.call(
            target,
            operation,
            payload,
            timeout_s=timeout_s,
            origin_actor=origin_actor,
            hops=hops,
            parent=parent,
        )
        return answer

    async def call(
        self,
        target: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        origin_actor: str = "",
        hops: int = 0,
        parent: TraceContext | None = None,
    ) -> tuple[bytes, str, TraceContext]:
        """:meth:`invoke`, also returning the host that answered and the call's client span.

        The call is a ``client`` span of trace ``parent`` (a new trace when
        None); its id travels in the envelope as the parent of the target's span.
        """
        trace_id = parent.trace_id if parent is not None else self.new_id(16)
        ctx = TraceContext(trace_id, self.new_id(8), parent.flags if parent else SAMPLED)
        start, status, host = time.time_ns(), "ok", ""
        try:
            answer, host = await self.invoker.call(
                target,
                operation,
                payload,
                timeout_s=timeout_s,
                origin_actor=origin_actor,
                hops=hops,
                trace_id=trace_id,
                parent_span=ctx.span_id,
                trace_flags=ctx.flags,
            )
        except BaseException as exc:
            status = _status(exc)
            raise
        finally:
            self.spans.add(
                trace_id,
                ctx.span_id,
                parent.span_id if parent is not None else b"",
                f"call {operation}",
                "client",
                self.host_id,
                start,
                time.time_ns(),
                status,
                (("actor", target), ("operation", operation), ("answered_by", host)),
            )
        return answer, host, ctx

    def new_id(self, size: int) -> bytes:
        """A random trace (16) or span (8) id, never all zero (W3C)."""
        return (self._ids.getrandbits(size * 8) or 1).to_bytes(size, "big")

    async def run_local(self, inv: Invocation) -> bytes:
        """Run ``inv`` on this host's instances of its target.

        Raises ActorNotFound (the caller fails over) when the actor is not
        here, HostShuttingDown while draining, or the runtime's errors.
        """
        if self.draining and inv.origin_host != self.host_id:
            raise HostShuttingDown(
                f"host {short_id(self.host_id)} is shutting down; try another host"
            )
        actor = self.runtime.get(inv.target)
        timeout_s = max(0.0, inv.deadline_unix_ms / 1000 - time.time())
        ctx = TraceContext(inv.trace_id, self.new_id(8), inv.trace_flags)
        start, cancelled = time.time_ns(), False
        self.in_flight += 1
        started = time.perf_counter()
        outcome = "ok"
        try:
            may_need_trio = bool(actor.ref.caps) or actor.actor_id in self._linked
            if self._gate.allows(actor.actor_id, len(inv.payload), may_need_trio=may_need_trio):
                # The runtime stops the guest at the deadline; nothing here can block.
                return self._timed_call(actor.actor_id, inv, timeout_s, ctx)
            # On a worker thread: the wait for a free instance is what needs a bound.
            with trio.move_on_after(timeout_s):
                return await trio.to_thread.run_sync(
                    self._timed_call, actor.actor_id, inv, timeout_s, ctx, limiter=actor.limiter()
                )
            raise DeadlineExceeded(
                f"actor {inv.target} did not start within the caller's deadline "
                f"({timeout_s:.3f} s): all its instances stayed busy"
            ) from None
        except MeshError as exc:
            outcome = exc.code.name.lower()
            raise
        except trio.Cancelled:
            cancelled = True
            raise
        finally:
            self.in_flight -= 1
            self.observer.ran(
                inv.target, inv.operation, inv.origin_host, outcome, time.perf_counter() - started
            )
            self.spans.add(
                inv.trace_id,
                ctx.span_id,
                inv.parent_span,
                f"{actor.name} {inv.operation}",
                "server",
                self.host_id,
                start,
                time.time_ns(),
                "cancelled" if cancelled else outcome,
                (
                    ("actor", actor.actor_id),
                    ("operation", inv.operation),
                    ("caller", inv.origin_actor or inv.origin_host),
                ),
            )

    def _timed_call(
        self, actor_id: str, inv: Invocation, timeout_s: float, ctx: TraceContext
    ) -> bytes:
        outer = getattr(_call_context, "inv", None)
        outer_span = getattr(_call_context, "span", None)
        _call_context.inv, _call_context.span = inv, ctx
        started = time.perf_counter()
        try:
            return self.runtime.call_sync(
                actor_id, inv.operation, inv.payload, deadline_s=timeout_s
            )
        except ActorTrapped:
            self.faults[actor_id, "trap"] += 1
            raise
        except ActorLimitExceeded as exc:
            self.faults[actor_id, exc.limit or "deadline"] += 1
            raise
        finally:
            self._gate.observe(actor_id, time.perf_counter() - started)
            _call_context.inv, _call_context.span = outer, outer_span

    def traced(
        self, name: str, attributes: tuple[tuple[str, str], ...], run: Callable[[], bytes]
    ) -> bytes:
        """Run ``run()`` (on a guest's thread) as an ``internal`` span of the guest's span.

        Nested calls made inside it (an actor on this host calling a provider)
        become its children.  Outside any traced guest call it just runs.
        """
        parent: TraceContext | None = getattr(_call_context, "span", None)
        if parent is None:
            return run()
        ctx = TraceContext(parent.trace_id, self.new_id(8), parent.flags)
        _call_context.span = ctx
        start, status = time.time_ns(), "ok"
        try:
            return run()
        except BaseException as exc:
            status = _status(exc)
            raise
        finally:
            _call_context.span = parent
            self.spans.add(
                parent.trace_id,
                ctx.span_id,
                parent.span_id,
                name,
                "internal",
                self.host_id,
                start,
                time.time_ns(),
                status,
                attributes,
            )

    def _locate(self, target: str) -> tuple[str, list[Candidate]]:
        """(actor id, candidates) for ``target``; the list is shared: do not mutate it.

        On every call's path: for an actor key, the candidates built last
        time are reused while the directory's locations are the same object
        and every host's liveness is unchanged (0.5 against 2.2 us per call).
        """
        hit = self._located.get(target)
        if hit is not None and self.directory.locations(target) is hit[0]:
            is_live = self._is_live
            for p in hit[1]:
                if p.alive is not is_live(p.host_id):
                    break
            else:
                return target, hit[1]
        actor_id = target
        if not is_actor_key(target):
            local = next(
                (a.actor_id for a in self.runtime.actors() if a.ref.call_alias == target), None
            )
            summary = None if local else self.directory.actor_by_alias(target)
            actor_id = local or (summary.id if summary is not None else target)
        is_live = self._is_live
        locations = self.directory.locations(actor_id)
        placements = [
            Candidate(loc.host_id, loc.instances, loc.load, is_live(loc.host_id))
            for loc in locations
        ]
        if actor_id == target and locations:
            if len(self._located) >= MAX_LOCATED:  # bounded: targets come from callers
                self._located.clear()
            self._located[target] = (locations, placements)
        return actor_id, placements

    async def _send_invocation(self, host_id: str, data: bytes, timeout_s: float) -> bytes:
        return await self._send(host_id, channels.INVOCATION, data, timeout_s)

    # -- hooks for providers and guests -----------------------------------------

    async def _invoke_for_provider(
        self, actor_id: str, operation: str, payload: bytes, timeout_s: float
    ) -> bytes:
        # An HTTP request's ``traceparent`` header continues the caller's trace.
        parent = parse_traceparent(INCOMING_TRACEPARENT.get())
        return await self.invoke(actor_id, operation, payload, timeout_s=timeout_s, parent=parent)

    async def _forward_reply(self, subject: str, reply_to: str | None, body: bytes) -> None:
        """A reply to another host's messaging inbox (``_INBOX.<host id>.<random>``)."""
        parts = subject.split(".")
        host_id = parts[1] if len(parts) > 2 else ""
        if not self._is_live(host_id):
            raise HostUnreachable(f"no live host {short_id(host_id)} owns inbox {subject}")
        args = {"subject": subject, "reply_to": reply_to, "body": body}
        await peer.request(self._send, host_id, "messaging_reply", args, DEFAULT_CALL_TIMEOUT_S)

    def peer_ops(self) -> peer.PeerOps:
        """What peers (only) may ask this host: proto/spec/rpc.md, "Peer operations"."""
        return peer.PeerOps(
            {"messaging_reply": self._peer_messaging_reply, "module_get": self._peer_module_get}
        )

    async def _peer_messaging_reply(self, args: Mapping[str, Any]) -> int:
        """A reply published on another host to one of our messaging inboxes."""
        subject = _text_arg(args, "subject")
        if not self.messaging.owns_inbox(subject):
            # Only a reply to our own inbox may come this way: any other subject
            # would let a peer publish to our subscribers, or relay through us to
            # a third host's inbox under our name (proto/spec/rpc.md).
            raise ControlArgumentError(
                f"messaging_reply subject {subject[:80]!r} is not one of this host's "
                f"inboxes (_INBOX.{self.host_id}.…)"
            )
        reply_to = args.get("reply_to")
        body = args.get("body", b"")
        if not isinstance(body, bytes):
            raise ControlArgumentError("argument 'body' must be bytes")
        if reply_to == "":
            reply_to = None
        if reply_to is not None and not isinstance(reply_to, str):
            raise ControlArgumentError("argument 'reply_to' must be text")
        return await self.messaging.publish(subject, body, reply_to)

    async def _peer_module_get(self, args: Mapping[str, Any]) -> bytes:
        """The stored module with SHA-256 ``sha256`` (a peer must start that actor)."""
        digest = _text_arg(args, "sha256")
        module = await trio.to_thread.run_sync(self.modules.get, digest)
        if module is None:
            raise ModuleNotStored(f"this host has no module {digest}")
        return module

    def _resolve_for_guest(self, target: str) -> ResolvedActor | None:
        """Actor-to-actor calls (on the calling guest's worker thread)."""
        if self._trio_token is None:
            return None
        local = self._local_actor(target)
        if local is not None:
            actor_id = local

            def call_local(origin: ActorIdentity, operation: str, payload: bytes) -> bytes:
                # A call of its own (as if it had gone through the invoker): the
                # callee must not see its caller's invocation id.
                outer: Invocation | None = getattr(_call_context, "inv", None)
                hops = outer.hops + 1 if outer else 1
                if hops > MAX_HOPS:  # as the invoker does for a call to another host
                    raise HopLimitExceeded(f"call chain to {target} exceeds {MAX_HOPS} hops")
                inv_id = self.invoker.new_id()
                _call_context.inv = Invocation(
                    id=inv_id,
                    origin_host=self.host_id,
                    origin_actor=origin.actor_id,
                    target=actor_id,
                    operation=operation,
                    payload=b"",
                    deadline_unix_ms=outer.deadline_unix_ms if outer else 0,
                    trace_id=outer.trace_id if outer else inv_id,
                    hops=hops,
                )
                try:
                    return self.traced(
                        f"call {operation}",
                        (("actor", actor_id), ("operation", operation)),
                        lambda: self.runtime.call_sync(
                            actor_id, operation, payload, deadline_s=_remaining_s()
                        ),
                    )
                finally:
                    _call_context.inv = outer

            return ResolvedActor(actor_id, call_local)
        found = trio.from_thread.run_sync(self._remote_actor, target, trio_token=self._trio_token)
        if found is None:
            return None
        remote_id = found

        def call_remote(origin: ActorIdentity, operation: str, payload: bytes) -> bytes:
            inv: Invocation | None = getattr(_call_context, "inv", None)
            parent: TraceContext | None = getattr(_call_context, "span", None)
            return trio.from_thread.run(
                lambda: self.invoke(
                    remote_id,
                    operation,
                    payload,
                    timeout_s=_remaining_s(),
                    origin_actor=origin.actor_id,
                    hops=inv.hops + 1 if inv else 1,
                    parent=parent,
                ),
                trio_token=self._trio_token,
            )

        return ResolvedActor(remote_id, call_remote)

    def _local_actor(self, target: str) -> str | None:
        for loaded in self.runtime.actors():
            ref = loaded.ref
            if ref.actor_id == target or (not is_actor_key(target) and ref.call_alias == target):
                return ref.actor_id
        return None

    def _remote_actor(self, target: str) -> str | None:
        summary = (
            self.directory.actor(target)
            if is_actor_key(target)
            else self.directory.actor_by_alias(target)
        )
        return summary.id if summary is not None else None

    def _event(self, kind: str, actor_id: str, **fields: Any) -> None:
        self._on_event({"kind": kind, "actor": actor_id, "host": self.host_id, **fields})


def _check_instances(actor_id: str, name: str, running: _Running, total: int) -> None:
    """Raise ActorLimitExceeded if ``total`` instances are over the actor's ``max_instances``."""
    limit = running.limits.max_instances
    if total > limit:
        raise ActorLimitExceeded(
            actor_id,
            name,
            f"{total} instances would be over its limit of {limit} on this host (max_instances)",
            "instances",
        )


def _text_arg(args: Mapping[str, Any], name: str) -> str:
    """A required non-empty text argument of a peer op."""
    value = args.get(name)
    if value is None or value == "":
        what = "is required" if value is None else "must not be empty"
        raise ControlArgumentError(f"argument {name!r} {what}")
    if not isinstance(value, str):
        raise ControlArgumentError(f"argument {name!r} must be text, got {type(value).__name__}")
    return value


def _current_invocation_id() -> bytes | None:
    """The id of the invocation the guest on this thread runs for (``Invocation.GetId``)."""
    inv: Invocation | None = getattr(_call_context, "inv", None)
    return inv.id if inv is not None else None


class _TracedHostCalls:
    """The runtime's host-call handler: the dispatcher, with a span per provider call."""

    def __init__(self, host: ActorHost) -> None:
        self._host = host
        self._dispatcher = host.dispatcher

    def host_call(
        self, actor: Any, binding: str, namespace: str, operation: str, payload: bytes
    ) -> bytes:
        dispatcher = self._dispatcher
        if dispatcher.provider(namespace) is None:  # an actor: its call is traced itself
            return dispatcher.host_call(actor, binding, namespace, operation, payload)
        return self._host.traced(
            f"{namespace} {operation}",
            (
                ("contract", namespace),
                ("operation", operation),
                ("link_name", binding or "default"),
                ("actor", getattr(actor, "actor_id", "")),
            ),
            lambda: dispatcher.host_call(actor, binding, namespace, operation, payload),
        )

    def log(self, actor: Any, level: str, message: str) -> None:
        self._dispatcher.log(actor, level, message)


def _current_traceparent() -> str:
    """The W3C ``traceparent`` of the span the guest on this thread runs in, or ""."""
    span: TraceContext | None = getattr(_call_context, "span", None)
    return span.traceparent() if span is not None else ""


def _status(exc: BaseException) -> str:
    """A span's status for a failure: the error code's name, or ``cancelled``."""
    if isinstance(exc, MeshError):
        return exc.code.name.lower()
    return "cancelled" if isinstance(exc, trio.Cancelled) else "error"


def _remaining_s() -> float:
    deadline = current_deadline()
    if deadline is None:
        return DEFAULT_CALL_TIMEOUT_S
    return max(0.001, deadline - time.monotonic())
