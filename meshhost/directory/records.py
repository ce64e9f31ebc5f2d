"""Typed views of per-host directory values, and the key layout of host state.

A host's own state (``hoststate.py``) is a map of plain msgpack values under
these keys (``proto/spec/directory.md``):

* ``actor/<actor id>``: ``{"id", "name", "caps", "call_alias", "issuer", "instances"}``
* ``provider/<provider id>/<link name>``: ``{"id", "contract_id", "link_name", "name"}``
* ``labels``: ``{str: str}``; ``load``: float (calls in flight per core);
  ``addr``: ``"host:port"`` of the transport listener; ``version``: meshhost version.

Values come from peers, so readers are tolerant: a malformed value is
skipped (``from_value`` returns None), never raised, so one bad host cannot
break queries about the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "ACTOR_PREFIX",
    "ADDR_KEY",
    "LABELS_KEY",
    "LOAD_KEY",
    "PROVIDER_PREFIX",
    "VERSION_KEY",
    "ActorLocation",
    "ActorSummary",
    "HostRecord",
    "ProviderRecord",
]

ACTOR_PREFIX = "actor/"
PROVIDER_PREFIX = "provider/"
LABELS_KEY = "labels"
LOAD_KEY = "load"
ADDR_KEY = "addr"
VERSION_KEY = "version"


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


@dataclass(frozen=True, slots=True)
class ActorSummary:
    """What the lattice needs to know of an actor's signed claims."""

    id: str
    name: str = ""
    caps: tuple[str, ...] = ()
    call_alias: str = ""
    issuer: str = ""

    def to_value(self, instances: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "caps": list(self.caps),
            "call_alias": self.call_alias,
            "issuer": self.issuer,
            "instances": instances,
        }

    @classmethod
    def from_value(cls, value: Any) -> tuple[ActorSummary, int] | None:
        """(summary, instances) from a stored value, or None when malformed."""
        if not isinstance(value, Mapping):
            return None
        actor_id = _str(value.get("id"))
        caps = value.get("caps", [])
        instances = value.get("instances", 0)
        if (
            not actor_id
            or not isinstance(caps, list)
            or not all(isinstance(c, str) for c in caps)
            or type(instances) is not int
        ):
            return None
        return (
            cls(
                actor_id,
                _str(value.get("name")) or "",
                tuple(caps),
                _str(value.get("call_alias")) or "",
                _str(value.get("issuer")) or "",
            ),
            instances,
        )


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """A capability provider a host serves under one link name."""

    id: str
    contract_id: str
    link_name: str = "default"
    name: str = ""

    def key(self) -> str:
        return f"{PROVIDER_PREFIX}{self.id}/{self.link_name}"

    def to_value(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contract_id": self.contract_id,
            "link_name": self.link_name,
            "name": self.name,
        }

    @classmethod
    def from_value(cls, value: Any) -> ProviderRecord | None:
        if not isinstance(value, Mapping):
            return None
        pid, contract = _str(value.get("id")), _str(value.get("contract_id"))
        if not pid or not contract:
            return None
        return cls(
            pid, contract, _str(value.get("link_name")) or "default", _str(value.get("name")) or ""
        )


class ActorLocation(NamedTuple):
    """One host running an actor, for the router."""

    host_id: str
    instances: int
    load: float
    addr: str


@dataclass(frozen=True, slots=True)
class HostRecord:
    """Everything the directory knows about one host."""

    host_id: str
    generation: int
    addr: str = ""
    version: str = ""
    load: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    actors: Mapping[str, tuple[ActorSummary, int]] = field(default_factory=dict)
    providers: tuple[ProviderRecord, ...] = ()

    @classmethod
    def build(cls, host_id: str, generation: int, items: Mapping[str, Any]) -> HostRecord:
        """Assemble the record from one host's live (key, value) pairs, skipping bad values."""
        actors: dict[str, tuple[ActorSummary, int]] = {}
        providers: list[ProviderRecord] = []
        for key, value in items.items():
            if key.startswith(ACTOR_PREFIX):
                parsed = ActorSummary.from_value(value)
                if parsed is not None and parsed[1] > 0:
                    actors[parsed[0].id] = parsed
            elif key.startswith(PROVIDER_PREFIX):
                record = ProviderRecord.from_value(value)
                if record is not None:
                    providers.append(record)
        labels = items.get(LABELS_KEY)
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            labels = {}
        return cls(
            host_id,
            generation,
            _str(items.get(ADDR_KEY)) or "",
            _str(items.get(VERSION_KEY)) or "",
            load_of(items.get(LOAD_KEY)),
            dict(labels),
            actors,
            tuple(sorted(providers, key=lambda p: (p.id, p.link_name))),
        )


def load_of(value: Any) -> float:
    """A gossiped load value as a float; 0.0 when absent or malformed."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return 0.0
