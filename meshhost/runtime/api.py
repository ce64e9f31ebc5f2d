"""What the runtime shows the rest of meshhost: who is calling, and who answers.

This module does not import wasmtime, so the capabilities layer can depend on
it without pulling in the Wasm engine.

* :class:`ActorRef` - the identity of a running actor, built from its verified
  claims.  It is passed to every host call so policy can decide.
* :class:`HostCallHandler` - the one object the runtime calls back into:
  ``host_call`` for waPC ``__host_call`` and the component ``host.call``
  import, ``log`` for ``__console_log``, WASI stdout/stderr and ``host.log``.
* :class:`ActorLimits` - per-actor resource limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from meshhost.errors import ConfigError

__all__ = ["ActorLimits", "ActorRef", "HostCallHandler"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ActorRef:
    """Who is calling ``host_call``; built from the actor's verified claims."""

    actor_id: str
    """The module's public key, ``M...`` (claims ``sub``)."""
    name: str
    """Human name from the claims (may be empty)."""
    caps: tuple[str, ...]
    """Contract ids the actor is signed for, e.g. ``("wasmcloud:keyvalue",)``."""
    call_alias: str | None
    """Alias other actors may call it by, e.g. ``"wasmcloud/ponger"``."""
    issuer: str
    """Account (``A...``) that signed the claims."""


class HostCallHandler(Protocol):
    """The runtime's only way out of the sandbox.

    Both methods are SYNCHRONOUS and run on the thread that is running the
    guest (a trio worker thread for :meth:`Runtime.invoke`, the caller's
    thread for :meth:`Runtime.call_sync`).  A handler that must await (a
    remote call) bridges back with ``trio.from_thread.run``; that works
    because :meth:`Runtime.invoke` runs guests via ``trio.to_thread``.

    ``host_call`` returns the response bytes.  Raising a ``MeshError``
    (e.g. ``CapabilityDenied``) makes the guest's ``__host_call`` return 0
    with ``str(exc)`` as the host error (component: ``err(str(exc))``).  Any
    other ``Exception`` is logged with its traceback on logger
    ``meshhost.runtime`` and reported to the guest the same way.  A
    ``BaseException`` that is not an ``Exception`` (``trio.Cancelled``,
    ``KeyboardInterrupt``) aborts the guest call and is re-raised to the
    runtime's caller.
    """

    def host_call(
        self, actor: ActorRef, binding: str, namespace: str, operation: str, payload: bytes
    ) -> bytes: ...

    def log(self, actor: ActorRef, level: str, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ActorLimits:
    """Resource limits of one actor.  Memory is per instance (each instance
    has its own store); the rest are per call."""

    memory_bytes: int = 64 * MIB
    """Cap on each instance's linear memory; ``memory.grow`` past it fails,
    and a guest that then traps is reported as hitting the ``memory`` limit."""
    max_instances: int = 4
    """Calls in flight at once; each has an instance of its own.  More callers wait."""
    cpu_time_s: float = 2.0
    """Guest run time per call, not counting time spent in host calls
    (enforced with the engine's epoch ticker; resolution one tick)."""
    deadline_s: float = 30.0
    """Wall-clock time a call may take when the caller gives no deadline,
    and the most it may take when the caller gives a longer one."""
    fuel: int | None = None
    """Instructions ('fuel') per call; only used when the runtime was built
    with ``consume_fuel=True``.  ``None`` there means 'unmetered'."""
    max_message_bytes: int = 16 * MIB
    """Largest request, response, error or host-call payload the runtime
    moves across the guest boundary; bigger lengths from a guest are garbage."""
    table_elements: int = 100_000
    """Cap on table entries per instance (function tables of big guests)."""

    def __post_init__(self) -> None:
        for name in (
            "memory_bytes",
            "max_instances",
            "cpu_time_s",
            "deadline_s",
            "max_message_bytes",
            "table_elements",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"ActorLimits.{name} must be > 0, got {getattr(self, name)!r}")
        if self.fuel is not None and self.fuel <= 0:
            raise ConfigError(f"ActorLimits.fuel must be > 0 or None, got {self.fuel!r}")
