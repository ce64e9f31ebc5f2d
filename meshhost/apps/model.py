"""The application model: an immutable, validated :class:`Manifest` and its parts.

What :mod:`meshhost.apps.manifest` parses a wadm-style OAM manifest into, the
limits it enforces, and the canonical form stored in the directory and
hashed. Building these by hand skips validation: parse with
:func:`~meshhost.apps.manifest.parse_manifest` (or decode stored bytes with
:func:`~meshhost.apps.manifest.decode_manifest`) instead.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshhost.errors import LocalProtocolError

__all__ = [
    "API_VERSION",
    "BUILTIN_CONTRACTS",
    "DEFAULT_LINK_NAME",
    "DEFAULT_SPREAD_WEIGHT",
    "KIND",
    "LATEST_VERSION",
    "MAX_CANONICAL_BYTES",
    "MAX_COMPONENTS",
    "MAX_IMAGE_BYTES",
    "MAX_INSTANCES",
    "MAX_INSTANCES_PER_HOST",
    "MAX_LABEL_CHARS",
    "MAX_MAP_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_SPREADS",
    "MAX_TEXT_CHARS",
    "MAX_TRAITS",
    "MAX_WEIGHT",
    "Component",
    "ComponentType",
    "Linkdef",
    "Manifest",
    "Pairs",
    "Scaler",
    "ScalerKind",
    "Spread",
    "split_by_weight",
]

API_VERSION = "core.oam.dev/v1beta1"
KIND = "Application"
LATEST_VERSION = "latest"
"""wadm forbids this version string: it names "whatever is newest", not a version."""
DEFAULT_SPREAD_WEIGHT = 100
"""wadm's default weight of a spread entry."""
DEFAULT_LINK_NAME = "default"

MAX_COMPONENTS = 128
"""Components per application; far above real apps, bounds placement work."""
MAX_TRAITS = 16
"""Traits per component (one scaler plus a link per contract is typical)."""
MAX_SPREADS = 32
"""Spread entries per scaler."""
MAX_INSTANCES = 10_000
"""Instances of one spread-scaled component lattice-wide: more is a typo (1e6?)."""
MAX_INSTANCES_PER_HOST = 1_000
"""Instances per host for a daemonscaler."""
MAX_WEIGHT = 1_000_000
"""Largest spread weight; weights are relative, so this is plenty."""
MAX_NAME_CHARS = 63
"""Application and component names (they appear in keys, paths and tables)."""
MAX_TEXT_CHARS = 4_096
"""Descriptions, annotation and link values."""
MAX_LABEL_CHARS = 253
"""Label keys and values in spread requirements and metadata labels."""
MAX_MAP_ITEMS = 64
"""Entries in any string map (annotations, requirements, link values)."""
MAX_CANONICAL_BYTES = 192 * 1024
"""Largest stored (canonical) form: a manifest at the file limit grows by its absolute
paths and digests; this stays under the directory's 256 KiB value limit."""
MAX_IMAGE_BYTES = 256 * 1024 * 1024
"""Largest actor module read to hash it (componentize-py output is ~18 MB)."""

BUILTIN_CONTRACTS = (
    "wasmcloud:keyvalue",
    "wasmcloud:messaging",
    "wasmcloud:httpserver",
    "wasmcloud:httpclient",
    "wasmcloud:builtin:logging",
)
"""Contracts served by the providers built into every meshhost host."""


class ComponentType(enum.StrEnum):
    """What a component is. Stored by value: append-only."""

    ACTOR = "actor"
    CAPABILITY = "capability"


