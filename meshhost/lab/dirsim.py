"""The lattice directory in the simulator: each SWIM core carries a real Directory.

:func:`directory_cluster` builds ``n`` hosts like
:func:`~meshhost.sim.cluster.build_cluster` (already acquainted at t = 0),
but each host's SWIM core has the production
:class:`~meshhost.directory.Directory` as its delegate, so links and config
spread by piggybacked gossip and push-pull anti-entropy exactly as on real
hosts.  A directory's clock is its host's (skewable) clock; its entry store
lives on the host's simulated disk, so a restart keeps it.
:func:`partition_writes` is the scenario the docs and
``simulations/directory_convergence.py`` use: conflicting writes on both
sides of a cut, then the directory checker
(:func:`~meshhost.lab.checkers.check_directory`) after the heal.
"""

from __future__ import annotations

import random
from typing import Any

from meshhost.config import MembershipConfig
from meshhost.directory import Directory, MemoryStore
from meshhost.identity.nkeys import Prefix, generate
from meshhost.lab.checkers import DirectoryWrite, check_directory
from meshhost.membership.swim import Swim
from meshhost.sim.cluster import acquaint
from meshhost.sim.host import SimHost
from meshhost.sim.loop import Simulator
from meshhost.sim.network import NetworkModel
from meshhost.sim.partitions import cut_groups, random_groups

__all__ = ["directory_cluster", "directory_states", "partition_writes"]

NS = "config"


def directory_cluster(
    seed: int, n: int, config: MembershipConfig, *, network: NetworkModel | None = None
) -> tuple[Simulator, dict[int, Directory]]:
    """``n`` acquainted hosts with directories; host index -> its current Directory."""
    if n < 1:
        raise ValueError(f"a cluster needs at least 1 host, got n={n}")
    sim = Simulator(seed, network)
    dirs: dict[int, Directory] = {}

    def make(host: SimHost, now: float, rng: random.Random) -> Swim:
        identity = host.disk.get("identity")
        if identity is None:
            identity = host.disk["identity"] = generate(Prefix.SERVER, rng.randbytes)
            host.disk["directory"] = MemoryStore()
        directory = Directory(
            identity.public_key, clock=lambda: host.local(sim.now), store=host.disk["directory"]
        )
        dirs[host.index] = directory
        core = Swim(identity, host.addr, config, rng, now, delegate=directory)
        directory.attach_membership(
            is_live=lambda node: core.member(node) is not None,
            member_count=lambda: len(core.alive_ids()),
        )
        if host.restarts:
            others = [h.addr for h in sim.hosts if h is not host]
            core.join(sim.rng.sample(others, min(3, len(others))), now)
        return core

    hosts = [sim.add_host(make, start=False) for _ in range(n)]
    for h in hosts:
        h.start(sim.now)
    acquaint([h.core for h in hosts])
    for h in hosts:
        while h.core.next_event() is not None:
            pass
        sim.pump(h)
    return sim, dirs


def directory_states(sim: Simulator, dirs: dict[int, Directory]) -> dict[str, dict[str, Any]]:
    """Running host -> its ``config`` entries."""
    return {str(h.index): dict(dirs[h.index].items(NS)) for h in sim.hosts if h.up}


def partition_writes(
    seed: int,
    n: int,
    config: MembershipConfig,
    *,
    minority: int,
    cut_s: float,
    writes: int,
    keys: int,
    horizon_s: float = 120.0,
    step_s: float = 0.25,
) -> dict[str, Any]:
    """Cut ``minority`` hosts off for ``cut_s``; meanwhile ``writes`` random hosts
    each write one of ``keys`` config keys (both sides write the same keys);
    heal; time until every host holds the same entries, then check them.

    Raises :class:`~meshhost.errors.HistoryViolation` if the hosts did not
    converge to the last writers' values within ``horizon_s``.
    """
    if not 1 <= minority < n:
        raise ValueError(f"minority must be 1 .. {n - 1} hosts for n={n}, got {minority}")
    sim, dirs = directory_cluster(seed, n, config)
    sim.run_for(5.0)
    cut_groups(sim, random_groups(sim, [minority, n - minority]))
    log: list[DirectoryWrite] = []

    def write(index: int, key: str, value: str) -> None:
        stamp = dirs[index].config_put(key, value)
        log.append(DirectoryWrite(key, value, stamp, str(index)))
        sim.pump(sim.hosts[index])

    start = sim.now
    for i in range(writes):
        at = start + sim.rng.uniform(0, cut_s)
        sim.at(at, write, sim.rng.randrange(n), f"k{sim.rng.randrange(keys)}", f"w{i}")
    sim.run_for(cut_s)
    diverged = len({repr(sorted(s.items())) for s in directory_states(sim, dirs).values()})
    sim.heal()
    healed = sim.now
    converged_s = None
    while sim.now - healed <= horizon_s:
        if len({repr(sorted(s.items())) for s in directory_states(sim, dirs).values()}) == 1:
            converged_s = sim.now - healed
            break
        sim.run_for(step_s)
    result = check_directory(directory_states(sim, dirs), log).raise_if_invalid()
    return {
        "converge_s": converged_s,
        "states_at_heal": diverged,
        **result.observation(),
    }
