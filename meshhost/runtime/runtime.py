"""The runtime: load signed actors, run their calls in pooled instances, with limits.

Usage::

    runtime = Runtime(data_dir, handler, allowed_issuers=(), limits=ActorLimits())
    actor = runtime.load(module_bytes)           # verify claims, compile (disk cache), warm up
    out = await runtime.invoke(actor.actor_id, "HttpServer.HandleRequest", payload,
                               deadline_s=5.0)    # trio; guest runs on a worker thread
    out = runtime.call_sync(actor.actor_id, "Echo", payload)  # same, on this thread
    runtime.unload(actor.actor_id)
    runtime.close()

Threads (measured in ``bench/runtime.py``): a guest call runs in
``trio.to_thread.run_sync`` with a per-actor ``CapacityLimiter`` of
``max_instances`` tokens.  The hop costs ~60-130 us on the shared 2-core
machine (a no-op ``to_thread.run_sync``), several times a small waPC call
(~10-20 us through ``call_sync``), but running guests inline would stall
every other task of the host for as long as a guest runs (up to its CPU
limit), and a handler could not await a remote call.  On a worker thread
the handler bridges back with ``trio.from_thread.run``, and ctypes drops the
GIL while wasm runs, so guests use the second core.  ``call_sync`` skips the
hop for callers already on a worker thread (actor-to-actor host calls,
benchmarks).

Cancellation: ``invoke`` does not abandon a running guest; a cancelled caller
waits until the guest returns, which its CPU limit and deadline bound.  A
handler awaiting through ``trio.from_thread.run`` is cancelled with the
caller; the ``Cancelled`` stops the guest at once (its instance is replaced)
and propagates to the caller.

Deadlines: ``deadline_s`` is the time this call may take from now (a
duration, capped by the actor's ``ActorLimits.deadline_s``).  It covers
waiting for a free instance, the guest's run and its host calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from meshhost.errors import (
    ActorBusy,
    ActorError,
    ActorLimitExceeded,
    ActorLoadError,
    ActorNotFound,
)
from meshhost.identity import wasm as wasmfmt
from meshhost.identity.claims import ActorClaims, verify_module
from meshhost.runtime.api import ActorLimits, ActorRef, HostCallHandler
from meshhost.runtime.engine import Compiled, Engine
from meshhost.runtime.pool import InstancePool, PoolClosed, PoolTimeout

__all__ = ["CACHE_DIR_NAME", "LoadedActor", "Runtime", "current_deadline"]

log = logging.getLogger("meshhost.runtime")

CACHE_DIR_NAME = "modules"
"""Compiled-module cache under the host's data dir (see meshhost/datadir.py)."""


class _Program(Protocol):
    def instantiate(
        self, actor: ActorRef, handler: HostCallHandler, limits: ActorLimits, engine: Engine
    ) -> Any: ...


@dataclass(eq=False)
class LoadedActor:
    """A verified, compiled actor and its instance pool."""

    ref: ActorRef
    claims: ActorClaims
    kind: str
    """``"wapc"`` (core module) or ``"component"`` (WIT world meshhost:actor/actor)."""
    module_hash: str
    """SHA-256 (hex) of the binary: the compiled-cache key."""
    from_cache: bool
    """Whether compilation was skipped because the disk cache had it."""
    cache_path: Path
    limits: ActorLimits
    pool: InstancePool[Any] = field(repr=False)
    _limiters: dict[object, trio.CapacityLimiter] = field(default_factory=dict, repr=False)

    @property
    def actor_id(self) -> str:
        return self.ref.actor_id

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def instances(self) -> int:
        """Instances that exist now (idle or running a call), for inventories."""
        return self.pool.live

    def limiter(self) -> trio.CapacityLimiter:
        """This actor's thread limiter for the current trio run (made on first use)."""
        token = trio.lowlevel.current_trio_token()
        limiter = self._limiters.get(token)
        if limiter is None:
            self._limiters.clear()  # a previous trio run's limiter is useless now
            limiter = self._limiters[token] = trio.CapacityLimiter(self.limits.max_instances)
        return limiter


