"""What monitoring reads of a running host: the protocol the host satisfies.

The monitor sits below the host, the control API, apps and the actor host in
the layers (docs/architecture.md), yet reads all of them: so it names here,
as protocols, exactly what it reads, and :class:`meshhost.host.Host`
satisfies them structurally (mypy checks that where the host hands itself
over). Types of lower layers are used as they are; the parts of layers above
(the actor host, the control API, the app ops, the host's options) are
described by the few members read.

Every member is a read-only property, so a host may hold a part as optional
(``X | None``) or always present (``X``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import trio
    from prometheus_client import CollectorRegistry

    from meshhost.capabilities import Dispatcher, HttpServerProvider, MessagingProvider
    from meshhost.config import HostConfig
    from meshhost.directory import Directory
    from meshhost.directory.driver import DirectoryDriver
    from meshhost.identity.keyring import Keyring
    from meshhost.membership import Swim
    from meshhost.membership.udp import MembershipDriver
    from meshhost.runtime import Runtime
    from meshhost.transport import Transport

__all__ = [
    "AppOpsView",
    "ControlView",
    "EventsView",
    "MetricsView",
    "MonitorOptions",
    "MonitoredActors",
    "MonitoredHost",
]


class MonitoredActors(Protocol):
    """What monitoring reads of the actor host (``meshhost.actorhost.ActorHost``)."""

    @property
    def runtime(self) -> Runtime: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def httpserver(self) -> HttpServerProvider: ...
    @property
    def messaging(self) -> MessagingProvider: ...
    @property
    def faults(self) -> Mapping[tuple[str, str], int]: ...
    @property
    def in_flight(self) -> int: ...
    def inventory(self) -> dict[str, Any]: ...


class ControlView(Protocol):
    """The control ops (``meshhost.control.hostops.HostControl``): readiness probes them."""

    async def dispatch(self, op: str, args: Mapping[str, Any]) -> Any: ...


class AppOpsView(Protocol):
    """The application ops (``meshhost.apps.ops.AppOps``): the dashboard lists apps."""

    def dispatch(self, op: str, args: Mapping[str, Any]) -> Any: ...


class MetricsView(Protocol):
    """The host's counters (``meshhost.monitor.metrics.HostMetrics``); a protocol
    here so that the metrics module, which reads the host, is not imported by it."""

    @property
    def registry(self) -> CollectorRegistry: ...
    def recent_figures(self) -> dict[str, dict[str, Any]]: ...


class EventsView(Protocol):
    """The host's recent events (``meshhost.monitor.snapshot.RecentEvents``)."""

    def add(self, event: Mapping[str, Any]) -> None: ...
    def list(self) -> list[dict[str, Any]]: ...


class MonitorOptions(Protocol):
    """Where the host serves ``/metrics`` and the dashboard (``HostOptions``)."""

    @property
    def metrics_address(self) -> tuple[str, int] | None: ...
    @property
    def dashboard_address(self) -> tuple[str, int] | None: ...


class MonitoredHost(Protocol):
    """A running host as monitoring reads it (``meshhost.host.Host``)."""

    @property
    def host_id(self) -> str: ...
    @property
    def config(self) -> HostConfig: ...
    @property
    def options(self) -> MonitorOptions: ...
    @property
    def keyring(self) -> Keyring: ...
    @property
    def built(self) -> bool:
        """True once the host built its parts (before that, reading one raises
        ``HostNotServing``)."""
        ...

    @property
    def core(self) -> Swim: ...
    @property
    def membership(self) -> MembershipDriver: ...
    @property
    def transport(self) -> Transport: ...
    @property
    def directory(self) -> Directory: ...
    @property
    def directory_driver(self) -> DirectoryDriver: ...
    @property
    def actors(self) -> MonitoredActors: ...
    @property
    def control(self) -> ControlView: ...
    @property
    def app_ops(self) -> AppOpsView: ...
    @property
    def monitor(self) -> MetricsView | None: ...
    @property
    def recent_events(self) -> EventsView | None: ...
    def status(self) -> dict[str, Any]: ...
    def alive_ids(self) -> set[str]: ...
    def subscribe(self) -> trio.MemoryReceiveChannel[object]: ...
    async def control_request(
        self, host_id: str, op: str, args: Mapping[str, Any], timeout_s: float
    ) -> Any:
        """Ask member ``host_id`` for control op ``op``; its result, or a MeshError."""
        ...
