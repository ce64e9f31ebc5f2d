"""Discovery: find candidate peers and propose them to membership.

Sources (mDNS, static seeds) implement :class:`Discovery`: ``serve(propose)``
runs until cancelled and calls ``propose(addrs)`` with membership addresses
worth trying.  Discovery never declares anyone dead; membership decides
liveness.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from meshhost.discovery.mdns import DEFAULT_SERVICE_TYPE, MdnsDiscovery, MdnsStats
from meshhost.discovery.seeds import StaticSeeds, parse_seed

__all__ = [
    "DEFAULT_SERVICE_TYPE",
    "Discovery",
    "MdnsDiscovery",
    "MdnsStats",
    "Propose",
    "StaticSeeds",
    "parse_seed",
]

Propose = Callable[[Sequence[tuple[str, int]]], None]


class Discovery(Protocol):
    """A source of candidate peers."""

    async def serve(self, propose: Propose, *, task_status: Any = ...) -> None:
        """Call ``propose`` with addresses to try, until cancelled."""
