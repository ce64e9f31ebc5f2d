"""The host-call handler: policy first, then the provider or the target actor.

:class:`Dispatcher` implements the runtime's ``HostCallHandler`` protocol.
``host_call`` runs on the guest's worker thread and is synchronous; it

1. asks :func:`policy.authorize` whether the call may happen (claims, link,
   actor-call grant) - every refusal is a typed error naming what is missing;
2. hands a capability call to the provider registered for the contract id
   (ProviderNotAvailable if this host has none), or an actor-to-actor call to
   the resolver's synchronous caller (the router provides it; tests wire it to
   a local runtime).

Link definitions enter through ``put_link`` / ``del_link`` on the trio
thread, which update the :class:`LinkTable` and tell the provider.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import trio

from meshhost.capabilities.contracts import INVOCATION
from meshhost.capabilities.links import LinkDefinition, LinkKey, LinkTable, normalize_link_name
from meshhost.capabilities.policy import (
    ActorIdentity,
    ActorRoute,
    PolicyConfig,
    ProviderRoute,
    authorize,
)
from meshhost.capabilities.providers.base import CallContext, Provider
from meshhost.capabilities.providers.codec import Kind, encode_value
from meshhost.capabilities.providers.logging import log_actor_line
from meshhost.errors import (
    ActorCallDenied,
    CapabilityDenied,
    HostNotAllowed,
    LinkNotFound,
    LocalProtocolError,
    MeshError,
    NotSignedForCapability,
    OperationNotSupported,
    ProviderNotAvailable,
)

__all__ = ["ActorCaller", "ActorResolver", "Dispatcher", "ResolvedActor"]

log = logging.getLogger(__name__)
actor_log = logging.getLogger("meshhost.actor")

MAX_PROVIDER_OPS = 1000
"""Label sets of ``provider_ops``.  The guest names the operation: one a provider
does not have counts as ``_other``, and past this many sets any new one does too,
so made-up names cannot grow memory and every /metrics scrape without bound."""
OTHER_OPERATION = "_other"


class ActorCaller(Protocol):
    """Runs ``operation`` on a resolved target actor, synchronously, and returns its answer."""

    def __call__(self, origin: ActorIdentity, operation: str, payload: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ResolvedActor:
    actor_id: str
    """The target's ``M…`` key."""
    call: ActorCaller


ActorResolver = Callable[[str], ResolvedActor | None]
"""Call alias or ``M…`` key -> the running target, or None if no such actor runs."""


def _no_actors(_target: str) -> ResolvedActor | None:
    return None


_DENIAL_REASON: dict[type[CapabilityDenied], str] = {
    NotSignedForCapability: "not_signed",
    LinkNotFound: "no_link",
    ActorCallDenied: "actor_call",
    HostNotAllowed: "host_not_allowed",
}
"""The ``reason`` label of a denial, by the error policy raised."""


InvocationIdSource = Callable[[], bytes | None]
"""The id of the invocation running on the calling thread, or None (set by the host)."""


def _no_invocation() -> bytes | None:
    return None


