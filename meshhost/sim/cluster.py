"""Building and measuring simulated SWIM lattices (scenario helpers).

:func:`swim_factory` builds real :class:`~meshhost.membership.swim.Swim`
cores whose host key lives on the simulated disk; :func:`build_cluster`
boots ``n`` hosts either by really joining (``bootstrap="join"``: each host
joins a few earlier ones over the simulated network) or already formed, so
measurements start from a steady lattice:

* ``"converged"`` (default): every core adopts one
  :class:`~meshhost.membership.shared.SharedView` of the lattice (each host's
  signed alive), so each knows every other at once and holds only the member
  records it has touched: O(n) time and memory to build, which is what makes
  10 000 hosts possible.  Queues start empty (nothing left to gossip).
* ``"merged"``: the push-pull merges a running lattice would have done,
  applied instantly (O(n**2): every host decodes and stores every other).

Clocks: ``clock_skew_s`` gives each host a clock offset uniform in
``[-clock_skew_s, clock_skew_s]`` and ``clock_drift`` a rate error uniform in
``[-clock_drift, clock_drift]`` (1e-4 is 100 ppm); cores see only their own
clock.  Both default to 0 (no draws, so seeds replay as before).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshhost.config import MembershipConfig
from meshhost.identity.nkeys import Prefix, generate
from meshhost.membership.shared import SharedView
from meshhost.membership.signing import AliveVerifier
from meshhost.membership.suspicion import suspicion_timeout
from meshhost.membership.swim import Swim
from meshhost.sim.host import SimHost
from meshhost.sim.invariants import SwimInvariants, view_disagreements
from meshhost.sim.loop import Simulator
from meshhost.sim.network import NetworkModel

__all__ = [
    "acquaint",
    "build_cluster",
    "invariant_window_s",
    "percentile",
    "swim_factory",
    "wait_for_one_view",
]

Addr = tuple[str, int]
SeedPicker = Callable[[SimHost], Sequence[Addr]]


def swim_factory(
    config: MembershipConfig,
    *,
    seeds: SeedPicker | None = None,
    meta: bytes = b"",
    verifier: AliveVerifier | None = None,
) -> Callable[[SimHost, float, random.Random], Swim]:
    """A core factory: the host key is kept on the host's disk (lost if wiped).

    ``seeds(host)`` returns the addresses a (re)started host joins, as
    discovery would propose them.
    """

    def make(host: SimHost, now: float, rng: random.Random) -> Swim:
        identity = host.disk.get("identity")
        if identity is None:
            identity = generate(Prefix.SERVER, rng.randbytes)
            host.disk["identity"] = identity
        core = Swim(identity, host.addr, config, rng, now, meta=meta, verifier=verifier)
        if seeds is not None:
            addrs = list(seeds(host))
            if addrs:
                core.join(addrs, now)
        return core

    return make


def invariant_window_s(config: MembershipConfig, n: int) -> float:
    """A look-back longer than any honest path to a dead declaration."""
    min_s = suspicion_timeout(config.suspicion_mult, n, config.probe_interval_s)
    return config.suspicion_max_timeout_mult * min_s + 10 * config.probe_interval_s + 30.0


def acquaint(cores: Sequence[Swim]) -> None:
    """Make SWIM cores know each other as the push-pulls of a running lattice would.

    Pass 1: the first core hears every other core's state.  Pass 2: every
    other core joins the first and merges its full state (a join reply is not
    re-gossiped).  Events and datagrams this produces are left for the caller.
    """
    first = cores[0]
    for core in cores[1:]:
        first.merge_push_pull(core.push_pull_payload(0.0), core.addr, 0.0)
    payload = first.push_pull_payload(0.0)
    for core in cores[1:]:
        core.join([first.addr], 0.0)
        while core.push_pull_due(0.0) is not None:
            pass
        core.merge_push_pull(payload, first.addr, 0.0)
        core.datagrams_to_send()


def build_cluster(
    seed: int,
    n: int,
    config: MembershipConfig,
    *,
    network: NetworkModel | None = None,
    bootstrap: str = "converged",
    seeds_per_host: int = 3,
    invariants: bool = True,
    clock_skew_s: float = 0.0,
    clock_drift: float = 0.0,
) -> tuple[Simulator, SwimInvariants | None]:
    """A simulator with ``n`` SWIM hosts, formed into one lattice.

    ``bootstrap="join"``: host ``i`` starts at ``i * 10 ms`` and joins up to
    ``seeds_per_host`` random earlier hosts; the run continues until one view
    forms (raises ``SimulationError`` after 120 s).  ``"converged"``: every
    host starts over one shared view of the lattice (O(n)); ``"merged"``:
    every host learns every other by push-pull merges applied at time 0
    (O(n**2)).  Restarted hosts join ``seeds_per_host`` random other hosts.
    Clock skew and drift: see the module docstring.  Raises ``ValueError``
    if ``n`` is below 1, ``bootstrap`` is unknown, or a clock figure is
    negative or not finite (a drift must stay below 1).
    """
    if n < 1:
        raise ValueError(f"a cluster needs at least 1 host, got n={n}")
    if bootstrap not in ("join", "converged", "merged"):
        raise ValueError(f"bootstrap must be 'join', 'converged' or 'merged', not {bootstrap!r}")
    if not (math.isfinite(clock_skew_s) and clock_skew_s >= 0):
        raise ValueError(f"clock_skew_s must be a finite number >= 0, got {clock_skew_s!r}")
    if not (math.isfinite(clock_drift) and 0 <= clock_drift < 1):
        raise ValueError(f"clock_drift must be in [0, 1), got {clock_drift!r}")
    sim = Simulator(seed, network)

    def clock() -> tuple[float, float]:
        """A host's (clock offset, clock drift)."""
        offset = sim.rng.uniform(-clock_skew_s, clock_skew_s) if clock_skew_s else 0.0
        drift = sim.rng.uniform(-clock_drift, clock_drift) if clock_drift else 0.0
        return offset, drift

    inv = SwimInvariants(invariant_window_s(config, n)).install(sim) if invariants else None

    def restart_seeds(host: SimHost) -> list[Addr]:
        others = [h.addr for h in sim.hosts if h is not host]
        return sim.rng.sample(others, min(seeds_per_host, len(others)))

    if bootstrap == "join":
        booted: list[Addr] = []

        def first_seeds(host: SimHost) -> list[Addr]:
            if host.restarts:
                return restart_seeds(host)
            picks = sim.rng.sample(booted, min(seeds_per_host, len(booted)))
            booted.append(host.addr)
            return picks

        factory = swim_factory(config, seeds=first_seeds)

        def boot(clk: tuple[float, float]) -> None:
            sim.add_host(factory, clock_offset=clk[0], clock_drift=clk[1])

        for i in range(n):
            sim.at(i * 0.01, boot, clock())
        sim.run_until(n * 0.01)
        wait_for_one_view(sim, 120.0)
        return sim, inv
    factory = swim_factory(config, seeds=lambda h: restart_seeds(h) if h.restarts else [])
    hosts = []
    for _ in range(n):
        offset, drift = clock()
        hosts.append(sim.add_host(factory, start=False, clock_offset=offset, clock_drift=drift))
    for h in hosts:
        h.start(sim.now)  # pumped below, once every host is acquainted
    cores = [h.core for h in hosts]
    if bootstrap == "merged":
        acquaint(cores)
    else:
        view = SharedView([core.own_alive for core in cores])
        for h in hosts:
            h.core.adopt_shared_view(view, h.local(sim.now))
    for core in cores:
        while core.next_event() is not None:
            pass
    for h in hosts:
        sim.pump(h)
    return sim, inv


def wait_for_one_view(sim: Simulator, timeout_s: float, step_s: float = 0.25) -> float | None:
    """Run until every running host sees exactly the running hosts alive.

    Returns the virtual time it took, or None if ``timeout_s`` passed first.
    """
    start = sim.now
    while sim.now - start <= timeout_s:
        if view_disagreements(sim) == 0:
            return sim.now - start
        sim.run_for(step_s)
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


@dataclass(frozen=True, slots=True)
class Summary:
    """Median, p99 and maximum of a list of seconds."""

    n: int
    median_s: float
    p99_s: float
    max_s: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(len(values), statistics.median(values), percentile(values, 0.99), max(values))
