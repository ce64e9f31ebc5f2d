"""The lattice directory: who runs what where, links, config and manifests.

Sans-IO core (:class:`Directory`, the SWIM delegate) plus its durable store
(:class:`FileStore`).  See ``proto/spec/directory.md`` for the wire format,
merge rules and file format.
"""

from meshhost.directory.events import (
    ActorsChanged,
    ClockSkewDetected,
    ConfigChanged,
    EntryChanged,
    EntryRefused,
    Event,
    HostRemoved,
    HostStateChanged,
    LinkDeleted,
    LinkPut,
    PeerMisbehaved,
    StoreFailed,
)
from meshhost.directory.hlc import MAX_DRIFT_MS, HybridClock, Stamp
from meshhost.directory.links import link_key
from meshhost.directory.records import ActorLocation, ActorSummary, HostRecord, ProviderRecord
from meshhost.directory.staging import Staging
from meshhost.directory.state import CONFIG_NS, LINK_NS, MANIFEST_NS, Directory, DirectoryConfig
from meshhost.directory.store import EntryStore, FileStore, MemoryStore

__all__ = [
    "CONFIG_NS",
    "LINK_NS",
    "MANIFEST_NS",
    "MAX_DRIFT_MS",
    "ActorLocation",
    "ActorSummary",
    "ActorsChanged",
    "ClockSkewDetected",
    "ConfigChanged",
    "Directory",
    "DirectoryConfig",
    "EntryChanged",
    "EntryRefused",
    "EntryStore",
    "Event",
    "FileStore",
    "HostRecord",
    "HostRemoved",
    "HostStateChanged",
    "HybridClock",
    "LinkDeleted",
    "LinkPut",
    "MemoryStore",
    "PeerMisbehaved",
    "ProviderRecord",
    "Staging",
    "Stamp",
    "StoreFailed",
    "link_key",
]
