"""Every part of a serving host, built in one place before anything runs.

:func:`build_parts` binds the host's two sockets (UDP and TCP on one port
number) and constructs each part with what it depends on passed in: the
transport, the SWIM core and its UDP driver, the directory (loaded from the
data dir) with its driver, lattice security, the actor host, the reconciler
and app ops, the control ops, discovery.  Parts that call each other both
ways (the directory asks membership who is alive, membership carries the
directory's gossip) get a function that names the other, resolved when it
is first called, never a field set afterwards.  :meth:`meshhost.host.Host.serve`
then only starts them in its nursery; once built, a host's parts are never
``None``.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import trio

from meshhost import __version__
from meshhost.actorhost import ActorHost
from meshhost.apps.manifest import actor_id_from_claims
from meshhost.apps.ops import AppOps
from meshhost.apps.reconcile_loop import ReconcileDriver
from meshhost.capabilities import ActorCallMode, PolicyConfig
from meshhost.config import HostConfig, check_ipv4
from meshhost.control.api import handle_request as answer_control_request
from meshhost.control.hostops import HostControl
from meshhost.control.security import LatticeSecurity
from meshhost.control.source import ControlledHost
from meshhost.directory import Directory, FileStore
from meshhost.directory.codec import LwwEntry
from meshhost.directory.driver import DirectoryDriver
from meshhost.discovery import DEFAULT_SERVICE_TYPE, MdnsDiscovery, StaticSeeds
from meshhost.discovery.mdns import local_ipv4_addresses
from meshhost.diskwriter import DiskWriter
from meshhost.errors import ConfigError, UnknownChannel
from meshhost.identity import nkeys
from meshhost.membership import Swim
from meshhost.membership.udp import MembershipDriver, wall_clock_offset
from meshhost.monitor import HostMetrics
from meshhost.transport import Transport, channels

__all__ = [
    "BIND_ATTEMPTS",
    "ChannelHandler",
    "HostOptions",
    "HostParts",
    "Recipe",
    "advertise_address",
    "build_parts",
    "default_route_ipv4",
    "open_directory",
]

log = logging.getLogger(__name__)

BIND_ATTEMPTS = 16
"""Port 0: tries to find a number free for both UDP and TCP."""

ChannelHandler = Callable[[str, bytes], Awaitable[bytes]]
"""``async (peer_id, payload) -> reply`` for one transport channel."""


@dataclass(slots=True)
class HostOptions:
    """Settings outside :class:`HostConfig` (process-level, not lattice-level)."""

    mdns_service_type: str = DEFAULT_SERVICE_TYPE
    """DNS-SD service type; tests use a private one like ``_mh-3f9a2c._udp.local.``."""
    mdns_interfaces: list[str] | None = None
    """Interfaces (IPv4 addresses) for mDNS; default: loopback for a loopback host, else all."""
    advertise_host: str | None = None
    """Address peers reach us at; default: the bind address if not 0.0.0.0, else the
    source address of the default route, else the first non-loopback (then loopback)
    IPv4 address; none at all is a ConfigError."""
    mdns_announce_interval_s: float = 60.0
    """Re-announce period (also heals discovery after partitions)."""
    monitor: bool = True
    """Count calls, runs and requests for ``meshhost metrics``/``top`` (off: only the
    layers' own counters exist, nobody can ask for them; benchmarks compare the two)."""
    metrics_address: tuple[str, int] | None = None
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` there (needs ``monitor``)."""
    dashboard_address: tuple[str, int] | None = None
    """Serve the live web dashboard there (meshhost.monitor.dashboard)."""
    join_patience_s: float | None = None
    """With no peer after this long, publish a ``join_trouble`` event saying why
    (``meshhost up``: :data:`JOIN_PATIENCE_S`); None: never (embedders and tests
    that read events get only the ones they expect)."""
    otlp_url: str | None = None
    """Send this host's spans to the OpenTelemetry collector at this OTLP/HTTP traces
    endpoint (meshhost.monitor.otlp; needs the otel extra); None: spans stay local."""

    def __post_init__(self) -> None:
        if self.advertise_host is not None:
            check_ipv4(self.advertise_host, "advertised address (--advertise)")


class Recipe(ControlledHost, Protocol):
    """What :func:`build_parts` reads of the host it builds (``meshhost.host.Host``),
    besides what the control ops read of it (the control ops are one of its parts)."""

    @property
    def options(self) -> HostOptions: ...
    @property
    def identity(self) -> nkeys.KeyPair: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def rng(self) -> random.Random: ...
    @property
    def bootstrap_admins(self) -> tuple[str, ...]: ...
    @property
    def meta(self) -> bytes: ...
    @property
    def handlers(self) -> Mapping[int, ChannelHandler]: ...
    @property
    def monitor(self) -> HostMetrics | None: ...


@dataclass(frozen=True, slots=True)
class HostParts:
    """The parts of one serving host (see the module docstring)."""

    addr: tuple[str, int]
    """The membership (and transport) address peers use."""
    udp: trio.socket.SocketType
    listener: trio.SocketListener
    transport: Transport
    core: Swim
    membership: MembershipDriver
    store: FileStore
    directory: Directory
    security: LatticeSecurity
    actors: ActorHost
    directory_driver: DirectoryDriver
    reconcile_driver: ReconcileDriver
    app_ops: AppOps
    control: HostControl
    handlers: Mapping[int, ChannelHandler]
    """Transport channel -> handler: the layers' and the embedder's (``Host.handlers``)."""
    mdns: MdnsDiscovery | None
    """None when the configuration turns mDNS off."""
    seeds: StaticSeeds | None
    """None when the configuration names no seeds."""

    def close_sockets(self) -> None:
        """Close what :func:`build_parts` bound (for a host that never ran)."""
        self.udp.close()
        self.listener.socket.close()


def open_directory(
    host_id: str,
    data_dir: Path,
    writer: DiskWriter,
    *,
    lattice: str,
    bootstrap_admins: tuple[str, ...],
    allowed_issuers: tuple[str, ...],
    is_live: Callable[[str], bool],
    member_count: Callable[[], int],
) -> tuple[FileStore, Directory, LatticeSecurity]:
    """The directory with its persisted links, config and manifests, and lattice security.

    Blocking (it reads the log, and may cut a torn line off and fsync it):
    call it on a thread.
    """
    store = FileStore(data_dir / "directory", writer)
    security: LatticeSecurity | None = None

    def admit(entry: LwwEntry) -> bool:
        assert security is not None  # built below, before any peer can send an entry
        return security.admit(entry)

    directory = Directory(
        host_id,
        clock=time.time,
        store=store,
        is_live=is_live,
        member_count=member_count,
        admit=admit,
    )
    security = LatticeSecurity(lattice, bootstrap_admins, directory, allowed_issuers)
    # entries from disk pass the same check as a peer's (a log written while
    # the lattice was open, or by hand, must not bypass the operators)
    security.revalidate()
    return store, directory, security


def default_route_ipv4() -> str | None:
    """The local address of the default route, or None (no route: e.g. a bare namespace).

    Connecting a UDP socket sends nothing; it only asks the kernel which
    source address it would use, which beats guessing among interfaces
    (docker bridges, VPNs).
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
        addr = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if ipaddress.IPv4Address(addr).is_unspecified else addr


def advertise_address(config: HostConfig, options: HostOptions) -> str:
    """The address peers reach a host at (see ``HostOptions.advertise_host``).

    Raises ConfigError when no interface has an IPv4 address.
    """
    if options.advertise_host:
        return options.advertise_host
    bind = config.bind
    if not ipaddress.IPv4Address(bind).is_unspecified:
        return bind
    routed = default_route_ipv4()
    if routed is not None:
        return routed
    candidates = local_ipv4_addresses()
    if not candidates:
        raise ConfigError(
            "no usable network interface: no interface has an IPv4 address, not even "
            "loopback (a new network namespace starts with `lo` down); bring one up "
            "(`ip link set lo up` is enough for hosts on one machine)"
        )
    if len(candidates) > 1:
        # A guess peers may not be able to reach: say so, or the lattice just never forms.
        log.warning(
            "no default route to tell which of this machine's addresses (%s) its "
            "peers reach; advertising %s; if they cannot, give the right one with "
            "--advertise ADDRESS",
            ", ".join(candidates),
            candidates[0],
        )
    return candidates[0]


async def bind_sockets(
    bind: str, port: int
) -> tuple[trio.socket.SocketType, trio.SocketListener, int]:
    """A UDP socket and a TCP listener on one port number (``port`` 0: any free one).

    Raises ConfigError naming the address when either cannot be bound.
    """
    for _attempt in range(BIND_ATTEMPTS):
        udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        try:
            await udp.bind((bind, port))
        except OSError as exc:
            udp.close()
            raise ConfigError(f"cannot bind UDP {bind}:{port}: {exc.strerror}") from None
        number = udp.getsockname()[1]
        try:
            listeners = await trio.open_tcp_listeners(number, host=bind)
        except OSError as exc:
            udp.close()
            if exc.errno == errno.EADDRINUSE and port == 0:
                continue  # the UDP port's TCP twin is taken; try another number
            raise ConfigError(f"cannot listen on TCP {bind}:{number}: {exc.strerror}") from None
        for extra in listeners[1:]:
            await extra.aclose()
        return udp, listeners[0], number
    raise ConfigError(f"no port free for both UDP and TCP after {BIND_ATTEMPTS} tries")


async def build_parts(host: Recipe) -> HostParts:
    """Bind the sockets and build every part of ``host``; nothing runs yet.

    Raises ConfigError when a socket cannot be bound; the directory's errors
    (a damaged log) as they are.
    """
    config = host.config
    offset = wall_clock_offset()
    udp, listener, port = await bind_sockets(config.bind, config.port)
    try:
        addr = (advertise_address(host.config, host.options), port)
        return await _build(host, udp, listener, addr, offset)
    except BaseException:
        udp.close()
        listener.socket.close()
        raise


async def _build(
    host: Recipe,
    udp: trio.socket.SocketType,
    listener: trio.SocketListener,
    addr: tuple[str, int],
    offset: float,
) -> HostParts:
    config, options, rng = host.config, host.options, host.rng
    handlers: dict[int, ChannelHandler] = {}

    async def handle_request(peer_id: str, channel: int, payload: bytes) -> bytes:
        handler = handlers.get(channel)
        if handler is None:
            raise UnknownChannel(f"this host serves no transport channel {channel}")
        return await handler(peer_id, payload)

    transport = Transport(
        host.identity, config.lattice, host.keyring.noise_psks(), config.transport, handle_request
    )
    # The directory and the SWIM core need each other: the core carries the
    # directory's gossip, the directory asks the core who is alive.
    core: Swim | None = None

    def live_ids() -> set[str]:
        assert core is not None  # built right after the directory, before anything runs
        return core.live_ids()

    store, directory, security = await trio.to_thread.run_sync(
        lambda: open_directory(
            host.host_id,
            host.data_dir,
            host.writer,
            lattice=config.lattice,
            bootstrap_admins=host.bootstrap_admins,
            allowed_issuers=config.allowed_issuers,
            is_live=lambda host_id: host_id in live_ids(),
            member_count=lambda: max(1, len(live_ids())),
        )
    )
    core = Swim(
        host.identity,
        addr,
        config.membership,
        rng,
        trio.current_time() + offset,
        meta=host.meta,
        delegate=directory,
    )
    membership = MembershipDriver(
        core, host.keyring, config.membership, transport=transport, clock_offset=offset, sock=udp
    )
    directory.set_address(f"{addr[0]}:{addr[1]}")
    directory.set_labels(host.labels)
    directory.set_version(__version__)
    directory_driver: DirectoryDriver | None = None
    reconcile_driver: ReconcileDriver | None = None

    async def refresh(timeout_s: float) -> None:
        assert directory_driver is not None  # built below, before any call runs
        await directory_driver.pull_some(timeout_s)

    actors = ActorHost(
        host_id=host.host_id,
        lattice=config.lattice,
        data_dir=host.data_dir,
        directory=directory,
        send=host.send_to_host,
        is_live=core.is_live,
        rng=rng,
        policy=PolicyConfig(actor_calls=ActorCallMode(config.actor_calls)),
        allowed_issuers=config.allowed_issuers,
        limit_defaults=config.actor_limits,
        on_event=host.publish_event,
        observer=host.monitor,
        admission=security.check_actor,
        refresh=refresh,
    )

    def poke_reconciler() -> None:
        assert reconcile_driver is not None  # built below, before the driver runs
        reconcile_driver.poke()

    directory_driver = DirectoryDriver(
        directory,
        links=actors,
        send=host.send_to_host,
        emit=host.publish_event,
        load=lambda: float(actors.in_flight),
        forget_host=actors.router.forget,
        live_ids=core.live_ids,
        rng=random.Random(rng.getrandbits(64)),
        on_synced=poke_reconciler,
    )
    synced_driver = directory_driver
    reconcile_driver = ReconcileDriver(
        host.host_id,
        directory,
        actors,
        members=core.members,
        live_ids=core.live_ids,
        send=host.send_to_host,
        emit=host.publish_event,
        synced=lambda: synced_driver.synced,
    )

    def store_module(digest: str, module: bytes) -> None:
        actors.modules.put(module)  # AppOps checked the digest

    app_ops = AppOps(
        directory,
        members=reconcile_driver.views,
        running=lambda: {host.host_id: actors.managed_running()},
        store_module=store_module,
        has_module=lambda digest: actors.modules.get(digest) is not None,
        inspect_image=actor_id_from_claims,
    )
    control = HostControl(host)

    async def control_from_peer(peer_id: str, data: bytes) -> bytes:
        return await answer_control_request(data, control.dispatch_from_peer)

    handlers.update(host.handlers)  # the embedder's own channels (benchmarks)
    handlers[channels.PUSH_PULL] = membership.handle_push_pull
    handlers[channels.INVOCATION] = actors.invoker.handle
    handlers[channels.PEER] = actors.peer_ops().handle
    handlers[channels.DIRECTORY_SYNC] = directory_driver.handle_sync
    handlers[channels.CONTROL] = control_from_peer
    mdns = (
        MdnsDiscovery(
            host_id=host.host_id,
            addr=addr,
            keyring=host.keyring,
            service_type=options.mdns_service_type,
            interfaces=options.mdns_interfaces,
            announce_interval_s=options.mdns_announce_interval_s,
        )
        if config.mdns
        else None
    )
    seeds = (
        StaticSeeds(config.seeds, interval_s=max(config.membership.reconnect_interval_s, 5.0))
        if config.seeds
        else None
    )
    return HostParts(
        addr=addr,
        udp=udp,
        listener=listener,
        transport=transport,
        core=core,
        membership=membership,
        store=store,
        directory=directory,
        security=security,
        actors=actors,
        directory_driver=directory_driver,
        reconcile_driver=reconcile_driver,
        app_ops=app_ops,
        control=control,
        handlers=handlers,
        mdns=mdns,
        seeds=seeds,
    )
