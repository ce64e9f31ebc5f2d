"""Deny-by-default policy for an actor's host calls.  Pure: no IO, no clock.

A guest's ``__host_call(binding, namespace, operation, payload)`` is either a
capability call (namespace = contract id, e.g. ``wasmcloud:keyvalue``) or an
actor-to-actor call (namespace = the target's call alias, e.g.
``wasmcloud/ponger``, or its ``M…`` key).  Rules, checked in this order:

Capability calls
  1. the actor's verified claims list the contract id, else
     :class:`NotSignedForCapability`;
  2. a link definition (actor id, contract id, link name = binding, ``""`` ->
     ``default``) exists, else :class:`LinkNotFound`.  Built-in contracts
     that wasmCloud 0.x served without links (``wasmcloud:builtin:logging``)
     need only rule 1, as in wasmCloud's host (``verify_link`` auto-verified
     them).

Actor-to-actor calls
  wasmCloud 0.x allowed every actor to call every other actor in the lattice
  by key or call alias, with no claim and no link (wasmcloud-otp
  ``HostCore.WebAssembly.Imports.authorize_call``: "allow actor-to-actor
  calls").  meshhost is deny-by-default, so by default
  (``ActorCallMode.LINKED``) a call is allowed only if a link definition
  (caller id, contract id = the target's call alias *or* ``M…`` key, link
  name = binding or ``default``) exists, else :class:`ActorCallDenied`.
  ``ActorCallMode.OPEN`` restores wasmCloud 0.x behaviour for a host that
  wants it.  In both modes the target must be known (running somewhere in
  the lattice), else :class:`UnknownCallTarget`.

A namespace is a contract id if it contains ``:`` (every wasmCloud contract
id does) or a provider for it is registered; otherwise it is an actor target.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from meshhost.capabilities.links import LinkDefinition, LinkTable, normalize_link_name
from meshhost.errors import (
    ActorCallDenied,
    LinkNotFound,
    NotSignedForCapability,
    UnknownCallTarget,
)

__all__ = [
    "ACTOR_KEY_LENGTH",
    "UNLINKED_BUILTINS",
    "ActorCallMode",
    "ActorIdentity",
    "ActorRoute",
    "PolicyConfig",
    "ProviderRoute",
    "authorize",
    "is_actor_key",
]

ACTOR_KEY_LENGTH = 56
"""Length of an ``M…`` nkey public key string."""

UNLINKED_BUILTINS = frozenset(
    {"wasmcloud:builtin:logging", "wasmcloud:builtin:numbergen", "wascc:extras", "wasmcloud:extras"}
)
"""Contracts wasmCloud 0.x served in the host without a link definition (claims still needed);
the last two are the older generations' extras (see capabilities/legacy.py)."""

LINK_HINT = "create one with meshhost link put"


class ActorIdentity(Protocol):
    """What policy needs from a running actor (``meshhost.runtime.ActorRef`` satisfies it)."""

    @property
    def actor_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def caps(self) -> tuple[str, ...]: ...
    @property
    def call_alias(self) -> str | None: ...


class ActorCallMode(enum.Enum):
    LINKED = "linked"
    """Deny by default: actor-to-actor calls need a link definition (meshhost default)."""
    OPEN = "open"
    """wasmCloud 0.x: any actor may call any actor in the lattice."""


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    actor_calls: ActorCallMode = ActorCallMode.LINKED
    """Who may call an actor; see the module docstring."""
    unlinked_builtins: frozenset[str] = UNLINKED_BUILTINS
    """Contracts usable with claims alone (no link definition)."""


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    """Allowed capability call: hand it to the provider of ``link.contract_id``."""

    link: LinkDefinition


@dataclass(frozen=True, slots=True)
class ActorRoute:
    """Allowed actor-to-actor call to ``target_id`` (the resolved ``M…`` key)."""

    target_id: str
    link: LinkDefinition | None


def is_actor_key(text: str) -> bool:
    """True if ``text`` looks like an actor's ``M…`` public key."""
    return len(text) == ACTOR_KEY_LENGTH and text.startswith("M") and text.isalnum()


def who(actor: ActorIdentity) -> str:
    """How errors name an actor: ``actor M… (name)``."""
    return f"actor {actor.actor_id} ({actor.name})"


def authorize(
    actor: ActorIdentity,
    binding: str,
    namespace: str,
    *,
    links: LinkTable,
    resolve_actor: Callable[[str], str | None],
    provider_contracts: Collection[str] = (),
    config: PolicyConfig = PolicyConfig(),
) -> ProviderRoute | ActorRoute:
    """Decide where a host call may go.

    ``resolve_actor(alias_or_key)`` returns the target's ``M…`` key if that
    actor runs somewhere in the lattice, else None.  Returns the route;
    raises NotSignedForCapability, LinkNotFound, ActorCallDenied or
    UnknownCallTarget with a message naming what is missing.
    """
    link_name = normalize_link_name(binding)
    if ":" in namespace or namespace in provider_contracts:
        return _authorize_capability(actor, link_name, namespace, links, config)
    return _authorize_actor_call(actor, link_name, namespace, links, resolve_actor, config)


def _authorize_capability(
    actor: ActorIdentity,
    link_name: str,
    contract_id: str,
    links: LinkTable,
    config: PolicyConfig,
) -> ProviderRoute:
    if contract_id not in actor.caps:
        raise NotSignedForCapability(f"{who(actor)} is not signed for {contract_id}")
    link = links.get(actor.actor_id, contract_id, link_name)
    if link is None:
        if contract_id in config.unlinked_builtins:
            link = LinkDefinition(actor.actor_id, contract_id, link_name, provider_id="builtin")
        else:
            raise LinkNotFound(
                f"no link from {who(actor)} to {contract_id} named {link_name!r}; {LINK_HINT}"
            )
    return ProviderRoute(link)


def _authorize_actor_call(
    actor: ActorIdentity,
    link_name: str,
    target: str,
    links: LinkTable,
    resolve_actor: Callable[[str], str | None],
    config: PolicyConfig,
) -> ActorRoute:
    target_id = resolve_actor(target)
    if target_id is None:
        kind = "key" if is_actor_key(target) else "call alias"
        raise UnknownCallTarget(
            f"no actor with {kind} {target!r} is running in the lattice "
            f"(called by {who(actor)}) and no provider serves a contract of that name"
        )
    link = links.get(actor.actor_id, target, link_name)
    if link is None and target_id != target:
        link = links.get(actor.actor_id, target_id, link_name)
    if link is None and config.actor_calls is ActorCallMode.LINKED:
        raise ActorCallDenied(
            f"no link from {who(actor)} to actor {target} named {link_name!r}; {LINK_HINT} "
            f"(contract id {target!r}), or set the host's actor_calls policy to 'open' "
            "for wasmCloud 0.x behaviour"
        )
    return ActorRoute(target_id, link)
