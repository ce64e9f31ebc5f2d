"""What every built-in provider is: a contract id, operations, link hooks, a service.

Threading model.  ``handle`` is called *synchronously* on the worker thread
that runs the calling guest (a guest's ``__host_call`` blocks until it
returns).  ``put_link`` / ``del_link`` / ``serve`` run on the host's trio
thread.  A provider that needs trio from a worker thread (to start a
delivery, to wait for a reply) goes through :class:`TrioBridge`, which
captured the trio token when ``serve`` started.

Link life cycle.  ``put_link`` validates the link's config and acquires what
the link needs (an open database, a listening socket); ``del_link`` releases
it.  If ``put_link`` fails, the error is remembered and every call through
that link fails with it (ProviderNotAvailable), so the actor gets the reason
rather than a silent "no such link".
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import trio

from meshhost.capabilities.links import LinkDefinition, LinkKey
from meshhost.capabilities.policy import ActorIdentity
from meshhost.errors import (
    LocalProtocolError,
    MeshError,
    OperationNotSupported,
    ProviderError,
    ProviderNotAvailable,
)

__all__ = ["INCOMING_TRACEPARENT", "ActorInvoker", "CallContext", "Provider", "TrioBridge"]

T = TypeVar("T")

ActorInvoker = Callable[[str, str, bytes, float], Awaitable[bytes]]
"""``await invoke(actor_id, operation, payload, timeout_s)``: run an actor (locally via the
runtime now, anywhere in the lattice via the rpc invoker later) and return its answer.
Raises MeshError subclasses (their ``code`` says whether it was a time-out, overload...)."""

INCOMING_TRACEPARENT: ContextVar[str] = ContextVar("meshhost_incoming_traceparent", default="")
"""The W3C ``traceparent`` of the outside request a provider is delivering (an HTTP
header), set by the provider in its own task before it awaits the ActorInvoker; ""
when there is none.  The host continues that trace instead of starting one."""


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling, through which link."""

    actor: ActorIdentity
    link: LinkDefinition


class TrioBridge:
    """Lets worker threads run code on the host's trio thread.

    ``attach()`` must be called on the trio thread (``Provider.serve`` does).
    """

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._trio_thread: int | None = None

    def attach(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._trio_thread = threading.get_ident()

    def detach(self) -> None:
        self._token = None
        self._trio_thread = None

    def on_trio_thread(self) -> bool:
        return self._trio_thread == threading.get_ident()

    def run_sync(self, fn: Callable[..., T], *args: Any, what: str) -> T:
        """Run ``fn(*args)`` on the trio thread (directly if already there)."""
        if self._token is None:
            raise ProviderNotAvailable(f"{what}: the provider's service is not running")
        if self.on_trio_thread():
            return fn(*args)
        try:
            return trio.from_thread.run_sync(fn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise ProviderNotAvailable(f"{what}: the host is shutting down") from None

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any, what: str) -> T:
        """Run ``await afn(*args)`` on the trio thread and wait for it (worker threads only)."""
        if self._token is None:
            raise ProviderNotAvailable(f"{what}: the provider's service is not running")
        if self.on_trio_thread():
            raise LocalProtocolError(
                f"{what} blocks until an answer arrives; call it from a worker thread, "
                "not from the trio thread"
            )
        try:
            return trio.from_thread.run(afn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise ProviderNotAvailable(f"{what}: the host is shutting down") from None


class Provider:
    """Base of the built-in providers.

    Subclasses set ``contract_id`` and ``OPERATIONS`` (wasmCloud operation
    name -> method name; each method takes ``(ctx, payload)`` and returns the
    msgpack answer, ``b""`` for operations without output).
    """

    contract_id: ClassVar[str]
    OPERATIONS: ClassVar[dict[str, str]]
    CONTRACT_ALIASES: ClassVar[tuple[str, ...]] = ()
    """Older contract ids this provider also serves (``wascc:keyvalue`` for
    ``wasmcloud:keyvalue``): claims and links may name either."""

    def __init__(self) -> None:
        self._link_errors: dict[LinkKey, str] = {}
        self.bridge = TrioBridge()

    # --- called by the dispatcher on a guest's worker thread --------------

    def handle(self, ctx: CallContext, operation: str, payload: bytes) -> bytes:
        """Run ``operation`` for ``ctx.actor`` through ``ctx.link``; return the msgpack answer.

        Raises OperationNotSupported, PayloadDecodeError, ProviderNotAvailable
        (the link's config was refused) or another ProviderError.
        """
        method = self.OPERATIONS.get(operation)
        if method is None:
            if not self.OPERATIONS:
                raise OperationNotSupported(
                    f"{self.contract_id} has no operations an actor can call "
                    f"(its provider calls actors), got {operation!r}"
                )
            known = ", ".join(sorted(self.OPERATIONS))
            raise OperationNotSupported(
                f"{self.contract_id} has no operation {operation!r}; it supports {known}"
            )
        reason = self._link_errors.get(ctx.link.key)
        if reason is not None:
            raise ProviderNotAvailable(f"{ctx.link.describe()} is not usable: {reason}")
        try:
            result: bytes = getattr(self, method)(ctx, payload)
        except MeshError:
            raise
        except Exception as exc:  # a provider bug must reach the guest as an error, not a crash
            raise ProviderError(
                f"{self.contract_id} {operation} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return result

    # --- called by the host on the trio thread ----------------------------

    async def put_link(self, link: LinkDefinition) -> None:
        """Accept (or re-accept with new config) a link; raises LinkConfigError / ProviderError."""
        self._link_errors.pop(link.key, None)
        try:
            await self.on_put_link(link)
        except MeshError as exc:
            self._link_errors[link.key] = str(exc)
            raise
        except Exception as exc:  # as in handle(): a refused link, not a crashed host
            error = ProviderError(f"{link.describe()} failed: {type(exc).__name__}: {exc}")
            self._link_errors[link.key] = str(error)
            raise error from exc

    def link_error(self, link: LinkDefinition) -> str | None:
        """Why this provider refused ``link`` (None if it accepted it or never saw it)."""
        return self._link_errors.get(link.key)

    async def del_link(self, link: LinkDefinition) -> None:
        """Forget a link and release what it held."""
        self._link_errors.pop(link.key, None)
        await self.on_del_link(link)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the provider's service tasks until cancelled (start with ``nursery.start``)."""
        self.bridge.attach()
        try:
            await self.run_service(task_status)
        finally:
            self.bridge.detach()
            with trio.CancelScope(shield=True):
                await self.aclose()

    # --- for subclasses ----------------------------------------------------

    async def on_put_link(self, link: LinkDefinition) -> None:
        """Validate config and acquire resources for ``link``."""

    async def on_del_link(self, link: LinkDefinition) -> None:
        """Release what ``link`` held."""

    async def run_service(self, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def aclose(self) -> None:
        """Release everything (called when serve ends)."""
