"""The discrete-event loop: one virtual clock, one seeded PRNG, real cores.

Theory of operation.  Everything that happens is an entry in one heap,
ordered by ``(virtual time, insertion number)``: a datagram arriving, a
host's timer firing, a push-pull request or reply arriving, a scenario
action.  The loop pops entries one at a time; after each entry that touched
a host it *pumps* that host (sends its datagrams through the network model,
hands its events to observers, starts its push-pull exchanges, re-arms its
one timer) and then runs every invariant on it.  There is no other source
of time or randomness, so a run is a pure function of (scenario, seed).

Faults: :meth:`Simulator.crash` and :meth:`Simulator.restart` (with or
without the host's disk), :meth:`Simulator.pause` (a GC-like stall: the host
runs nothing; datagrams queue in its socket buffer and are read on resume,
before overdue timers fire), :meth:`Simulator.set_cpu` (a slow host: a
receive queue with a service time per datagram and a bounded length, so an
overloaded host answers late and drops input), partitions and link models
on :attr:`Simulator.network` (loss, bursty loss, duplication, reordering,
latency), and clock skew and drift per host.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable
from typing import Any

from meshhost.errors import SimulationError
from meshhost.sim.host import CoreFactory, SimHost
from meshhost.sim.network import LinkModel, NetworkModel

__all__ = ["INBOX_LIMIT", "Invariant", "Observer", "PacketObserver", "Simulator"]

Addr = tuple[str, int]
Invariant = Callable[["Simulator", SimHost], None]
"""Called after every event that touched ``host``; raises to fail the run."""
Observer = Callable[["Simulator", SimHost, Any], None]
"""Called with every event a core reports."""
PacketObserver = Callable[["Simulator", SimHost, Addr, bytes], None]
"""Called with every datagram a host sends (sender, destination, plaintext),
before the network decides its fate: an observation hook, nothing on the wire."""

INBOX_LIMIT = 4096
"""Datagrams a paused host's socket buffer holds; later ones are dropped."""

CLOCK_SLOP_S = 1e-6
"""Converting a skewed clock's deadline to virtual time and back can land a
hair early; a timer event that early reads the deadline itself."""

_DELIVER, _TIMER, _CALL, _PP_REQUEST, _PP_REPLY, _PROCESSED = range(6)


