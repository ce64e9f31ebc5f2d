"""Events the directory emits for the router, providers and the control plane.

Frozen, slotted dataclasses; drain them with ``Directory.next_event()``.
Local writes emit the same events as writes learned from peers, so a
consumer needs one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from meshhost.directory.codec import Value
from meshhost.directory.links import LinkDefinition

__all__ = [
    "ActorsChanged",
    "ClockSkewDetected",
    "ConfigChanged",
    "EntryChanged",
    "EntryRefused",
    "Event",
    "HostRemoved",
    "HostStateChanged",
    "LinkDeleted",
    "LinkPut",
    "PeerMisbehaved",
    "StoreFailed",
]


@dataclass(frozen=True, slots=True)
class HostStateChanged:
    """Keys of ``host_id``'s own state changed (added, updated or removed)."""

    host_id: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActorsChanged:
    """The set of actors or their instance counts on ``host_id`` changed."""

    host_id: str


@dataclass(frozen=True, slots=True)
class HostRemoved:
    """``host_id``'s state left the directory (it died, left, or restarted)."""

    host_id: str


@dataclass(frozen=True, slots=True)
class LinkPut:
    """A link definition was created or replaced."""

    link: LinkDefinition


@dataclass(frozen=True, slots=True)
class LinkDeleted:
    """The link (actor_id, contract_id, link_name) was deleted."""

    actor_id: str
    contract_id: str
    link_name: str


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """Config entry ``name`` was set (``value``) or deleted (``value`` None)."""

    name: str
    value: Value


@dataclass(frozen=True, slots=True)
class EntryChanged:
    """An entry of another namespace (e.g. ``manifest``) was set or deleted (None)."""

    ns: str
    key: str
    value: Value


@dataclass(frozen=True, slots=True)
class PeerMisbehaved:
    """``sender_id`` sent a directory message we could not decode; it was dropped."""

    sender_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class EntryRefused:
    """Lattice-wide entries ``sender_id`` passed on were refused (no valid operator
    signature or role, ``operators.md``); ``writer`` wrote the first of ``count``."""

    sender_id: str
    writer: str
    ns: str
    key: str
    count: int


@dataclass(frozen=True, slots=True)
class ClockSkewDetected:
    """A stamp written by ``writer`` (received from ``sender_id``) is ``ahead_ms`` in our future.

    The entry was merged (every host orders it the same way) but our clock
    did not follow it; fix the writer's clock (NTP).
    """

    sender_id: str
    writer: str
    ahead_ms: int


@dataclass(frozen=True, slots=True)
class StoreFailed:
    """Entries learned from a peer could not be written to the store (``reason`` says why).

    They are merged in memory; peers hold them too and resend them after a restart.
    """

    reason: str


Event: TypeAlias = (
    HostStateChanged
    | ActorsChanged
    | HostRemoved
    | LinkPut
    | LinkDeleted
    | ConfigChanged
    | EntryChanged
    | PeerMisbehaved
    | EntryRefused
    | ClockSkewDetected
    | StoreFailed
)
