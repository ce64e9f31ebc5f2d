"""What the control ops read and change of a running host: the protocol the host satisfies.

The control API sits below the host (which composes it) in the layers
(docs/architecture.md), so it names here what it uses of the host instead of
importing it, and :class:`meshhost.host.Host` satisfies the protocol
structurally (mypy checks that where the host hands itself over). It extends
:class:`~meshhost.monitor.source.MonitoredHost`: the ``metrics`` op hands the
same host to the monitor.

Parts are read-only properties: the control ops exist only once the host
built its parts, so none of them is ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from meshhost.monitor.source import MonitoredHost

if TYPE_CHECKING:
    from meshhost.actorhost import ActorHost
    from meshhost.apps.ops import AppOps
    from meshhost.control.authz import Authorizer
    from meshhost.control.security import LatticeSecurity
    from meshhost.diskwriter import DiskWriter
    from meshhost.membership import Member

__all__ = ["ControlledHost"]


class ControlledHost(MonitoredHost, Protocol):
    """A running host as the control ops (``hostops``, ``keyops``) use it."""

    @property
    def actors(self) -> ActorHost: ...
    @property
    def app_ops(self) -> AppOps: ...
    @property
    def authorizer(self) -> Authorizer: ...
    @property
    def security(self) -> LatticeSecurity: ...
    @property
    def writer(self) -> DiskWriter: ...
    @property
    def secret_path(self) -> Path | None: ...
    @property
    def labels(self) -> dict[str, str]: ...
    def members(self) -> list[Member]: ...
    def publish_event(self, event: object) -> None: ...
    async def send_to_host(
        self, host_id: str, channel: int, payload: bytes, timeout_s: float
    ) -> bytes: ...
    async def shutdown(self) -> None: ...
    def stop_soon(self) -> None: ...
    def add_secret(self, secret: bytes) -> None: ...
    def make_primary(self, secret: bytes) -> None: ...
    def remove_secret(self, secret: bytes) -> None: ...
    def save_secrets(self, secrets: Sequence[bytes] | None = None) -> bool: ...
