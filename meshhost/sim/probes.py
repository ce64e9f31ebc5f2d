"""Probes of one host, observed in the simulator (no wire change).

:class:`ProbeLog` watches the datagrams the simulator carries (plaintext,
through :attr:`Simulator.packet_observers`) for pings to one target host
and its acks, so failure detection can be measured per ping.  Two
definitions of *first detection* after a crash at ``t``:

* **SWIM's synchronous rounds** (:meth:`ProbeLog.swim_periods`): protocol
  periods of ``T`` start at the crash; the first detection is in the period
  in which some member first pings the crashed host, so
  ``ceil((first ping - t) / T)`` periods.  With one random target per
  member per period its mean is ``1 / (1 - e**-1)`` = 1.58 for large N
  (the SWIM paper's figure).
* **Asynchronous** (what the hosts really do): the time from the crash to
  the first suspicion, which adds the rest of that probe's period (the
  target is suspected when the prober's interval ends) to the wait for the
  first ping: about one period for each, two in all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from meshhost.errors import MembershipDecodeError
from meshhost.membership.messages import Ack, Ping, decode_packet
from meshhost.sim.host import SimHost
from meshhost.sim.loop import Simulator

__all__ = ["ProbeLog"]

Addr = tuple[str, int]


@dataclass
class ProbeLog:
    """Pings to ``target`` (direct and relayed) and its acks, with their times."""

    target: SimHost
    pings: list[tuple[float, int, int]] = field(default_factory=list)
    """(virtual time, sender host index, seq) of every ping sent to the target
    (a relay's ping for an indirect probe too)."""
    acks: list[tuple[float, Addr, int]] = field(default_factory=list)
    """(virtual time, destination, seq) of every ack the target sent."""

    @classmethod
    def install(cls, sim: Simulator, target: SimHost) -> ProbeLog:
        log = cls(target)
        sim.packet_observers.append(log._watch)
        return log

    def _watch(self, sim: Simulator, host: SimHost, dst: Addr, data: bytes) -> None:
        target = self.target
        if dst != target.addr and host is not target:
            return  # only the target's datagrams are decoded: cheap at any size
        try:
            msgs, _ = decode_packet(data, 1 << 16)
        except MembershipDecodeError:
            return
        for m in msgs:
            if isinstance(m, Ping) and dst == target.addr and m.target in ("", target.node_id):
                self.pings.append((sim.now, host.index, m.seq))
            elif isinstance(m, Ack) and host is target:
                self.acks.append((sim.now, dst, m.seq))

    def first_ping_after(self, t: float) -> float | None:
        """When the target was first pinged after ``t`` (None: not yet)."""
        return next((when for when, _, _ in self.pings if when >= t), None)

    def swim_periods(self, crash_t: float, period_s: float) -> int | None:
        """First detection in SWIM's synchronous-round definition, in periods."""
        first = self.first_ping_after(crash_t)
        if first is None:
            return None
        return max(1, math.ceil((first - crash_t) / period_s))
