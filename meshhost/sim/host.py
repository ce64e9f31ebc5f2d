"""A simulated host: any sans-IO core, with its own clock, pauses and crashes.

The adapter is generic: a core needs ``receive_datagram(data, addr, now)``,
``handle_timer(now)``, ``get_timer()``, ``datagrams_to_send()`` and
``next_event()``; if it also has ``push_pull_due``/``push_pull_payload``/
``merge_push_pull`` the simulator carries its push-pull exchanges over a
simulated TCP connection.

A slow host (:meth:`Simulator.set_cpu`) takes ``service_s`` of CPU per
datagram it reads: datagrams wait in a receive queue of at most
``queue_limit`` (later ones are dropped and counted in ``cpu_dropped``), and
its timers fire only once the queue it already holds is worked off.

A host's clock is ``virtual * (1 + drift) + offset`` (clock skew); the core
only ever sees its own clock.  ``disk`` survives a restart unless wiped; the
factory that builds the core decides what it keeps there (for SWIM: the host
key, so a restart with its disk is the same host, without it a new one).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

__all__ = ["CoreFactory", "SimHost"]

Addr = tuple[str, int]
CoreFactory = Callable[["SimHost", float, random.Random], Any]
"""``factory(host, local_now, rng) -> core``; may read and write ``host.disk``."""


class SimHost:
    """One host in the simulator (see the module docstring)."""

    __slots__ = (
        "addr",
        "busy_until",
        "clock_drift",
        "clock_offset",
        "core",
        "cpu_dropped",
        "disk",
        "factory",
        "generation",
        "has_push_pull",
        "inbox",
        "index",
        "last_disturbed",
        "node_id",
        "paused",
        "queue_limit",
        "restarts",
        "rng",
        "service_s",
        "timer_at",
        "up",
    )

    def __init__(
        self,
        index: int,
        addr: Addr,
        factory: CoreFactory,
        rng: random.Random,
        clock_offset: float = 0.0,
        clock_drift: float = 0.0,
    ) -> None:
        self.index = index
        self.addr = addr
        self.factory = factory
        self.rng = rng
        self.clock_offset = clock_offset
        self.clock_drift = clock_drift
        self.disk: dict[str, Any] = {}
        self.core: Any = None
        self.node_id: str | None = None
        self.up = False
        self.paused = False
        self.inbox: list[tuple[Any, ...]] = []
        self.generation = 0
        self.timer_at: float | None = None
        self.has_push_pull = False
        self.last_disturbed = float("-inf")
        self.restarts = 0
        self.service_s = 0.0  # CPU per datagram read (0: infinitely fast)
        self.queue_limit = 0
        self.busy_until = 0.0
        self.cpu_dropped = 0

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        if self.paused:
            state = "paused"
        return f"SimHost({self.index}, {self.addr[0]}:{self.addr[1]}, {state})"

    def local(self, virtual: float) -> float:
        """This host's clock reading at virtual time ``virtual``."""
        return virtual * (1.0 + self.clock_drift) + self.clock_offset

    def to_virtual(self, local: float) -> float:
        """The virtual time at which this host's clock reads ``local``."""
        return (local - self.clock_offset) / (1.0 + self.clock_drift)

    def start(self, virtual_now: float) -> None:
        """Build a fresh core (boot or restart)."""
        self.generation += 1
        self.core = self.factory(self, self.local(virtual_now), self.rng)
        self.node_id = getattr(self.core, "id", None)
        self.has_push_pull = hasattr(self.core, "push_pull_due")
        self.up = True
        self.paused = False
        self.inbox.clear()
        self.timer_at = None
        self.busy_until = 0.0

    def stop(self) -> None:
        """Crash: the core and everything in flight to it are gone."""
        self.generation += 1
        self.core = None
        self.up = False
        self.paused = False
        self.inbox.clear()
        self.timer_at = None
