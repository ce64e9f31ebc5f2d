"""Wiring the capabilities layer to actors on this host only (no lattice).

Until the router resolves actors lattice-wide, a host (and the tests) wire

* the dispatcher's actor-to-actor resolver to :func:`local_actor_resolver`:
  a call alias or ``M…`` key is looked up among the runtime's loaded actors
  and called with ``Runtime.call_sync`` on the caller's worker thread;
* the providers' :data:`ActorInvoker` hook (HTTP server requests, message
  deliveries) to :func:`local_invoker`: ``Runtime.invoke``.

The router replaces both with lattice-wide versions of the same shapes.  This
module only duck-types the runtime, so capabilities never import wasmtime.
"""

from __future__ import annotations

from typing import Any, Protocol

from meshhost.capabilities.dispatch import ActorResolver, ResolvedActor
from meshhost.capabilities.policy import ActorIdentity, is_actor_key
from meshhost.capabilities.providers.base import ActorInvoker

__all__ = ["LocalRuntime", "local_actor_resolver", "local_invoker"]


class LocalRuntime(Protocol):
    """The parts of ``meshhost.runtime.Runtime`` used here."""

    def actors(self) -> list[Any]: ...

    def call_sync(
        self, actor_id: str, operation: str, payload: bytes, *, deadline_s: float | None = None
    ) -> bytes: ...

    async def invoke(
        self, actor_id: str, operation: str, payload: bytes, *, deadline_s: float | None = None
    ) -> bytes: ...


def local_actor_resolver(runtime: LocalRuntime) -> ActorResolver:
    """Resolve call aliases and keys to actors loaded in ``runtime``."""

    def caller(actor_id: str) -> ResolvedActor:
        def call(origin: ActorIdentity, operation: str, payload: bytes) -> bytes:
            return runtime.call_sync(actor_id, operation, payload)

        return ResolvedActor(actor_id, call)

    def resolve(target: str) -> ResolvedActor | None:
        for loaded in runtime.actors():
            ref = loaded.ref
            if ref.actor_id == target or (not is_actor_key(target) and ref.call_alias == target):
                return caller(ref.actor_id)
        return None

    return resolve


def local_invoker(runtime: LocalRuntime) -> ActorInvoker:
    """``invoke(actor_id, operation, payload, timeout_s)`` on ``runtime``."""

    async def invoke(actor_id: str, operation: str, payload: bytes, timeout_s: float) -> bytes:
        return await runtime.invoke(actor_id, operation, payload, deadline_s=timeout_s)

    return invoke
