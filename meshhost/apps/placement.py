"""Desired placement: the same answer on every host, computed without a leader.

Theory of operation. Every host holds the same deployed manifests (from the
directory) and, once membership converges, the same member list with labels.
:func:`compute_placement` is a pure function of those two inputs — sorted
before use, so the order they arrive in never matters — and so every host
computes the same ``{host_id: {component_key: count}}`` and starts or stops
only its own share. No host coordinates, and none needs to.

How one scaler is placed:

1. *Spread split.* ``instances`` is divided among the scaler's spread entries
   in proportion to their weights by the largest-remainder method (ties go to
   the larger weight, then to the earlier entry), so the counts always add up
   exactly to ``instances``.
2. *Eligible hosts.* An entry's hosts are the live members whose labels hold
   every requirement. None eligible: the entry's instances are reported in
   :attr:`Placement.unsatisfied` (never silently moved elsewhere, as in wadm).
3. *Rendezvous fill.* Each eligible host gets ``count // H`` instances and the
   ``count % H`` hosts ranked highest by rendezvous (highest-random-weight)
   hashing get one more. A host's rank for a component is
   ``blake2b(component id, spread name, host id)``, a stable hash, so ranks
   never depend on who else is present. Consequence (the reason for this
   choice over one independent hash draw per replica, which would pile
   replicas on one host ~4 % of the time for 4 on 3): when a host joins, no
   other host gains an instance; when one leaves, no other host loses one.
   The instances that move are exactly the joining host's new share or the
   leaving host's old one — the minimum any balanced placement can move.

A daemonscaler puts ``instances`` on every host matching any of its entries.

Liveness. Members that are alive *or suspect* are placement candidates:
SWIM's suspicion is often a slow host, and moving its instances away only to
move them back on refutation is the flapping we damp. Dead and left members
are not candidates; their share moves when membership declares them.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from meshhost.apps.model import (
    BUILTIN_CONTRACTS,
    Component,
    ComponentType,
    Manifest,
    Pairs,
    ScalerKind,
    split_by_weight,
)
from meshhost.errors import LocalProtocolError

if TYPE_CHECKING:
    from meshhost.capabilities.links import LinkDefinition

__all__ = [
    "LINK_WRITERS",
    "HostState",
    "HostView",
    "LinkSpec",
    "Placement",
    "Unsatisfied",
    "Workload",
    "component_key",
    "compute_placement",
    "host_views",
    "hrw_rank",
    "link_specs",
    "link_writers",
    "split_by_weight",
]

BUILTIN_PROVIDER_ID = "builtin"
"""Provider id of links to built-in providers (as meshhost.capabilities.policy uses)."""
LINK_WRITERS = 2
"""Hosts that write each manifest link to the directory. One would do when all
agree; two covers the top-ranked host being suspect or freshly dead, and the
writes are identical values, so a duplicate is harmless."""


class HostState(enum.StrEnum):
    """Membership state of a host as the reconciler sees it."""

    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"
    LEFT = "left"


_CANDIDATE_STATES = frozenset({HostState.ALIVE, HostState.SUSPECT})


@dataclass(frozen=True, slots=True)
class HostView:
    """One member as this host sees it: id, labels, state."""

    host_id: str
    labels: Pairs = ()
    state: HostState = HostState.ALIVE

    @classmethod
    def of(
        cls,
        host_id: str,
        labels: Mapping[str, str] | None = None,
        state: HostState | str = HostState.ALIVE,
    ) -> HostView:
        """Build a view from a label dict (sorted into the frozen form)."""
        return cls(host_id, tuple(sorted((labels or {}).items())), HostState(state))

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


class MemberLike(Protocol):
    """What placement reads of a membership snapshot (``meshhost.membership.Member``)."""

    @property
    def id(self) -> str: ...

    @property
    def state(self) -> enum.Enum:
        """Named ALIVE, SUSPECT, DEAD or LEFT."""
        ...


def host_views(
    members: Iterable[MemberLike], labels: Mapping[str, Mapping[str, str]]
) -> list[HostView]:
    """HostViews from membership snapshots and the directory's host labels.

    ``members`` are ``meshhost.membership.Member`` (anything with ``.id`` and a
    ``.state`` whose name is ALIVE/SUSPECT/DEAD/LEFT); ``labels`` maps host id
    to its labels (hosts without an entry have none).
    """
    views = []
    for member in members:
        host_id = member.id
        state = HostState(member.state.name.lower())
        views.append(HostView.of(host_id, labels.get(host_id), state))
    return views


@dataclass(frozen=True, slots=True)
class Workload:
    """What a component key stands for: enough for a host to start it."""

    key: str
    app: str
    version: str
    component: str
    image: str
    sha256: str | None
    actor_id: str | None
    limits: tuple[tuple[str, int], ...] = ()
    """The component's own runtime limits (the rest are the host's defaults)."""


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A link definition an application asks for, owned by ``app``.

    ``actor_id`` is the linked actor's ``M…`` key when the manifest knows it
    (``None`` only for manifests parsed without reading images); the host maps
    ``contract_id`` to its built-in provider id when writing the directory's
    link definition.
    """

    app: str
    source: str
    actor_id: str | None
    contract_id: str
    link_name: str
    values: Pairs

    @property
    def key(self) -> tuple[str, str, str]:
        """Link identity as in wasmCloud: (actor, contract id, link name)."""
        return (self.actor_id or f"{self.app}/{self.source}", self.contract_id, self.link_name)

    @property
    def provider_id(self) -> str:
        """``builtin`` for a built-in provider contract, ``""`` for an actor-call link."""
        return BUILTIN_PROVIDER_ID if self.contract_id in BUILTIN_CONTRACTS else ""

    def to_link_definition(self) -> LinkDefinition:
        """The capabilities layer's link definition for this link.

        Raises LocalProtocolError when the actor id is unknown (the manifest
        was parsed without reading its images' claims).
        """
        # Imported here: the capabilities package pulls in trio, and this core must not.
        from meshhost.capabilities.links import LinkDefinition

        if not self.actor_id:
            raise LocalProtocolError(
                f"link {self.contract_id}/{self.link_name} of {self.app}/{self.source}: the "
                "actor id is unknown; parse the manifest with inspect_image=actor_id_from_claims"
            )
        return LinkDefinition(
            self.actor_id, self.contract_id, self.link_name, self.provider_id, dict(self.values)
        )


