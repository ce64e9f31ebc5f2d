"""The desired placement each simulated host would compute from its own view.

Every real host runs :func:`~meshhost.control.compute_placement` over the
deployed manifests and the members its SWIM core holds (alive and suspect
hosts are candidates).  Here that production function runs over each
simulated host's real SWIM view, with labels the scenario gives per host
index.  Equal placements mean the hosts would start and stop the same
instances and pick the same writers for every link (both follow from the
candidates); the reference is the placement over the hosts really running.
The reconciler and the directory themselves are not simulated here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from meshhost.apps.model import Manifest
from meshhost.apps.placement import HostView, Placement, compute_placement, host_views
from meshhost.sim.loop import Simulator

__all__ = ["Labels", "host_placements", "placement_disagreements", "true_placement"]

Labels = Mapping[int, Mapping[str, str]]
"""Labels per host index (hosts without an entry have none)."""


def _by_id(sim: Simulator, labels: Labels) -> dict[str, Mapping[str, str]]:
    return {h.node_id: labels[h.index] for h in sim.hosts if h.node_id and h.index in labels}


def host_placements(
    sim: Simulator, manifests: Iterable[Manifest], labels: Labels
) -> dict[int, Placement]:
    """Host index -> the placement that running host computes from its own view."""
    manifests = list(manifests)
    by_id = _by_id(sim, labels)
    return {
        h.index: compute_placement(manifests, host_views(h.core.members(), by_id))
        for h in sim.hosts
        if h.up and not h.core.left
    }


def true_placement(sim: Simulator, manifests: Iterable[Manifest], labels: Labels) -> Placement:
    """The placement over exactly the running hosts, all alive (what views converge to)."""
    by_id = _by_id(sim, labels)
    running = [h for h in sim.hosts if h.up and not h.core.left]
    views = [HostView.of(h.core.id, by_id.get(h.core.id)) for h in running]
    return compute_placement(manifests, views)


def placement_disagreements(sim: Simulator, manifests: Iterable[Manifest], labels: Labels) -> int:
    """How many running hosts compute a placement other than :func:`true_placement`."""
    manifests = list(manifests)
    truth = true_placement(sim, manifests, labels)
    return sum(1 for p in host_placements(sim, manifests, labels).values() if p != truth)
