"""Deny-by-default capabilities: policy, link definitions, built-in providers.

The runtime calls :class:`Dispatcher` (its ``HostCallHandler``) for every
``__host_call``; the dispatcher checks policy (claims + links) and routes the
call to a built-in provider or to another actor.  See
proto/spec/capabilities.md for contracts, payloads, link config and rules.

How a host wires it (``local`` helpers until the router provides
lattice-wide ones)::

    dispatcher = Dispatcher(policy=PolicyConfig())          # deny by default
    runtime = Runtime(data_dir, dispatcher)                  # dispatcher = HostCallHandler
    dispatcher.resolve_actor = local_actor_resolver(runtime) # actor-to-actor calls
    invoke = local_invoker(runtime)                          # provider -> actor calls
    for provider in (KeyValueProvider(data_dir / "kv"), LoggingProvider(),
                     NumberGenProvider(), MessagingProvider(invoke, inbox_tag=host_id),
                     HttpServerProvider(invoke), HttpClientProvider()):
        dispatcher.register(provider)
    await nursery.start(dispatcher.serve)                    # provider services
    await dispatcher.put_link(LinkDefinition(actor_id, KEYVALUE, "default", "builtin", {}))
    failures = await dispatcher.apply_links(directory_links)  # or reconcile in bulk
"""

from meshhost.capabilities.contracts import (
    HTTPCLIENT,
    HTTPSERVER,
    INVOCATION,
    KEYVALUE,
    LOGGING,
    MESSAGING,
    NUMBERGEN,
)
from meshhost.capabilities.dispatch import ActorCaller, ActorResolver, Dispatcher, ResolvedActor
from meshhost.capabilities.links import (
    DEFAULT_LINK_NAME,
    LinkDefinition,
    LinkTable,
    normalize_link_name,
)
from meshhost.capabilities.local import local_actor_resolver, local_invoker
from meshhost.capabilities.policy import (
    ActorCallMode,
    ActorIdentity,
    ActorRoute,
    PolicyConfig,
    ProviderRoute,
    authorize,
)
from meshhost.capabilities.providers.base import ActorInvoker, CallContext, Provider
from meshhost.capabilities.providers.httpclient import HttpClientProvider
from meshhost.capabilities.providers.httpserver import HttpServerProvider
from meshhost.capabilities.providers.keyvalue import KeyValueProvider
from meshhost.capabilities.providers.logging import LoggingProvider
from meshhost.capabilities.providers.messaging import MessagingProvider
from meshhost.capabilities.providers.numbergen import NumberGenProvider

__all__ = [
    "DEFAULT_LINK_NAME",
    "HTTPCLIENT",
    "HTTPSERVER",
    "INVOCATION",
    "KEYVALUE",
    "LOGGING",
    "MESSAGING",
    "NUMBERGEN",
    "ActorCallMode",
    "ActorCaller",
    "ActorIdentity",
    "ActorInvoker",
    "ActorResolver",
    "ActorRoute",
    "CallContext",
    "Dispatcher",
    "HttpClientProvider",
    "HttpServerProvider",
    "KeyValueProvider",
    "LinkDefinition",
    "LinkTable",
    "LoggingProvider",
    "MessagingProvider",
    "NumberGenProvider",
    "PolicyConfig",
    "Provider",
    "ProviderRoute",
    "ResolvedActor",
    "authorize",
    "local_actor_resolver",
    "local_invoker",
    "normalize_link_name",
]