def link_specs(app: str, component: Component) -> list[LinkSpec]:
    """The links actor ``component`` of application ``app`` declares, in manifest order."""
    return [
        LinkSpec(
            app, component.name, component.actor_id, link.contract_id, link.link_name, link.values
        )
        for link in component.linkdefs
    ]


@dataclass(frozen=True, slots=True)
class Unsatisfied:
    """Part of an application the lattice cannot place now, and why."""

    app: str
    component: str
    spread: str
    wanted: int
    message: str


def component_key(
    app: str, component: str, sha256: str | None = None, limits: tuple[tuple[str, int], ...] = ()
) -> str:
    """Key of a component's instances: ``app/component`` plus ``@`` and the first 16 hex
    of the module digest, so a changed module is a different workload (old instances stop,
    new ones start) while the host ranking, which uses ``app/component``, stays put.
    Runtime limits add ``~`` and the first 8 hex of their BLAKE2b digest, so changed
    limits restart the instances too."""
    base = f"{app}/{component}"
    key = f"{base}@{sha256[:16]}" if sha256 else base
    if limits:
        text = ",".join(f"{name}={value}" for name, value in sorted(limits))
        key += "~" + hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return key


@dataclass(frozen=True, slots=True)
class Placement(Mapping[str, Mapping[str, int]]):
    """The desired state of the lattice: a read-only mapping
    ``host_id -> {component_key: count}`` (hosts with nothing are absent),
    plus what each key is, the links to keep, and what cannot be placed."""

    by_host: Mapping[str, Mapping[str, int]]
    workloads: Mapping[str, Workload] = field(default_factory=dict)
    links: tuple[LinkSpec, ...] = ()
    candidates: tuple[str, ...] = ()
    """Sorted ids of the hosts considered (alive or suspect)."""
    unsatisfied: tuple[Unsatisfied, ...] = ()

    def __getitem__(self, host_id: str) -> Mapping[str, int]:
        return self.by_host[host_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_host)

    def __len__(self) -> int:
        return len(self.by_host)

    def for_host(self, host_id: str) -> Mapping[str, int]:
        """The share of ``host_id`` (empty when it runs nothing)."""
        return self.by_host.get(host_id, {})

    def total(self, key: str) -> int:
        """Instances of ``key`` lattice-wide."""
        return sum(share.get(key, 0) for share in self.by_host.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {host: dict(share) for host, share in self.by_host.items()}


@functools.lru_cache(maxsize=1 << 16)
def _score(key: str, host_id: str) -> bytes:
    return hashlib.blake2b(
        f"{key}\x00{host_id}".encode(), digest_size=16, person=b"meshhost-hrw"
    ).digest()


@functools.lru_cache(maxsize=1 << 12)
def _label_set(labels: Pairs) -> frozenset[tuple[str, str]]:
    return frozenset(labels)


def hrw_rank(key: str, host_ids: Iterable[str]) -> list[str]:
    """Hosts ordered by rendezvous score for ``key``, best first (ties by host id)."""
    return sorted(host_ids, key=lambda host: (_score(key, host), host), reverse=True)


def _fill(
    key: str, count: int, hosts: Sequence[str], into: dict[str, dict[str, int]], component: str
) -> None:
    """Give each of ``hosts`` (sorted) ``count // H``, and one more to the ``count % H``
    ranked highest: the same as ranking them all with :func:`hrw_rank`, but only the
    top few are found (this runs for every spread on every view change)."""
    if count <= 0 or not hosts:
        return
    base, extra = divmod(count, len(hosts))
    if base:
        for host in hosts:
            share = into.setdefault(host, {})
            share[component] = share.get(component, 0) + base
    if extra:
        # nlargest is stable like sorted(reverse=True): equal scores keep host order.
        for host in heapq.nlargest(extra, hosts, key=functools.partial(_score, key)):
            share = into.setdefault(host, {})
            share[component] = share.get(component, 0) + 1


def link_writers(link_key: tuple[str, str, str], candidates: Iterable[str]) -> list[str]:
    """The hosts that write ``link_key`` to the directory (top :data:`LINK_WRITERS`)."""
    return hrw_rank("link\x00" + "\x00".join(link_key), candidates)[:LINK_WRITERS]


def _requirements_text(requirements: Pairs) -> str:
    return ", ".join(f"{k}={v}" for k, v in requirements) or "(any host)"


def compute_placement(manifests: Iterable[Manifest], members: Iterable[HostView]) -> Placement:
    """The desired placement of every deployed manifest over ``members``.

    Pure and deterministic: the same manifests and members (in any order)
    give the same result on every host. Only ALIVE and SUSPECT members are
    candidates. Raises :class:`LocalProtocolError` if two manifests share a
    name or a host id appears twice.
    """
    views: dict[str, HostView] = {}
    for view in members:
        if view.host_id in views:
            raise LocalProtocolError(f"host {view.host_id!r} is listed twice in the members")
        views[view.host_id] = view
    candidates = sorted(h for h, v in views.items() if v.state in _CANDIDATE_STATES)
    label_sets = {h: _label_set(views[h].labels) for h in candidates}
    eligible_cache: dict[Pairs, list[str]] = {}

    def eligible_for(requirements: Pairs) -> list[str]:
        # Subset test on frozensets: this runs for every spread on every view
        # change of every host, so it is kept cheap (and memoised per call).
        if requirements not in eligible_cache:
            wanted = frozenset(requirements)
            eligible_cache[requirements] = [h for h in candidates if wanted <= label_sets[h]]
        return eligible_cache[requirements]

    ordered = sorted(manifests, key=lambda m: m.name)
    for first, second in itertools.pairwise(ordered):
        if first.name == second.name:
            raise LocalProtocolError(f"application {first.name!r} is deployed twice")

    by_host: dict[str, dict[str, int]] = {}
    workloads: dict[str, Workload] = {}
    links: dict[tuple[str, str, str], LinkSpec] = {}
    unsatisfied: list[Unsatisfied] = []
    for manifest in ordered:
        for component in manifest.components:
            if component.type is not ComponentType.ACTOR:
                continue  # built-in providers run in every host
            key = component_key(manifest.name, component.name, component.sha256, component.limits)
            rank_id = f"{manifest.name}/{component.name}"
            workloads[key] = Workload(
                key,
                manifest.name,
                manifest.version,
                component.name,
                component.image,
                component.sha256,
                component.actor_id,
                component.limits,
            )
            for spec in link_specs(manifest.name, component):
                if spec.key in links:  # two apps link one actor: the first by name wins
                    owner = links[spec.key].app
                    unsatisfied.append(
                        Unsatisfied(
                            manifest.name,
                            component.name,
                            "",
                            0,
                            f"link {spec.contract_id}/{spec.link_name} of this actor is already "
                            f"set by application {owner!r}; this one is ignored",
                        )
                    )
                    continue
                links[spec.key] = spec
            scaler = component.scaler
            if scaler is None:
                continue
            if scaler.kind is ScalerKind.DAEMON:
                matching_set = set().union(*(eligible_for(s.requirements) for s in scaler.spread))
                matching = [h for h in candidates if h in matching_set]
                if not matching and scaler.instances:
                    wanted_labels = " or ".join(
                        _requirements_text(s.requirements) for s in scaler.spread
                    )
                    unsatisfied.append(
                        Unsatisfied(
                            manifest.name,
                            component.name,
                            "",
                            scaler.instances,
                            f"no live host matches {wanted_labels}",
                        )
                    )
                for host in matching:
                    if scaler.instances:
                        share = by_host.setdefault(host, {})
                        share[key] = share.get(key, 0) + scaler.instances
                continue
            counts = split_by_weight(scaler.instances, [s.weight for s in scaler.spread])
            for spread, count in zip(scaler.spread, counts, strict=True):
                eligible = eligible_for(spread.requirements)
                if count and not eligible:
                    unsatisfied.append(
                        Unsatisfied(
                            manifest.name,
                            component.name,
                            spread.name,
                            count,
                            f"spread {spread.name!r} needs {count} instance(s) but no live host "
                            f"has {_requirements_text(spread.requirements)}",
                        )
                    )
                    continue
                _fill(f"{rank_id}\x00{spread.name}", count, eligible, by_host, key)
    return Placement(
        by_host=by_host,
        workloads=workloads,
        links=tuple(links[k] for k in sorted(links)),
        candidates=tuple(candidates),
        unsatisfied=tuple(unsatisfied),
    )
