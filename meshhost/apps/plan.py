"""The leaderless reconciler: what this host must start, stop, link and unlink.

Sans-IO core. Inputs are plain values — the desired :class:`Placement`
(computed by :func:`~meshhost.apps.placement.compute_placement` from the
deployed manifests and this host's membership view), what this host runs, and
the manifest-owned links the directory holds; the output is a list of
actions for the host driver to carry out. No clock, no randomness, no I/O:
the same inputs give the same plan, which is what lets the simulator run the
production reconciler on a hundred hosts from one seed.

Rules:

* A host only ever acts on its own share: start what it should run and does
  not, stop what it runs beyond its share (including instances of keys that
  are no longer desired: an undeployed application or a replaced module).
  Every host doing this against the same placement gives exactly the
  requested counts, so counts are met when membership converges. During a
  partition each side places the whole count on its own hosts (duplicates,
  by design: availability first); after the heal the views merge, the
  placement is one again, and the surplus is stopped.
* Links: for every link the placement wants, the :data:`LINK_WRITERS` hosts
  ranked first for it write it when the directory does not already hold that
  exact value; links the directory holds for an application that no longer
  asks for them are deleted by the same writers. Writes are identical values
  (LWW), so overlapping writers are harmless.
* Plan order: link puts, starts, stops, link deletes — links exist before the
  actors that need them; on a module upgrade the new instances start before
  the old stop.

``running_on_me`` must list only instances the reconciler manages (keys made
by :func:`component_key`); instances started by hand are the host's business.

The driver runs :func:`reconcile` after any change to its inputs (manifest
applied or deleted, membership change, an instance exiting) and at a slow
periodic tick, applies the plan, and reports failures as events; it does not
retry a failed start in a tight loop (back off, as wadm's TODO notes).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from meshhost.apps.placement import LinkSpec, Placement, Workload, link_writers

__all__ = [
    "Action",
    "DeleteLink",
    "PutLink",
    "StartActor",
    "StopActor",
    "reconcile",
]


@dataclass(frozen=True, slots=True)
class StartActor:
    """Start ``count`` more instances of ``workload`` on this host."""

    workload: Workload
    count: int

    @property
    def key(self) -> str:
        return self.workload.key


@dataclass(frozen=True, slots=True)
class StopActor:
    """Stop ``count`` instances of the component ``key`` on this host."""

    key: str
    count: int


@dataclass(frozen=True, slots=True)
class PutLink:
    """Write this application link to the lattice-wide directory."""

    link: LinkSpec


@dataclass(frozen=True, slots=True)
class DeleteLink:
    """Remove this application link (its application no longer asks for it)."""

    link: LinkSpec


Action = StartActor | StopActor | PutLink | DeleteLink


def reconcile(
    my_host_id: str,
    desired: Placement,
    running_on_me: Mapping[str, int],
    managed_links: Iterable[LinkSpec] = (),
    keep_links_of: Collection[str] = (),
) -> list[Action]:
    """The actions that move this host from ``running_on_me`` to its share of ``desired``.

    ``managed_links`` are the manifest-owned links the directory holds now.
    ``keep_links_of`` names applications whose links must not be deleted even
    though ``desired`` does not ask for them: those deployed whose manifest has
    not reached this host yet (see ``store.deployed_manifests``), so a host
    that lags behind does not undo another's link writes.
    Returns an empty list when this host is already where it should be. Pure.
    """
    mine = desired.for_host(my_host_id)
    starts: list[Action] = []
    stops: list[Action] = []
    for key in sorted(set(mine) | set(running_on_me)):
        want = mine.get(key, 0)
        have = running_on_me.get(key, 0)
        if want > have:
            starts.append(StartActor(desired.workloads[key], want - have))
        elif have > want:
            stops.append(StopActor(key, have - want))

    present = {link.key: link for link in managed_links}
    wanted = {link.key: link for link in desired.links}
    puts: list[Action] = []
    deletes: list[Action] = []
    for link_key in sorted(wanted):
        if present.get(link_key) != wanted[link_key] and my_host_id in link_writers(
            link_key, desired.candidates
        ):
            puts.append(PutLink(wanted[link_key]))
    for link_key in sorted(present):
        if (
            link_key not in wanted
            and present[link_key].app not in keep_links_of
            and my_host_id in link_writers(link_key, desired.candidates)
        ):
            deletes.append(DeleteLink(present[link_key]))
    return puts + starts + stops + deletes
