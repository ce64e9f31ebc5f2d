"""What every guest instance shares: its store, the per-call budget, the host-call
contract, and turning a trap into a typed error.

One :class:`GuestInstance` = one ``wasmtime.Store`` + one instance.  It runs one
call at a time (the pool guarantees that), on whatever thread calls it.

Per-call budget: ``cpu_time_s`` counts guest time only.  When the guest enters
a host function we stop its clock; when the host function returns we restart
it and re-arm the store's epoch deadline with ``min(cpu left, wall time left)``.
If the wall deadline already passed while the host worked, the guest is
stopped right there.  A trap with ``TrapCode.INTERRUPT`` is then a ``deadline``
hit if the wall deadline has passed and a ``cpu`` hit otherwise.
"""

from __future__ import annotations

import ctypes
import logging
import time
from ctypes import c_void_p

import wasmtime

from meshhost.errors import (
    ActorDeadlineExceeded,
    ActorLimitExceeded,
    ActorMisbehaved,
    ActorRuntimeError,
    ActorTrapped,
    MeshError,
)
from meshhost.runtime import _raw
from meshhost.runtime.api import ActorLimits, ActorRef, HostCallHandler
from meshhost.runtime.engine import Engine

__all__ = ["MAX_FUEL", "GuestInstance", "HostAbort"]

log = logging.getLogger("meshhost.runtime")

MAX_FUEL = (1 << 63) - 1
"""Fuel given per call when the engine meters fuel but the actor sets no limit."""


class HostAbort(Exception):
    """Internal: a host function stopped the guest on purpose (message = reason)."""