class Dispatcher:
    """Implements ``HostCallHandler``: ``host_call`` and ``log``."""

    def __init__(
        self,
        *,
        links: LinkTable | None = None,
        providers: Iterable[Provider] = (),
        resolve_actor: ActorResolver = _no_actors,
        policy: PolicyConfig | None = None,
    ) -> None:
        self.links = links if links is not None else LinkTable()
        self.policy = policy or PolicyConfig()
        self.resolve_actor = resolve_actor
        self.current_invocation_id: InvocationIdSource = _no_invocation
        """Answers ``meshhost:builtin:invocation``; the host points it at its call context."""
        self._providers: dict[str, Provider] = {}
        self._delivered: set[LinkKey] = set()
        """Links their provider has been given (a pre-filled table's links are not, yet)."""
        self.denials: Counter[tuple[str, str]] = Counter()
        """Host calls policy refused, per (actor, reason); reasons in ``_DENIAL_REASON``."""
        self.provider_ops: Counter[tuple[str, str, str]] = Counter()
        """Host calls answered by a provider, per (contract, operation, outcome)."""
        for provider in providers:
            self.register(provider)

    # --- providers and links (trio thread) --------------------------------

    def register(self, provider: Provider) -> None:
        """Serve ``provider.contract_id`` (and its ``CONTRACT_ALIASES``) with ``provider``."""
        for contract_id in (provider.contract_id, *provider.CONTRACT_ALIASES):
            if contract_id in self._providers:
                raise LocalProtocolError(f"a provider for {contract_id} is already registered")
        for contract_id in (provider.contract_id, *provider.CONTRACT_ALIASES):
            self._providers[contract_id] = provider

    def provider(self, contract_id: str) -> Provider | None:
        return self._providers.get(contract_id)

    @property
    def providers(self) -> list[Provider]:
        return list({id(p): p for p in self._providers.values()}.values())

    async def put_link(self, link: LinkDefinition) -> None:
        """Record ``link`` and hand it to its provider (which may refuse its config).

        The link stays recorded even if the provider refuses it: calls through
        it then fail with the provider's reason.  Raises that reason too.
        Putting the same link again is a no-op unless the provider refused it
        before (then it retries), so a directory may re-deliver links freely.
        """
        previous = self.links.put(link)
        provider = self._providers.get(link.contract_id)
        if provider is None:
            return
        if previous is not None and link.key in self._delivered:
            if previous == link and provider.link_error(link) is None:
                return
            await provider.del_link(previous)
        self._delivered.add(link.key)
        await provider.put_link(link)

    async def apply_links(
        self, links: Iterable[LinkDefinition]
    ) -> list[tuple[LinkDefinition, str]]:
        """Make the link table exactly ``links`` (e.g. the directory's current view).

        Puts new and changed links, deletes links no longer present.  Never
        raises for one bad link: returns ``(link, reason)`` for each link a
        provider refused, so one broken config cannot block the others.
        """
        wanted = {link.key: link for link in links}
        failures: list[tuple[LinkDefinition, str]] = []
        for link in self.links.snapshot():
            if link.key not in wanted:
                await self.del_link(*link.key)
        for link in wanted.values():
            try:
                await self.put_link(link)
            except MeshError as exc:
                failures.append((link, str(exc)))
        return failures

    async def del_link(self, actor_id: str, contract_id: str, link_name: str) -> bool:
        """Remove a link and let its provider release it; returns whether it existed."""
        link = self.links.delete(actor_id, contract_id, normalize_link_name(link_name))
        if link is None:
            return False
        provider = self._providers.get(contract_id)
        if provider is not None and link.key in self._delivered:
            self._delivered.discard(link.key)
            await provider.del_link(link)
        return True

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every registered provider's service until cancelled.

        Start with ``await nursery.start(dispatcher.serve)``: it returns once
        every provider is ready and has been given every link already in the
        table (a refused link is logged and remembered, see ``put_link``).
        """
        async with trio.open_nursery() as nursery:
            for provider in self.providers:
                await nursery.start(provider.serve)
            for link in self.links.snapshot():
                if link.key not in self._delivered and link.contract_id in self._providers:
                    try:
                        await self.put_link(link)
                    except MeshError as exc:
                        log.warning("%s refused: %s", link.describe(), exc)
            task_status.started()

    # --- HostCallHandler (guest worker thread) ----------------------------

    def host_call(
        self,
        actor: ActorIdentity,
        binding: str,
        namespace: str,
        operation: str,
        payload: bytes,
    ) -> bytes:
        """Route one ``__host_call`` after the policy check; return the answer bytes.

        Raises CapabilityDenied subclasses, UnknownCallTarget,
        ProviderNotAvailable, provider errors, or the target actor's error.
        """
        if namespace == INVOCATION:
            return self._invocation(actor, operation)
        resolved: dict[str, ResolvedActor | None] = {}

        def resolve_id(target: str) -> str | None:
            if target not in resolved:
                resolved[target] = self.resolve_actor(target)
            hit = resolved[target]
            return hit.actor_id if hit is not None else None

        try:
            route = authorize(
                actor,
                binding,
                namespace,
                links=self.links,
                resolve_actor=resolve_id,
                provider_contracts=self._providers.keys(),
                config=self.policy,
            )
        except CapabilityDenied as exc:
            self.denials[actor.actor_id, _DENIAL_REASON.get(type(exc), "policy")] += 1
            raise
        if isinstance(route, ActorRoute):
            target = resolved[namespace]
            assert target is not None  # authorize() only routes to resolved actors
            return target.call(actor, operation, payload)
        assert isinstance(route, ProviderRoute)
        provider = self._providers.get(route.link.contract_id)
        if provider is None:
            raise ProviderNotAvailable(
                f"{route.link.describe()} exists but no provider for {route.link.contract_id} "
                "runs on this host"
            )
        contract = route.link.contract_id
        try:
            answer = provider.handle(CallContext(actor, route.link), operation, payload)
        except MeshError as exc:
            # A made-up name is not a label: the provider's own names are few.
            named = OTHER_OPERATION if isinstance(exc, OperationNotSupported) else operation
            self._count_op(contract, named, exc.code.name.lower())
            if isinstance(exc, HostNotAllowed):
                self.denials[actor.actor_id, "host_not_allowed"] += 1
            raise
        self._count_op(contract, operation, "ok")
        return answer

    def _count_op(self, contract: str, operation: str, outcome: str) -> None:
        key = (contract, operation, outcome)
        if key not in self.provider_ops and len(self.provider_ops) >= MAX_PROVIDER_OPS:
            key = (contract, OTHER_OPERATION, outcome)
        self.provider_ops[key] += 1

    def _invocation(self, actor: ActorIdentity, operation: str) -> bytes:
        """``meshhost:builtin:invocation``: needs no claim and no link.

        It tells the guest only about its own call (like ``__console_log``,
        it reaches nothing outside the sandbox), so every actor may use it,
        including ones signed before it existed.
        """
        if operation != "Invocation.GetId":
            raise OperationNotSupported(
                f"{INVOCATION} has no operation {operation!r} (it has Invocation.GetId)"
            )
        inv_id = self.current_invocation_id()
        if inv_id is None:
            raise ProviderNotAvailable(
                f"actor {actor.actor_id} ({actor.name}) asked for its invocation id, but this "
                "call did not come through the lattice's invoker and has none"
            )
        return encode_value(inv_id.hex(), Kind.STR)

    def log(self, actor: ActorIdentity, level: str, message: str) -> None:
        """A guest's ``__console_log`` line (not policy-checked, as in wasmCloud)."""
        log_actor_line(actor_log, actor, level, message)
