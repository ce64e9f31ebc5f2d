"""The simulated network: latency, loss, bursty loss, duplication, reordering, partitions.

Bursty loss (:class:`GilbertElliott`, ``LinkModel(burst=...)``): each
directed link alternates between a good and a bad state, a continuous-time
two-state Markov chain with mean sojourns ``mean_good_s`` / ``mean_bad_s``,
losing ``loss_good`` / ``loss_bad`` of its datagrams in each; the state of a
link is drawn from the stationary distribution when it first carries a
datagram and advanced exactly over the time between datagrams.  It applies
on top of the independent ``loss``.

Every decision draws from the simulator's one seeded ``random.Random``, in
the order packets are sent, so a run replays exactly from its seed.  Links
are directed ``(src, dst)`` address pairs; a link without an override uses
the default :class:`LinkModel`.  A *cut* blocks traffic between two groups,
in both directions or one (``a -> b`` only), and is removed by id.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "LAN_LATENCY",
    "Cut",
    "GilbertElliott",
    "LinkModel",
    "NetworkModel",
    "exponential_latency",
    "fixed_latency",
    "uniform_latency",
]

Addr = tuple[str, int]
Latency = Callable[[random.Random], float]


def fixed_latency(seconds: float) -> Latency:
    """Every packet takes exactly ``seconds``."""
    return lambda rng: seconds


def uniform_latency(low_s: float, high_s: float) -> Latency:
    """Latency uniform in ``[low_s, high_s]`` (reorders packets sent close together)."""
    return lambda rng: rng.uniform(low_s, high_s)


def exponential_latency(base_s: float, mean_extra_s: float) -> Latency:
    """``base_s`` plus an exponential tail of mean ``mean_extra_s`` (a queueing link)."""
    rate = 1.0 / mean_extra_s
    return lambda rng: base_s + rng.expovariate(rate)


LAN_LATENCY = exponential_latency(0.0002, 0.0003)
"""A switched LAN: 0.2 ms plus an exponential tail of mean 0.3 ms."""


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Bursty loss of one directed link (see the module docstring).

    Raises ``ValueError`` for a sojourn that is not a positive number or a
    loss that is not a probability.
    """

    mean_good_s: float
    mean_bad_s: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("mean_good_s", "mean_bad_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"GilbertElliott.{name} must be a positive number, got {value!r}")
        for name in ("loss_good", "loss_bad"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"GilbertElliott.{name} must be a probability, got {value!r}")

    @property
    def bad_fraction(self) -> float:
        """Long-run share of time in the bad state."""
        return self.mean_bad_s / (self.mean_good_s + self.mean_bad_s)

    @property
    def mean_loss(self) -> float:
        """Long-run share of datagrams lost (with datagrams spread evenly in time)."""
        bad = self.bad_fraction
        return bad * self.loss_bad + (1.0 - bad) * self.loss_good

    def next_state(self, bad: bool, dt: float, rng: random.Random) -> bool:
        """The state ``dt`` seconds after being ``bad`` (or good)."""
        pi = self.bad_fraction
        rate = 1.0 / self.mean_good_s + 1.0 / self.mean_bad_s
        p_bad = pi + ((1.0 if bad else 0.0) - pi) * math.exp(-rate * dt)
        return rng.random() < p_bad


@dataclass(frozen=True, slots=True)
class LinkModel:
    """How one directed link treats datagrams."""

    latency: Latency = LAN_LATENCY
    """One-way delay (default: a LAN, 0.2 ms + exp(0.3 ms))."""
    loss: float = 0.0
    """Probability a datagram is dropped."""
    duplicate: float = 0.0
    """Probability a datagram is delivered twice."""
    reorder: float = 0.0
    """Probability a datagram is held back by up to ``reorder_delay_s`` extra."""
    reorder_delay_s: float = 0.01
    burst: GilbertElliott | None = None
    """Bursty loss on top of ``loss`` (None: none)."""

    @property
    def may_lose(self) -> bool:
        return self.loss > 0 or self.burst is not None

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"LinkModel.{name} must be a probability, got {value!r}")