def first_line(message: str) -> str:
    """The one line of a wasmtime trap message a person needs: the cause
    (``wasm `unreachable` instruction executed``) and, when known, the
    innermost guest function (``in boom``).  The full text goes to the debug log."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown trap"
    cause = lines[-1]
    if "Caused by:" in lines:
        cause = lines[lines.index("Caused by:") + 1] if lines[-1] != "Caused by:" else cause
    cause = cause.removeprefix("wasm trap: ")
    frames = [line for line in lines if line[:1].isdigit() and ":" in line and "!" in line]
    if frames:
        cause += f" (in {frames[0].rsplit('!', 1)[1]})"
    return cause


class GuestInstance:
    """Base class of :class:`WapcInstance` and :class:`ComponentInstance`."""

    def __init__(
        self, actor: ActorRef, handler: HostCallHandler, limits: ActorLimits, engine: Engine
    ) -> None:
        self.actor = actor
        self.handler = handler
        self.limits = limits
        self.engine = engine
        self.store = wasmtime.Store(engine.wasm)
        self.store.set_limits(memory_size=limits.memory_bytes, table_elements=limits.table_elements)
        self.ctx: int = ctypes.cast(_raw.store_context(self.store), c_void_p).value or 0
        # Per-call state, reset by begin().
        self.deadline = 0.0
        self.deadline_total_s = 0.0
        self.cpu_left = 0.0
        self.resumed = 0.0
        self.abort: BaseException | None = None
        self.violation: str | None = None
        self.exit_code: int | None = None
        self.limit_hit: str | None = None

    # -- budget -------------------------------------------------------------

    def begin(self, deadline: float) -> None:
        """Reset per-call state and arm the epoch deadline (and fuel) for a new call
        that must end by ``deadline`` (``time.monotonic()`` seconds)."""
        now = time.monotonic()
        self.deadline = deadline
        self.deadline_total_s = max(0.0, deadline - now)
        self.cpu_left = self.limits.cpu_time_s
        self.resumed = now
        self.abort = None
        self.violation = None
        self.exit_code = None
        self.limit_hit = None
        _raw.context_set_epoch_deadline(
            self.ctx, self.engine.ticks_for(min(self.cpu_left, deadline - now))
        )
        if self.engine.consume_fuel:
            _raw.context_set_fuel(self.ctx, self.limits.fuel or MAX_FUEL)

    def enter_host(self) -> None:
        """The guest called into the host: stop its CPU clock."""
        self.cpu_left -= time.monotonic() - self.resumed

    def leave_host(self, ctx: int) -> None:
        """Back to the guest: restart its clock and re-arm the epoch deadline.
        Raises :class:`HostAbort` when no time is left (the caller traps)."""
        now = time.monotonic()
        self.resumed = now
        wall_left = self.deadline - now
        if wall_left <= 0:
            self.limit_hit = "deadline"
            raise HostAbort("deadline passed during a host call")
        if self.cpu_left <= 0:
            self.limit_hit = "cpu"
            raise HostAbort("cpu time used up")
        _raw.context_set_epoch_deadline(ctx, self.engine.ticks_for(min(self.cpu_left, wall_left)))

    # -- host services --------------------------------------------------------

    def run_host_call(
        self, binding: str, namespace: str, operation: str, payload: bytes
    ) -> tuple[bool, bytes]:
        """Call the handler per the :class:`HostCallHandler` contract.

        Returns ``(True, response)`` or ``(False, error message)``.  A
        non-``Exception`` ``BaseException`` propagates (the caller aborts the guest).
        """
        try:
            result = self.handler.host_call(self.actor, binding, namespace, operation, payload)
        except MeshError as exc:
            return False, str(exc).encode("utf-8", "replace")
        except Exception as exc:
            log.exception(
                "host call %r %r %r from %s (%s) raised",
                binding,
                namespace,
                operation,
                self.actor.actor_id,
                self.actor.name,
            )
            return False, f"host error: {type(exc).__name__}: {exc}".encode("utf-8", "replace")
        if not isinstance(result, bytes | bytearray | memoryview):
            log.error(
                "host call handler returned %s, not bytes, for %r %r from %s",
                type(result).__name__,
                namespace,
                operation,
                self.actor.actor_id,
            )
            return False, f"host error: handler returned {type(result).__name__}".encode()
        return True, bytes(result)

    def guest_log(self, level: str, message: str) -> None:
        """Pass a guest log line to the handler; a failing logger never fails the guest."""
        try:
            self.handler.log(self.actor, level, message)
        except Exception:
            log.exception("log handler raised for %s", self.actor.actor_id)

    # -- failure classification ---------------------------------------------------

    def memory_at_cap(self) -> bool:
        """Whether the guest's memory is within one page of the cap (override)."""
        return False

    def failure(self, message: str, code: wasmtime.TrapCode | None) -> BaseException:
        """The typed error for a guest call that trapped or errored."""
        if self.abort is not None:
            return self.abort
        log.debug("actor %s (%s) failed: %s", self.actor.actor_id, self.actor.name, message)
        actor_id, name = self.actor.actor_id, self.actor.name
        if self.violation is not None:
            return ActorMisbehaved(actor_id, name, self.violation)
        if self.exit_code is not None:
            return ActorTrapped(actor_id, name, f"guest called proc_exit({self.exit_code})")
        interrupted = code == wasmtime.TrapCode.INTERRUPT or self.limit_hit is not None
        if interrupted and (self.limit_hit == "deadline" or time.monotonic() >= self.deadline):
            return ActorDeadlineExceeded(
                actor_id,
                name,
                f"call did not finish within its deadline of {self.deadline_total_s:.3f} s",
                "deadline",
            )
        if interrupted:
            return ActorLimitExceeded(
                actor_id,
                name,
                f"used more than its {self.limits.cpu_time_s:g} s of CPU time in one call",
                "cpu",
            )
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return ActorLimitExceeded(
                actor_id,
                name,
                f"ran out of fuel ({self.limits.fuel or MAX_FUEL} instructions per call)",
                "fuel",
            )
        if self.memory_at_cap():
            return ActorLimitExceeded(
                actor_id,
                name,
                f"trapped ({first_line(message)}) with its memory at the cap of "
                f"{self.limits.memory_bytes} bytes: it needs more memory than its limit",
                "memory",
            )
        return ActorTrapped(actor_id, name, f"trapped: {first_line(message)}")

    def misbehaved(self, reason: str) -> ActorRuntimeError:
        return ActorMisbehaved(self.actor.actor_id, self.actor.name, reason)

    def close(self) -> None:
        """Release host-side resources (subclasses unregister their callbacks)."""