class Runtime:
    """Runs actors.  Thread-safe; one per host."""

    def __init__(
        self,
        data_dir: Path,
        handler: HostCallHandler,
        *,
        allowed_issuers: Iterable[str] = (),
        limits: ActorLimits | None = None,
        clock: Callable[[], float] = time.time,
        consume_fuel: bool = False,
        engine: Engine | None = None,
    ) -> None:
        self.handler = handler
        self.allowed_issuers = tuple(allowed_issuers)
        self.limits = limits or ActorLimits()
        self.clock = clock
        self.engine = engine or Engine(Path(data_dir) / CACHE_DIR_NAME, consume_fuel=consume_fuel)
        self._actors: dict[str, LoadedActor] = {}
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------

    def load(self, module: bytes, *, limits: ActorLimits | None = None) -> LoadedActor:
        """Verify ``module``'s claims, compile it (or take it from the disk cache),
        and start one instance to prove it runs.  Returns the loaded actor.

        Unsigned or invalid modules never start: raises the ``ClaimsError``
        subclass from :func:`meshhost.identity.claims.verify_module`.  Raises
        ``ActorLoadError`` if it is not valid wasm, imports what we do not
        provide, lacks the waPC / handler exports, or its start function
        fails.  Loading an actor id that is already loaded replaces it:
        calls in flight finish on the old instances.
        """
        module = bytes(module)
        claims = verify_module(module, now=self.clock(), allowed_issuers=self.allowed_issuers)
        if claims.provider:
            raise ActorLoadError(
                claims.subject,
                claims.name or "",
                "is signed as a capability provider, not an actor",
            )
        ref = ActorRef(
            actor_id=claims.subject,
            name=claims.name or "",
            caps=tuple(claims.caps),
            call_alias=claims.call_alias,
            issuer=claims.issuer,
        )
        limits = limits or self.limits
        kind = wasmfmt.binary_kind(module)
        # The first instance runs the guest's start function: its limits need ticks.
        self.engine.start_ticking()
        try:
            compiled = self.engine.compile(
                module, "component" if kind is wasmfmt.BinaryKind.COMPONENT else "module"
            )
        except Exception as exc:  # wasmtime.WasmtimeError: invalid module
            raise ActorLoadError(
                ref.actor_id, ref.name, f"is not valid WebAssembly: {exc}"
            ) from None
        program = self._program(compiled, ref)
        handler, engine = self.handler, self.engine
        pool: InstancePool[Any] = InstancePool(
            lambda: program.instantiate(ref, handler, limits, engine), limits.max_instances
        )
        first = pool.acquire(time.monotonic() + limits.deadline_s)  # errors -> ActorLoadError
        pool.release(first, healthy=True)
        actor = LoadedActor(
            ref=ref,
            claims=claims,
            kind="component" if compiled.kind == "component" else "wapc",
            module_hash=compiled.digest,
            from_cache=compiled.from_cache,
            cache_path=compiled.cache_path,
            limits=limits,
            pool=pool,
        )
        with self._lock:
            old = self._actors.get(ref.actor_id)
            self._actors[ref.actor_id] = actor
        if old is not None:
            old.pool.close()
        log.info(
            "loaded actor %s (%s), %s, %s",
            ref.actor_id,
            ref.name,
            actor.kind,
            "from cache" if actor.from_cache else "compiled",
        )
        return actor

    async def load_async(self, module: bytes, *, limits: ActorLimits | None = None) -> LoadedActor:
        """:meth:`load` on a worker thread, so a long compile (seconds for a big
        component) does not stall the trio loop."""
        return await trio.to_thread.run_sync(lambda: self.load(module, limits=limits))

    def _program(self, compiled: Compiled, ref: ActorRef) -> _Program:
        if compiled.kind == "component":
            from meshhost.runtime.component import ComponentProgram

            return ComponentProgram(compiled.code, ref, self.engine)  # type: ignore[arg-type]
        from meshhost.runtime.wapc import WapcProgram

        return WapcProgram(compiled.code, ref)  # type: ignore[arg-type]

    def unload(self, actor_id: str) -> None:
        """Stop serving ``actor_id``; in-flight calls finish.  Raises ``ActorNotFound``."""
        with self._lock:
            actor = self._actors.pop(actor_id, None)
        if actor is None:
            raise ActorNotFound(actor_id, "", "is not loaded on this host")
        actor.pool.close()

    def get(self, actor_id: str) -> LoadedActor:
        """The loaded actor with that id; raises ``ActorNotFound``."""
        actor = self._actors.get(actor_id)
        if actor is None:
            raise ActorNotFound(actor_id, "", "is not loaded on this host")
        return actor

    def actors(self) -> list[LoadedActor]:
        """Every loaded actor."""
        return list(self._actors.values())

    def close(self) -> None:
        """Unload everything and stop the engine's epoch ticker (if an actor started it)."""
        with self._lock:
            actors, self._actors = list(self._actors.values()), {}
        for actor in actors:
            actor.pool.close()
        self.engine.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------

    async def invoke(
        self, actor_id: str, operation: str, payload: bytes, *, deadline_s: float | None = None
    ) -> bytes:
        """Run ``operation`` on the actor in a worker thread; return its response.

        Raises ``ActorNotFound``, ``ActorError`` (the guest answered with an
        error), ``ActorTrapped`` / ``ActorMisbehaved``, ``ActorLimitExceeded``
        (``ActorDeadlineExceeded``, ``ActorBusy``), all naming actor and reason.
        """
        actor = self.get(actor_id)
        return await trio.to_thread.run_sync(
            self._call, actor, operation, payload, deadline_s, limiter=actor.limiter()
        )

    def call_sync(
        self, actor_id: str, operation: str, payload: bytes, *, deadline_s: float | None = None
    ) -> bytes:
        """Like :meth:`invoke`, but runs the guest on the calling thread (blocking)."""
        return self._call(self.get(actor_id), operation, payload, deadline_s)

    def _call(
        self, actor: LoadedActor, operation: str, payload: bytes, deadline_s: float | None
    ) -> bytes:
        limits = actor.limits
        budget = (
            limits.deadline_s
            if deadline_s is None
            else min(max(deadline_s, 0.0), limits.deadline_s)
        )
        deadline = time.monotonic() + budget
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        # Requests the guest cannot take fail before it runs (the caller's fault,
        # and no good instance is thrown away).
        if len(payload) > limits.max_message_bytes:
            raise ActorLimitExceeded(
                actor.actor_id,
                actor.name,
                f"request of {len(payload)} bytes is over its message limit of "
                f"{limits.max_message_bytes} bytes",
                "message",
            )
        if len(payload) + len(operation) >= limits.memory_bytes:
            raise ActorLimitExceeded(
                actor.actor_id,
                actor.name,
                f"request of {len(payload)} bytes cannot fit in its memory cap of "
                f"{limits.memory_bytes} bytes",
                "memory",
            )
        try:
            instance = actor.pool.acquire(deadline)
        except PoolTimeout:
            raise ActorBusy(
                actor.actor_id,
                actor.name,
                f"all {limits.max_instances} instances stayed busy "
                f"for the call's {budget:.3f} s deadline",
                "instances",
            ) from None
        except PoolClosed:
            raise ActorNotFound(actor.actor_id, actor.name, "was unloaded") from None
        except ActorLoadError:
            raise  # a replacement instance failed to start
        outer = getattr(_calls, "deadline", None)
        _calls.deadline = deadline
        healthy = False
        try:
            result: bytes = instance.call(operation, payload, deadline)
            healthy = True
            return result
        except ActorError:
            healthy = True  # the guest answered; its instance is fine
            raise
        finally:
            _calls.deadline = outer
            actor.pool.release(instance, healthy)


_calls = threading.local()


def current_deadline() -> float | None:
    """The ``time.monotonic()`` deadline of the actor call running on this thread.

    For a ``HostCallHandler``: an actor-to-actor or remote call made on
    behalf of the guest should finish by then.  ``None`` outside a guest call.
    """
    return getattr(_calls, "deadline", None)