@dataclass(frozen=True, slots=True)
class Cut:
    """Traffic from ``a`` to ``b`` is dropped, and from ``b`` to ``a`` unless one-way."""

    a: frozenset[Addr]
    b: frozenset[Addr]
    one_way: bool

    def blocks(self, src: Addr, dst: Addr) -> bool:
        if src in self.a and dst in self.b:
            return True
        return not self.one_way and src in self.b and dst in self.a


class NetworkModel:
    """Decides, per datagram, whether and when it arrives."""

    def __init__(self, default: LinkModel | None = None) -> None:
        self.default = default if default is not None else LinkModel()
        self._links: dict[tuple[Addr, Addr], LinkModel] = {}
        self._cuts: dict[int, Cut] = {}
        self._next_cut = 0
        self._burst_state: dict[tuple[Addr, Addr], tuple[bool, float]] = {}

    @property
    def lossy(self) -> bool:
        """True if any link may drop datagrams (invariants then expect suspicion)."""
        return self.default.may_lose or any(m.may_lose for m in self._links.values())

    def lossy_for(self, addr: Addr) -> bool:
        """True if a link to or from ``addr`` may drop datagrams."""
        if self.default.may_lose:
            return True
        return any(m.may_lose and addr in pair for pair, m in self._links.items())

    def set_link(self, src: Addr, dst: Addr, model: LinkModel | None) -> None:
        """Override (or with None, reset) the model of the directed link src -> dst."""
        if model is None:
            self._links.pop((src, dst), None)
        else:
            self._links[(src, dst)] = model

    def link(self, src: Addr, dst: Addr) -> LinkModel:
        return self._links.get((src, dst), self.default) if self._links else self.default

    def cut(self, a: Iterable[Addr], b: Iterable[Addr], one_way: bool = False) -> int:
        """Partition group ``a`` from group ``b``; returns the cut's id for :meth:`heal`."""
        self._next_cut += 1
        self._cuts[self._next_cut] = Cut(frozenset(a), frozenset(b), one_way)
        return self._next_cut

    def heal(self, cut_id: int | None = None) -> list[Cut]:
        """Remove one cut (or all with None); returns the removed cuts."""
        if cut_id is None:
            removed = list(self._cuts.values())
            self._cuts.clear()
            return removed
        cut = self._cuts.pop(cut_id, None)
        return [] if cut is None else [cut]

    @property
    def cuts(self) -> list[Cut]:
        return list(self._cuts.values())

    def in_cut(self, addr: Addr) -> bool:
        return any(addr in c.a or addr in c.b for c in self._cuts.values())

    def blocked(self, src: Addr, dst: Addr) -> bool:
        if not self._cuts:
            return False
        return any(c.blocks(src, dst) for c in self._cuts.values())

    def connected(self, a: Addr, b: Addr) -> bool:
        """A TCP connection works only if both directions do."""
        return not self.blocked(a, b) and not self.blocked(b, a)

    def arrivals(self, src: Addr, dst: Addr, now: float, rng: random.Random) -> list[float]:
        """Arrival times of one datagram sent now: none (lost), one, or two (duplicated)."""
        if self._cuts and self.blocked(src, dst):
            return []
        m = self.link(src, dst)
        if m.loss and rng.random() < m.loss:
            return []
        if m.burst is not None and self._burst_lost(src, dst, m.burst, now, rng):
            return []
        t = now + m.latency(rng)
        if m.reorder and rng.random() < m.reorder:
            t += rng.uniform(0.0, m.reorder_delay_s)
        if m.duplicate and rng.random() < m.duplicate:
            return [t, now + m.latency(rng)]
        return [t]

    def _burst_lost(
        self, src: Addr, dst: Addr, ge: GilbertElliott, now: float, rng: random.Random
    ) -> bool:
        key = (src, dst)
        held = self._burst_state.get(key)
        if held is None:
            bad = rng.random() < ge.bad_fraction
        else:
            bad = ge.next_state(held[0], now - held[1], rng)
        self._burst_state[key] = (bad, now)
        return rng.random() < (ge.loss_bad if bad else ge.loss_good)

    def tcp_delay(self, src: Addr, dst: Addr, rng: random.Random) -> float:
        """Time for a small TCP exchange to deliver (handshake plus data)."""
        m = self.link(src, dst)
        return 3 * m.latency(rng)
