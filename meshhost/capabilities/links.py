"""The host's current link table, read by guests on worker threads.

:class:`LinkTable` is the host's view of the link definitions the directory
holds (:mod:`meshhost.directory.links` defines the record).  It is read on
guest worker threads and written on the trio thread, so every access takes
a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from meshhost.directory.links import (
    DEFAULT_LINK_NAME,
    MAX_LINK_VALUES,
    LinkDefinition,
    LinkKey,
    normalize_link_name,
)

__all__ = [
    "DEFAULT_LINK_NAME",
    "MAX_LINK_VALUES",
    "LinkDefinition",
    "LinkKey",
    "LinkTable",
    "normalize_link_name",
]


class LinkTable:
    """Thread-safe set of link definitions keyed by (actor id, contract id, link name)."""

    def __init__(self, links: Iterable[LinkDefinition] = ()) -> None:
        self._lock = threading.Lock()
        self._links: dict[LinkKey, LinkDefinition] = {}
        for link in links:
            self._links[link.key] = link

    def put(self, link: LinkDefinition) -> LinkDefinition | None:
        """Add or replace a link; returns the link it replaced, if any."""
        with self._lock:
            previous = self._links.get(link.key)
            self._links[link.key] = link
            return previous

    def delete(self, actor_id: str, contract_id: str, link_name: str) -> LinkDefinition | None:
        """Remove a link; returns it, or None if there was none."""
        with self._lock:
            return self._links.pop((actor_id, contract_id, normalize_link_name(link_name)), None)

    def get(self, actor_id: str, contract_id: str, link_name: str) -> LinkDefinition | None:
        with self._lock:
            return self._links.get((actor_id, contract_id, normalize_link_name(link_name)))

    def for_contract(self, contract_id: str) -> list[LinkDefinition]:
        with self._lock:
            return [link for link in self._links.values() if link.contract_id == contract_id]

    def snapshot(self) -> list[LinkDefinition]:
        with self._lock:
            return list(self._links.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._links)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._links