class Simulator:
    """A deterministic simulation. ``seed`` determines everything."""

    def __init__(self, seed: int, network: NetworkModel | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.network = network if network is not None else NetworkModel()
        self.now = 0.0
        self.hosts: list[SimHost] = []
        self.by_addr: dict[Addr, SimHost] = {}
        self.invariants: list[Invariant] = []
        self.observers: list[Observer] = []
        self.packet_observers: list[PacketObserver] = []
        self._heap: list[tuple[float, int, int, Any, Any, Any]] = []
        self._seq = itertools.count()
        self.steps = 0
        self.datagrams_sent = 0
        self.datagrams_delivered = 0
        self.push_pulls = 0

    # -- building ----------------------------------------------------------

    def add_host(
        self,
        factory: CoreFactory,
        addr: Addr | None = None,
        *,
        clock_offset: float = 0.0,
        clock_drift: float = 0.0,
        start: bool = True,
    ) -> SimHost:
        """Add a host (booted now unless ``start`` is False); returns it."""
        index = len(self.hosts)
        if addr is None:
            addr = (f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}", 7946)
        if addr in self.by_addr:
            raise SimulationError(f"address {addr} is taken")
        host = SimHost(
            index,
            addr,
            factory,
            random.Random(self.rng.getrandbits(64)),
            clock_offset,
            clock_drift,
        )
        self.hosts.append(host)
        self.by_addr[addr] = host
        if start:
            host.start(self.now)
            self.pump(host)
        return host

    def boot(self, host: SimHost) -> None:
        """Start a host added with ``start=False`` (or restart a crashed one, keeping its disk)."""
        if host.up:
            return
        host.start(self.now)
        self.pump(host)

    # -- scheduling --------------------------------------------------------

    def at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at virtual time ``t`` (scenario actions)."""
        self._push(max(t, self.now), _CALL, fn, args, None)

    def after(self, dt: float, fn: Callable[..., Any], *args: Any) -> None:
        self.at(self.now + dt, fn, *args)

    def _push(self, t: float, kind: int, a: Any, b: Any, c: Any) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), kind, a, b, c))

    def run_until(self, t: float, stop: Callable[[], bool] | None = None) -> bool:
        """Process events up to virtual time ``t``; returns True if ``stop()`` became true.

        ``stop`` is checked after every event.
        """
        heap = self._heap
        while heap and heap[0][0] <= t:
            when, _, kind, a, b, c = heapq.heappop(heap)
            self.now = when
            self.steps += 1
            if kind == _DELIVER:
                self._deliver(a, b, c)
            elif kind == _TIMER:
                self._timer(a, b, when)
            elif kind == _CALL:
                a(*b)
            elif kind == _PP_REQUEST:
                self._pp_request(a, b, c)
            elif kind == _PROCESSED:
                self._processed(a, b, c)
            else:
                self._pp_reply(a, b, c)
            if stop is not None and stop():
                return True
        self.now = max(self.now, t)
        return False

    def run_for(self, dt: float, stop: Callable[[], bool] | None = None) -> bool:
        return self.run_until(self.now + dt, stop)

    # -- faults ------------------------------------------------------------

    def crash(self, host: SimHost) -> None:
        """Kill the host: its core and all in-flight input are lost."""
        host.stop()
        host.last_disturbed = self.now

    def restart(self, host: SimHost, *, wipe_disk: bool = False) -> None:
        """Boot the host again (a new core); ``wipe_disk`` loses its disk first."""
        if host.up:
            host.stop()
        if wipe_disk:
            host.disk.clear()
        host.restarts += 1
        host.start(self.now)
        host.last_disturbed = self.now
        self.pump(host)

    def pause(self, host: SimHost, duration_s: float) -> None:
        """Stall the host for ``duration_s`` (nothing runs; input is buffered)."""
        if not host.up or host.paused:
            return
        host.paused = True
        host.last_disturbed = self.now
        self.at(self.now + duration_s, self._resume, host, host.generation)

    def _resume(self, host: SimHost, generation: int) -> None:
        if host.generation != generation or not host.paused:
            return
        host.paused = False
        host.last_disturbed = self.now
        inbox, host.inbox = host.inbox, []
        core = host.core
        now = host.local(self.now)
        for item in inbox:
            if item[0] == _DELIVER:
                core.receive_datagram(item[2], item[1], now)
            elif item[0] == _PP_REQUEST:
                self._answer_push_pull(host, item[1], item[2])
            else:
                core.merge_push_pull(item[2], item[1], now)
        deadline = core.get_timer()
        if deadline is not None and deadline <= now:
            core.handle_timer(now)
        self.pump(host)

    def set_cpu(self, host: SimHost, service_s: float, queue_limit: int = 1024) -> None:
        """Make ``host`` slow: ``service_s`` of CPU per datagram read, at most
        ``queue_limit`` datagrams waiting (0 s: back to infinitely fast).

        Raises ``ValueError`` for a negative or non-finite service time or a
        queue limit below 1.
        """
        if not (math.isfinite(service_s) and service_s >= 0):
            raise ValueError(f"service_s must be a finite number >= 0, got {service_s!r}")
        if queue_limit < 1:
            raise ValueError(f"queue_limit must be at least 1, got {queue_limit!r}")
        host.service_s = service_s
        host.queue_limit = queue_limit
        host.last_disturbed = self.now

    def partition(self, a: Iterable[SimHost], b: Iterable[SimHost], one_way: bool = False) -> int:
        """Cut hosts ``a`` from hosts ``b`` (only a -> b if ``one_way``); returns the cut id."""
        a = list(a)
        b = list(b)
        for h in a + b:
            h.last_disturbed = self.now
        return self.network.cut([h.addr for h in a], [h.addr for h in b], one_way)

    def set_default_link(self, model: LinkModel) -> None:
        """Change every link without an override (lossy links count as disturbance)."""
        if self.network.default.loss or model.loss:
            for h in self.hosts:
                h.last_disturbed = self.now
        self.network.default = model

    def set_link(self, src: SimHost, dst: SimHost, model: LinkModel | None) -> None:
        """Override (None: reset) the directed link from ``src`` to ``dst``."""
        src.last_disturbed = dst.last_disturbed = self.now
        self.network.set_link(src.addr, dst.addr, model)

    def heal(self, cut_id: int | None = None) -> None:
        """Remove one cut, or all."""
        for cut in self.network.heal(cut_id):
            for addr in cut.a | cut.b:
                host = self.by_addr.get(addr)
                if host is not None:
                    host.last_disturbed = self.now

    def disturbed_since(self, host: SimHost, t: float) -> bool:
        """True if ``host`` was down, paused, cut off or on a lossy link at any time since ``t``."""
        if not host.up or host.paused or host.last_disturbed >= t:
            return True
        return self.network.in_cut(host.addr) or self.network.lossy_for(host.addr)

    # -- the pump ------------------------------------------------------------

    def pump(self, host: SimHost) -> None:
        """After any input to ``host``: send, report, push-pull, re-arm, check."""
        core = host.core
        if core is None:
            return
        now = self.now
        out = core.datagrams_to_send()
        if out:
            arrivals = self.network.arrivals
            rng = self.rng
            src = host.addr
            for addr, data in out:
                self.datagrams_sent += 1
                for watch in self.packet_observers:
                    watch(self, host, addr, data)
                for t in arrivals(src, addr, now, rng):
                    heapq.heappush(self._heap, (t, next(self._seq), _DELIVER, addr, src, data))
        event = core.next_event()
        while event is not None:
            for observer in self.observers:
                observer(self, host, event)
            event = core.next_event()
        if host.has_push_pull:
            local = host.local(now)
            addr = core.push_pull_due(local)
            while addr is not None:
                self._start_push_pull(host, addr, core.push_pull_payload(local))
                addr = core.push_pull_due(local)
        deadline = core.get_timer()
        if deadline is None:
            host.timer_at = None
        else:
            at = host.to_virtual(deadline)
            if at < now:
                at = now
            if host.timer_at != at:
                host.timer_at = at
                heapq.heappush(
                    self._heap, (at, next(self._seq), _TIMER, host, host.generation, None)
                )
        for invariant in self.invariants:
            invariant(self, host)

    def _deliver(self, dst: Addr, src: Addr, data: bytes) -> None:
        host = self.by_addr.get(dst)
        if host is None or not host.up:
            return
        if host.paused:
            if len(host.inbox) < INBOX_LIMIT:
                host.inbox.append((_DELIVER, src, data))
            return
        if host.service_s > 0:
            # A slow host: the datagram waits its turn in the receive queue.
            start = max(self.now, host.busy_until)
            if (start - self.now) / host.service_s >= host.queue_limit:
                host.cpu_dropped += 1
                return
            host.busy_until = start + host.service_s
            host.last_disturbed = self.now
            self._push(host.busy_until, _PROCESSED, (host, host.generation), src, data)
            return
        self.datagrams_delivered += 1
        host.core.receive_datagram(data, src, host.local(self.now))
        self.pump(host)

    def _processed(self, ref: tuple[SimHost, int], src: Addr, data: bytes) -> None:
        host, generation = ref
        if host.generation != generation or not host.up:
            return
        if host.paused:
            if len(host.inbox) < INBOX_LIMIT:
                host.inbox.append((_DELIVER, src, data))
            return
        self.datagrams_delivered += 1
        host.core.receive_datagram(data, src, host.local(self.now))
        self.pump(host)

    def _timer(self, host: SimHost, generation: int, when: float) -> None:
        if host.generation != generation or host.timer_at != when or host.paused:
            return
        if host.busy_until > self.now:
            # A slow host works off the input it holds before its timers run.
            host.timer_at = host.busy_until
            self._push(host.busy_until, _TIMER, host, generation, None)
            return
        host.timer_at = None
        local = host.local(self.now)
        deadline = host.core.get_timer()
        if deadline is not None and 0 < deadline - local < CLOCK_SLOP_S:
            local = deadline  # float rounding of the skewed clock; never fire early
        host.core.handle_timer(local)
        self.pump(host)

    # -- push-pull over simulated TCP ------------------------------------------

    def _start_push_pull(self, host: SimHost, dst: Addr, payload: bytes) -> None:
        if not self.network.connected(host.addr, dst):
            return  # connect fails; the core tries again later
        delay = self.network.tcp_delay(host.addr, dst, self.rng)
        self._push(self.now + delay, _PP_REQUEST, (host, host.generation), dst, payload)

    def _pp_request(self, src: tuple[SimHost, int], dst_addr: Addr, payload: bytes) -> None:
        dst = self.by_addr.get(dst_addr)
        if dst is None or not dst.up or not self.network.connected(src[0].addr, dst_addr):
            return
        if dst.paused:
            dst.inbox.append((_PP_REQUEST, src, payload))
            return
        self._answer_push_pull(dst, src, payload)
        self.pump(dst)

    def _answer_push_pull(self, dst: SimHost, src: tuple[SimHost, int], payload: bytes) -> None:
        local = dst.local(self.now)
        reply = dst.core.push_pull_payload(local)  # the driver answers before merging
        dst.core.merge_push_pull(payload, src[0].addr, local)
        self.push_pulls += 1
        if self.network.connected(dst.addr, src[0].addr):
            delay = self.network.tcp_delay(dst.addr, src[0].addr, self.rng)
            self._push(self.now + delay, _PP_REPLY, src, dst.addr, reply)

    def _pp_reply(self, src: tuple[SimHost, int], from_addr: Addr, reply: bytes) -> None:
        host, generation = src
        if host.generation != generation or not host.up:
            return
        if host.paused:
            host.inbox.append((_PP_REPLY, from_addr, reply))
            return
        host.core.merge_push_pull(reply, from_addr, host.local(self.now))
        self.pump(host)