class ScalerKind(enum.StrEnum):
    """How instances are counted. Stored by value: append-only."""

    SPREAD = "spreadscaler"
    """``instances`` lattice-wide, split across spread entries by weight."""
    DAEMON = "daemonscaler"
    """``instances`` on every host matching any spread entry."""


Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Spread:
    """One spread entry: hosts whose labels include all ``requirements``, with a weight."""

    name: str
    requirements: Pairs
    weight: int

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every requirement label is present on the host with the same value."""
        return all(labels.get(key) == value for key, value in self.requirements)


@dataclass(frozen=True, slots=True)
class Scaler:
    """A spreadscaler or daemonscaler. ``spread`` is never empty: a scaler
    without one gets a single entry ``default`` matching every host."""

    kind: ScalerKind
    instances: int
    spread: tuple[Spread, ...]


@dataclass(frozen=True, slots=True)
class Linkdef:
    """A link from the actor carrying the trait to a built-in provider or another actor.

    ``target`` is as written (a capability component name, a contract id, or
    an actor component name); ``contract_id``/``link_name`` are resolved from
    it. For an actor target the contract id is that actor's ``M…`` key, as the
    capabilities policy expects for actor-to-actor calls (``app/component``
    when the image was not inspected).
    """

    target: str
    contract_id: str
    link_name: str
    values: Pairs


@dataclass(frozen=True, slots=True)
class Component:
    """An actor or a (built-in) capability provider of an application.

    For actors ``image`` is a ``file://`` URL of an absolute path, ``sha256``
    the lower-case hex digest of the module (None when the file was not
    read), ``actor_id`` its ``M…`` key when known. For capabilities
    ``contract_id`` and ``link_name`` say which built-in provider it names.
    """

    name: str
    type: ComponentType
    image: str
    sha256: str | None = None
    actor_id: str | None = None
    contract_id: str | None = None
    link_name: str = DEFAULT_LINK_NAME
    scaler: Scaler | None = None
    linkdefs: tuple[Linkdef, ...] = ()
    limits: tuple[tuple[str, int], ...] = ()
    """Runtime limits the actor's properties set (``max_memory_mib`` ...; see
    :data:`meshhost.config.LIMIT_BOUNDS`), sorted by name; the others are each
    host's defaults."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated application manifest (immutable).

    Equality ignores ``warnings`` (advice for the person applying it, not
    content). Identity in the lattice is ``(name, version)``.
    """

    name: str
    version: str
    components: tuple[Component, ...]
    description: str = ""
    annotations: Pairs = ()
    """Annotations other than version and description, sorted."""
    labels: Pairs = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def component(self, name: str) -> Component:
        """The component called ``name``; raises KeyError if there is none."""
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    @property
    def actors(self) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.type is ComponentType.ACTOR)

    def to_document(self) -> dict[str, Any]:
        """The manifest as an OAM document (plain dicts/lists), in canonical shape."""
        annotations = dict(self.annotations)
        annotations["version"] = self.version
        if self.description:
            annotations["description"] = self.description
        metadata: dict[str, Any] = {"name": self.name, "annotations": annotations}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": {"components": [_component_document(c) for c in self.components]},
        }

    def to_yaml(self) -> str:
        """The manifest as YAML (for ``meshhost app get``); parses back to an equal manifest."""
        text: str = yaml.safe_dump(
            self.to_document(), sort_keys=False, allow_unicode=True, default_flow_style=False
        )
        return text

    def canonical(self) -> bytes:
        """Canonical bytes: compact JSON with sorted keys, UTF-8.

        Two manifests are equal exactly when their canonical bytes are equal;
        this is what the directory stores and what :meth:`digest` hashes.
        """
        return json.dumps(
            self.to_document(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    def digest(self) -> str:
        """BLAKE2b-256 hex of :meth:`canonical` (short id for status and diffs)."""
        return hashlib.blake2b(self.canonical(), digest_size=32).hexdigest()


def _component_document(component: Component) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if component.image:
        properties["image"] = component.image
    if component.type is ComponentType.ACTOR:
        if component.sha256:
            properties["sha256"] = component.sha256
        if component.actor_id:
            properties["id"] = component.actor_id
        properties.update(component.limits)
    else:
        properties["contract"] = component.contract_id
        properties["link_name"] = component.link_name
    traits: list[dict[str, Any]] = []
    if component.scaler is not None:
        scaler = component.scaler
        spread = [
            {"name": s.name, "requirements": dict(s.requirements), "weight": s.weight}
            for s in scaler.spread
        ]
        traits.append(
            {
                "type": str(scaler.kind),
                "properties": {"instances": scaler.instances, "spread": spread},
            }
        )
    for link in component.linkdefs:
        traits.append(
            {"type": "linkdef", "properties": {"target": link.target, "values": dict(link.values)}}
        )
    document: dict[str, Any] = {
        "name": component.name,
        "type": str(component.type),
        "properties": properties,
    }
    if traits:
        document["traits"] = traits
    return document


def split_by_weight(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` by largest remainder.

    The parts add up to ``total`` exactly (all zero when the weights sum to
    zero). Ties in remainder go to the larger weight, then the earlier index,
    so the answer is deterministic. Placement divides a spread scaler's
    instances with it; it lives here because the manifest's warnings (a spread
    entry that gets no instance) use the same rule.
    """
    weight_sum = sum(weights)
    if total < 0 or any(w < 0 for w in weights):
        raise LocalProtocolError("split_by_weight needs non-negative numbers")
    if weight_sum == 0:
        return [0] * len(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], -weights[i], i))
    for index in order[:leftover]:
        parts[index] += 1
    return parts
