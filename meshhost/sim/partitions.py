"""Partitions of a chosen shape, and whether they really split the views.

A shape is a list of group sizes: :func:`random_groups` draws that many
hosts per group from the simulator's seeded PRNG; hosts left over are a
*bridge* that every group can still reach.  :func:`cut_groups` cuts every
group from every other (``one_way``: only traffic from an earlier group to
a later one is dropped).  :func:`views_split` says whether the membership
views followed: no running host in a group holds a host of another group
as alive or suspect (each side has declared the other dead).
"""

from __future__ import annotations

from collections.abc import Sequence

from meshhost.sim.host import SimHost
from meshhost.sim.loop import Simulator

__all__ = ["cut_groups", "random_groups", "views_split"]


def random_groups(sim: Simulator, sizes: Sequence[int]) -> list[list[SimHost]]:
    """``len(sizes)`` disjoint groups of random hosts, ``sizes[i]`` in group ``i``.

    Raises ``ValueError`` if a size is below 1 or the sizes add up to more
    than the hosts there are.
    """
    if any(size < 1 for size in sizes):
        raise ValueError(f"every group needs at least 1 host, got sizes {list(sizes)}")
    if sum(sizes) > len(sim.hosts):
        raise ValueError(
            f"groups of {'+'.join(map(str, sizes))} hosts need {sum(sizes)} hosts, "
            f"the simulation has {len(sim.hosts)}"
        )
    order = list(sim.hosts)
    sim.rng.shuffle(order)
    groups = []
    start = 0
    for size in sizes:
        groups.append(order[start : start + size])
        start += size
    return groups


def cut_groups(
    sim: Simulator, groups: Sequence[Sequence[SimHost]], *, one_way: bool = False
) -> list[int]:
    """Cut every group from every later one; returns the cut ids (``sim.heal()`` removes all).

    Raises ``ValueError`` for fewer than two groups (nothing to cut).
    """
    if len(groups) < 2:
        raise ValueError(f"a cut needs at least two groups, got {len(groups)}")
    return [
        sim.partition(groups[i], groups[j], one_way=one_way)
        for i in range(len(groups))
        for j in range(i + 1, len(groups))
    ]


def views_split(sim: Simulator, groups: Sequence[Sequence[SimHost]]) -> bool:
    """True if no running host holds a host of another group as alive or suspect."""
    group_of = {h.index: g for g, hosts in enumerate(groups) for h in hosts}
    ids_of = [{h.node_id for h in hosts} for hosts in groups]
    for host in sim.hosts:
        g = group_of.get(host.index)
        if g is None or not host.up:
            continue
        live = host.core.live_ids()
        if any(live & ids for other, ids in enumerate(ids_of) if other != g):
            return False
    return True
