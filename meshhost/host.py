"""A meshhost host: every layer of one lattice member in one trio nursery.

Composition (one nursery, started by :meth:`Host.serve`)::

    transport   Noise-over-TCP listener on port P         channels 1-4 below
    membership  SWIM core + sealed UDP driver on port P    (same number as TCP)
    directory   the SWIM delegate: actor locations, links, config, manifests
                (+ digest pulls on channel 4, persisted in the data dir)
    actors      runtime + providers + router (invocations on channel 1)
    discovery   mDNS and/or static seeds -> membership.join (proposals only)
    control     the local CLI's Unix socket, and channel 3 for peers
    events      membership, directory and actor events -> subscribers

State on disk (see :mod:`meshhost.datadir`): the host key ``host.seed``
(created with mode 0600 on first start), unless given the lattice secret
``lattice.secret``, the directory's log (``directory/``), compiled and
stored modules (``modules/``) and key-value data (``kv/``).  A lock file
(``host.lock``, ``flock``) keeps two processes off one data directory; the
kernel drops it when a process dies, so a host restarts cleanly after
``kill -9``.

Shutdown: :meth:`Host.shutdown` refuses new calls from peers (they fail over
to other hosts), lets calls in flight finish, announces a leave intent,
gives it a moment to spread, and cancels the nursery; the mDNS record is
withdrawn on the way out.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import trio

from meshhost import __version__
from meshhost.actorhost import ActorHost
from meshhost.apps.manifest import actor_id_from_claims
from meshhost.apps.ops import AppOps
from meshhost.apps.reconcile_loop import ReconcileDriver
from meshhost.capabilities import ActorCallMode, PolicyConfig
from meshhost.config import HostConfig, check_ipv4
from meshhost.control.api import decode_reply, encode_request, handle_request, serve_unix
from meshhost.control.authz import Authorizer
from meshhost.control.hostops import HostControl
from meshhost.control.security import SECURITY_NS, LatticeSecurity
from meshhost.datadir import (
    CONTROL_SOCKET,
    HOST_SEED,
    LATTICE_SECRET,
    check_private,
    default_data_dir,
    make_private_dir,
    write_private,
)
from meshhost.directory import Directory, FileStore
from meshhost.directory.driver import DirectoryDriver
from meshhost.discovery import DEFAULT_SERVICE_TYPE, MdnsDiscovery, StaticSeeds
from meshhost.discovery.diagnose import join_trouble
from meshhost.discovery.mdns import local_ipv4_addresses
from meshhost.diskwriter import DiskWriter
from meshhost.errors import (
    ConfigError,
    DecodeError,
    HostBusy,
    HostUnreachable,
    KeyringError,
    NkeyError,
    PeerMismatch,
    PeerUnavailable,
    RemoteError,
    RemoteInvocationError,
    RequestTimeout,
    SessionClosed,
    TransportClosed,
    UnknownChannel,
)
from meshhost.identity import nkeys, short_id
from meshhost.identity.keyring import Keyring, encode_secret, load_secrets, read_secret_file
from meshhost.identity.operators import bootstrap_admins
from meshhost.membership import (
    Member,
    MemberAlive,
    MemberDead,
    MemberJoined,
    MemberLeft,
    MemberState,
    Swim,
)
from meshhost.membership.messages import MAX_META_BYTES
from meshhost.membership.udp import MembershipDriver, wall_clock_offset
from meshhost.monitor import HostMetrics, RecentEvents
from meshhost.monitor.events import event_to_dict
from meshhost.transport import Transport, channels
from meshhost.wire import Limits, Reader

log = logging.getLogger(__name__)

__all__ = [
    "LOCK_FILE",
    "ChannelHandler",
    "Host",
    "load_identity",
    "load_keyring",
]

LOCK_FILE = "host.lock"
BIND_ATTEMPTS = 16
"""Port 0: tries to find a number free for both UDP and TCP."""
LEAVE_GRACE_S = 1.0
"""How long a graceful shutdown lets the leave intent spread before closing."""
DRAIN_S = 5.0
"""How long a graceful shutdown lets calls in flight finish."""
JOIN_PATIENCE_S = 5.0
"""A host alone this long after start says why (seeds failing, no mDNS peer)."""
JOIN_CHECK_S = 1.0
"""How often a lone host looks again whether the reason changed."""
SUBSCRIBER_BUFFER = 1024
"""Events buffered per subscriber.  A subscriber that falls further behind
loses the newer events (counted in ``host.events_dropped``) rather than
slowing the host: publishing never waits for a subscriber."""

ChannelHandler = Callable[[str, bytes], Awaitable[bytes]]
"""``async (peer_id, payload) -> reply`` for one transport channel."""


def _warn_if_others_can_read(path: Path) -> None:
    """Log a warning when the lattice secret file is readable by other users
    (copied with a default umask, say): anyone who reads it joins the lattice."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return  # loading it already said what is wrong
    if mode & 0o077:
        log.warning(
            "the lattice secret file %s can be read by other users (mode %04o); "
            "anyone who reads it joins the lattice. Make it private: chmod 600 %s",
            path,
            mode,
            path,
        )


def load_identity(data_dir: Path) -> nkeys.KeyPair:
    """The host key from ``data_dir/host.seed``; created (0600) on first start."""
    path = data_dir / HOST_SEED
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8").strip()
            return nkeys.from_seed(text, nkeys.Prefix.SERVER)
        except OSError as exc:
            raise ConfigError(f"cannot read host key {path}: {exc.strerror}") from None
        except (UnicodeDecodeError, NkeyError) as exc:
            problem = "it is not text" if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise ConfigError(
                f"host key {path} is damaged ({problem}); restore it from a backup to keep "
                "this host's id, or move it aside and a new key (a new host id) is made"
            ) from None
    pair = nkeys.generate(nkeys.Prefix.SERVER, os.urandom)
    write_private(path, pair.encoded_seed + "\n")
    return pair


_SECRET_FILE_HEADER = (
    "# lattice secrets, the first is primary (rewritten by `meshhost lattice rotate`)"
)


def load_keyring(
    lattice: str, data_dir: Path, *, secret_file: Path | None = None, secret_text: str | None = None
) -> Keyring:
    """The lattice keyring: from ``secret_text``, else ``secret_file``, else the data dir.

    A file may hold several secrets (first = primary, see proto/spec/keyring.md).
    Raises ``LatticeSecretError`` for a malformed secret and ``KeyringError``
    when there is none at all.
    """
    if secret_text is not None:
        return Keyring.create(lattice, load_secrets(secret_text))
    path = secret_file if secret_file is not None else data_dir / LATTICE_SECRET
    try:
        return Keyring.create(lattice, read_secret_file(path))
    except FileNotFoundError:
        make = (
            f"meshhost lattice new --out {path}"
            if secret_file is not None
            else f"meshhost lattice new --install --data-dir {data_dir}"
        )
        raise KeyringError(
            f"no lattice secret: {path} does not exist. Create it with `{make}` "
            "(once, then copy it to every host), or pass --secret-file / set "
            "MESHHOST_LATTICE_SECRET"
        ) from None


def _read_text(path: Path | None) -> str:
    """The secret file's text for its ``# admin`` lines ('' when unreadable: the keyring
    loaded it a moment ago, so that is a race with an edit, not a missing file)."""
    try:
        return "" if path is None else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


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


def encode_meta(labels: dict[str, str]) -> bytes:
    """Host metadata gossiped with our alive message: ``{"labels": {...}}`` in msgpack."""
    meta: bytes = msgpack.packb({"labels": labels}, use_bin_type=True)
    if len(meta) > MAX_META_BYTES:
        raise ConfigError(f"labels take {len(meta)} bytes; at most {MAX_META_BYTES} fit")
    return meta


_META_WIRE = Reader(DecodeError)
_META_LIMITS = Limits(max_bytes=MAX_META_BYTES, max_str=MAX_META_BYTES)


def decode_meta(meta: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_meta`: ``{"labels": {text: text}}``.

    Metadata comes from peers (maybe another version, maybe buggy): anything
    malformed decodes to ``{}`` and labels that are not text to text are dropped.
    """
    if not meta:
        return {}
    try:
        value = _META_WIRE.unpack(meta, _META_LIMITS, "host metadata")
    except DecodeError:
        return {}
    labels = value.get("labels") if isinstance(value, dict) else None
    if not isinstance(labels, dict):
        return {}
    text = {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}
    return {"labels": text}


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


class Host:
    """One meshhost host. Build with :meth:`open`, run with ``nursery.start(host.serve)``."""

    def __init__(
        self,
        config: HostConfig,
        *,
        identity: nkeys.KeyPair,
        keyring: Keyring,
        data_dir: Path,
        options: HostOptions | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.host_id = identity.public_key
        self.keyring = keyring
        self.data_dir = data_dir
        self.secret_path: Path | None = None
        """The secret file a rotation rewrites (None: the secret came from the
        environment, and a restart brings back whatever is there)."""
        self.options = options or HostOptions()
        self._rng = rng or random.Random(int.from_bytes(os.urandom(8), "big"))
        self.directory: Directory | None = None
        """The lattice directory (the membership delegate), once serving."""
        self.actors: ActorHost | None = None
        """Actors on this host and calls to actors anywhere, once serving."""
        self.directory_driver: DirectoryDriver | None = None
        self.reconcile_driver: ReconcileDriver | None = None
        self.app_ops: AppOps | None = None
        self._directory_store: FileStore | None = None
        self.writer = DiskWriter()
        """Every durable write of the serving host: a thread, group commit (diskwriter)."""
        self.handlers: dict[int, ChannelHandler] = {}
        """Transport channel -> handler; layers add theirs before :meth:`serve`."""
        self.core: Swim | None = None
        self.membership: MembershipDriver | None = None
        self.transport: Transport | None = None
        self.mdns: MdnsDiscovery | None = None
        self.seeds: StaticSeeds | None = None
        self.addr: tuple[str, int] | None = None
        """The membership (and transport) address peers use, once serving."""
        self.events_dropped = 0
        self._subscribers: list[trio.MemorySendChannel[object]] = []
        self._nursery: trio.Nursery | None = None
        self._lock_fd: int | None = None
        self._failed_ids: set[str] = set()
        self._labels = dict(config.labels)
        self._meta = encode_meta(self._labels)
        self.control: HostControl | None = None
        """The control ops, once serving."""
        self.monitor: HostMetrics | None = None
        """This host's metrics registry and observer (None: not monitored)."""
        self.recent_events: RecentEvents | None = None
        if self.options.monitor:
            self.monitor = HostMetrics(self.host_id, config.lattice, self)
            self.recent_events = RecentEvents()
        self.metrics_addr: tuple[str, int] | None = None
        """Where ``/metrics`` is served, once serving (None: not served)."""
        self.dashboard_addr: tuple[str, int] | None = None
        """Where the web dashboard is served, once serving (None: not served)."""
        self.bootstrap_admins: tuple[str, ...] = ()
        """Admin keys trusted from the start (``# admin O…`` lines of the secret file)."""
        self.security: LatticeSecurity | None = None
        """Operators, lattice-wide issuer allow-list and revocations, once serving."""
        self.authorizer = Authorizer(config.lattice)

    @classmethod
    def open(
        cls,
        config: HostConfig,
        *,
        secret_file: Path | None = None,
        secret_text: str | None = None,
        options: HostOptions | None = None,
    ) -> Host:
        """Load (or create) the host key and the lattice keyring from the data dir."""
        data_dir = (
            Path(config.data_dir).expanduser()
            if config.data_dir
            else default_data_dir(config.lattice)
        )
        make_private_dir(data_dir)
        check_private(data_dir)
        identity = load_identity(data_dir)
        keyring = load_keyring(
            config.lattice, data_dir, secret_file=secret_file, secret_text=secret_text
        )
        secret_path = (
            None
            if secret_text is not None
            else (secret_file if secret_file is not None else data_dir / LATTICE_SECRET).absolute()
        )
        text = secret_text if secret_text is not None else _read_text(secret_path)
        if secret_path is not None:
            _warn_if_others_can_read(secret_path)
        host = cls(config, identity=identity, keyring=keyring, data_dir=data_dir, options=options)
        host.bootstrap_admins = tuple(bootstrap_admins(text))
        host.secret_path = secret_path
        return host

    # -- queries -------------------------------------------------------------

    async def _watch_join(self, patience_s: float) -> None:
        """Until the first peer is seen: after ``patience_s`` alone, publish
        ``{"kind": "join_trouble", "reason": ...}`` saying why (seed refused our
        handshake, no answer, no mDNS peer yet), and again whenever the reason
        changes. A host that has seen a peer once stops watching: losing peers
        later is what membership events report."""
        await trio.sleep(patience_s)
        said = None
        while len(self.alive_ids()) <= 1:
            assert self.membership is not None
            reason = join_trouble(
                self.seeds.seeds if self.seeds is not None else [],
                self.seeds.resolved if self.seeds is not None else {},
                self.membership.push_pull_errors,
                mdns=self.config.mdns,
                mdns_service_type=self.options.mdns_service_type,
                addr=self.addr,
            )
            if reason != said:
                said = reason
                self.publish_event({"kind": "join_trouble", "reason": reason})
            await trio.sleep(JOIN_CHECK_S)

    def members(self) -> list[Member]:
        """Every host membership knows (ourselves included), any state."""
        return [] if self.core is None else self.core.members()

    def alive_ids(self) -> set[str]:
        """Ids of hosts alive or suspect, ourselves included."""
        return set() if self.core is None else self.core.live_ids()

    def status(self) -> dict[str, Any]:
        """A JSON-able snapshot: who we are and whom we see."""
        members = sorted(self.members(), key=lambda m: m.id)
        return {
            "host_id": self.host_id,
            "lattice": self.config.lattice,
            "addr": list(self.addr) if self.addr else None,
            "metrics_addr": list(self.metrics_addr) if self.metrics_addr else None,
            "dashboard_addr": list(self.dashboard_addr) if self.dashboard_addr else None,
            "members": [
                {
                    "id": m.id,
                    "addr": f"{m.addr[0]}:{m.addr[1]}",
                    "state": m.state.name.lower(),
                    "incarnation": m.incarnation,
                    "labels": decode_meta(m.meta).get("labels", {}),
                }
                for m in members
            ],
            "alive": sum(1 for m in members if m.state == MemberState.ALIVE),
            "stats": self.stats(),
        }

    def stats(self) -> dict[str, int]:
        """Counters of every layer, flattened (``udp.*``, ``seal.*``, ``swim.*``, ...)."""
        out: dict[str, int] = {"host.events_dropped": self.events_dropped}
        if self.membership is not None:
            for name in self.membership.stats.__slots__:
                out[f"udp.{name}"] = getattr(self.membership.stats, name)
        ks = self.keyring.stats
        for name in ks.__slots__:
            out[f"seal.{name}"] = getattr(ks, name)
        if self.core is not None:
            out.update({f"swim.{k}": v for k, v in self.core.stats.items()})
        if self.mdns is not None:
            for name in self.mdns.stats.__slots__:
                out[f"mdns.{name}"] = getattr(self.mdns.stats, name)
        if self.transport is not None:
            out.update({f"transport.{k}": v for k, v in self.transport.stats.items()})
        if self.directory is not None:
            out["directory.bad_messages"] = self.directory.bad_messages
            out["directory.refused_entries"] = self.directory.refused_entries
            out["directory.events_dropped"] = self.directory.events_dropped
        if self.directory_driver is not None:
            out["directory.pulls"] = self.directory_driver.pulls
            out["directory.pull_failures"] = self.directory_driver.pull_failures
        if self.actors is not None:
            out["actors.in_flight"] = self.actors.in_flight
        return out

    def subscribe(self, buffer: int = SUBSCRIBER_BUFFER) -> trio.MemoryReceiveChannel[object]:
        """A channel of host events from now on.

        Lossy if not drained: beyond ``buffer`` unread events the newer ones
        are dropped and counted.  Closing the channel unsubscribes (the host
        notices at the next event).
        """
        send, receive = trio.open_memory_channel[object](buffer)
        self._subscribers.append(send)
        return receive

    @property
    def labels(self) -> dict[str, str]:
        """This host's labels (a copy)."""
        return dict(self._labels)

    def set_labels(self, labels: dict[str, str]) -> None:
        """Replace this host's labels; membership gossips them with a new incarnation.

        Raises ``ConfigError`` if they do not fit in the metadata limit.
        """
        meta = encode_meta(dict(labels))
        self._labels, self._meta = dict(labels), meta
        if self.membership is not None:
            self.membership.update_meta(meta)
        if self.directory is not None:
            self.directory.set_labels(self._labels)

    # -- key rotation ---------------------------------------------------------

    def add_secret(self, secret: bytes) -> None:
        """Rotation step 1 (on every host): accept packets sealed with ``secret``."""
        self.keyring.add(secret)
        self._sync_transport_psks()

    def make_primary(self, secret: bytes) -> None:
        """Rotation step 2 (on every host): seal with ``secret``; mDNS announces its tag."""
        self.keyring.make_primary(secret)
        self._sync_transport_psks()
        if self.mdns is not None:
            self.mdns.reannounce()

    def remove_secret(self, secret: bytes) -> None:
        """Rotation step 3 (on every host): stop accepting ``secret``."""
        self.keyring.remove(secret)
        self._sync_transport_psks()

    def save_secrets(self, secrets: Sequence[bytes] | None = None) -> bool:
        """Write ``secrets`` (default: the keyring's, primary first) to
        :attr:`secret_path` (0600, atomically), so a restart keeps what a
        rotation installed; False when there is no file.

        Comment lines of the file (``#``, e.g. the ``# admin O...`` lines that
        name bootstrap operators) are kept, after the secrets.  Raises
        ``KeyringError`` naming the file when it cannot be written.
        """
        if self.secret_path is None:
            return False
        secrets = self.keyring.secrets if secrets is None else secrets
        try:
            kept = [
                line
                for line in self.secret_path.read_text(encoding="utf-8").splitlines()
                if line.strip().startswith("#") and line.strip() != _SECRET_FILE_HEADER
            ]
        except (OSError, UnicodeDecodeError):
            kept = []  # nothing readable to keep; the write below says what is wrong
        text = _SECRET_FILE_HEADER + "\n"
        text += "".join(encode_secret(s) + "\n" for s in secrets)
        text += "".join(line + "\n" for line in kept)
        try:
            write_private(self.secret_path, text)
        except OSError as exc:
            raise KeyringError(
                f"cannot write lattice secret file {self.secret_path}: {exc.strerror or exc}"
            ) from None
        return True

    def _sync_transport_psks(self) -> None:
        """New Noise handshakes dial with the primary and accept every secret."""
        if self.transport is not None:
            self.transport.set_psks(self.keyring.noise_psks())

    # -- running --------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled or :meth:`shutdown`. ``task_status`` gets our address."""
        self._lock()
        self.writer.start()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                # loading may cut a torn line off the log and fsync it: not on the event loop
                self.directory = await trio.to_thread.run_sync(self._open_directory)
                await self._start_transport_and_membership(nursery)
                assert self.membership is not None and self.addr is not None
                await self._start_actors(nursery)
                nursery.start_soon(self._fan_out_events)
                if self.config.mdns:
                    self.mdns = MdnsDiscovery(
                        host_id=self.host_id,
                        addr=self.addr,
                        keyring=self.keyring,
                        service_type=self.options.mdns_service_type,
                        interfaces=self.options.mdns_interfaces,
                        announce_interval_s=self.options.mdns_announce_interval_s,
                    )
                    await nursery.start(self.mdns.serve, self.membership.join)
                if self.config.seeds:
                    self.seeds = StaticSeeds(
                        self.config.seeds,
                        interval_s=max(self.config.membership.reconnect_interval_s, 5.0),
                    )
                    await nursery.start(self.seeds.serve, self.membership.join)
                await self._start_control(nursery)
                if self.options.join_patience_s is not None:
                    nursery.start_soon(self._watch_join, self.options.join_patience_s)
                if self.options.metrics_address is not None and self.monitor is not None:
                    from meshhost.monitor.http import serve_monitoring  # hypercorn: only if asked

                    self.metrics_addr = await nursery.start(
                        serve_monitoring, self, self.options.metrics_address
                    )
                if self.options.dashboard_address is not None:
                    from meshhost.monitor.dashboard import serve_dashboard

                    self.dashboard_addr = await nursery.start(
                        serve_dashboard, self, self.options.dashboard_address
                    )
                if self.options.otlp_url is not None and self.actors is not None:
                    from meshhost.monitor.otlp import export_spans  # opentelemetry: if asked

                    await nursery.start(
                        partial(
                            export_spans,
                            self.actors.spans,
                            self.options.otlp_url,
                            host_id=self.host_id,
                            lattice=self.config.lattice,
                        )
                    )
                task_status.started(self.addr)
        finally:
            self._nursery = None
            for send in self._subscribers:
                send.close()
            with trio.CancelScope(shield=True):  # what was queued reaches the disk
                await trio.to_thread.run_sync(self.writer.close)
            if self._directory_store is not None:
                self._directory_store.close()
                self._directory_store = None
            self._unlock()

    def _open_directory(self) -> Directory:
        """The directory with its persisted links, config and manifests."""
        self._directory_store = FileStore(self.data_dir / "directory", self.writer)
        directory = Directory(self.host_id, clock=time.time, store=self._directory_store)
        self.security = LatticeSecurity(
            self.config.lattice, self.bootstrap_admins, directory, self.config.allowed_issuers
        )
        directory.admit = self.security.admit
        # entries from disk pass the same check as a peer's (a log written while
        # the lattice was open, or by hand, must not bypass the operators)
        self.security.revalidate()
        return directory

    async def _start_actors(self, nursery: trio.Nursery) -> None:
        """Runtime, providers, router and the directory driver; channels 1 and 4."""
        directory, core = self.directory, self.core
        assert directory is not None and core is not None and self.addr is not None
        directory.attach_membership(
            is_live=lambda host_id: host_id in core.live_ids(),
            member_count=lambda: max(1, len(core.live_ids())),
        )
        directory.set_address(f"{self.addr[0]}:{self.addr[1]}")
        directory.set_labels(self._labels)
        directory.set_version(__version__)
        self.actors = ActorHost(
            host_id=self.host_id,
            lattice=self.config.lattice,
            data_dir=self.data_dir,
            directory=directory,
            send=self.send_to_host,
            is_live=core.is_live,
            rng=self._rng,
            policy=PolicyConfig(actor_calls=ActorCallMode(self.config.actor_calls)),
            allowed_issuers=self.config.allowed_issuers,
            limit_defaults=self.config.actor_limits,
            on_event=self.publish_event,
        )
        if self.monitor is not None:
            self.actors.set_observer(self.monitor)
        assert self.security is not None
        self.actors.admission = self.security.check_actor
        self.directory_driver = DirectoryDriver(
            directory,
            links=self.actors,
            send=self.send_to_host,
            emit=self.publish_event,
            load=lambda: float(self.actors.in_flight) if self.actors else 0.0,
            forget_host=self.actors.router.forget,
            live_ids=core.live_ids,
            rng=random.Random(self._rng.getrandbits(64)),
        )
        self.actors.invoker.refresh = self.directory_driver.pull_some
        self.handlers[channels.INVOCATION] = self.actors.invoker.handle
        self.handlers[channels.PEER] = self.actors.peer_ops().handle
        self.handlers[channels.DIRECTORY_SYNC] = self.directory_driver.handle_sync
        await nursery.start(self.actors.serve)
        await nursery.start(self.directory_driver.serve)
        await self._start_reconciler(nursery)

    async def _start_reconciler(self, nursery: trio.Nursery) -> None:
        """The leaderless reconciler and the application control ops."""
        directory, core, actors = self.directory, self.core, self.actors
        assert directory is not None and core is not None and actors is not None
        driver = self.reconcile_driver = ReconcileDriver(
            self.host_id,
            directory,
            actors,
            members=core.members,
            live_ids=core.live_ids,
            send=self.send_to_host,
            emit=self.publish_event,
            synced=lambda: self.directory_driver is not None and self.directory_driver.synced,
        )
        if self.directory_driver is not None:
            self.directory_driver.on_synced = driver.poke

        def store_module(digest: str, module: bytes) -> None:
            actors.modules.put(module)  # AppOps checked the digest

        self.app_ops = AppOps(
            directory,
            members=driver.views,
            running=lambda: {self.host_id: actors.managed_running()},
            store_module=store_module,
            has_module=lambda digest: actors.modules.get(digest) is not None,
            inspect_image=actor_id_from_claims,
        )
        await nursery.start(driver.serve)

    async def send_to_host(
        self, host_id: str, channel: int, payload: bytes, timeout_s: float
    ) -> bytes:
        """A request to the member ``host_id`` on ``channel``; returns its reply.

        Raises HostUnreachable when the host is unknown, cannot be reached or
        does not answer within ``timeout_s``, and RemoteInvocationError (with
        the code the peer sent) when it answers with an error.
        """
        addr = self.core.addr_of(host_id) if self.core is not None else None
        if addr is None or self.transport is None:
            raise HostUnreachable(
                f"host {host_id} is not a member of lattice {self.config.lattice!r}"
            )
        try:
            return await self.transport.request(
                addr, channel, payload, timeout_s=timeout_s, expected_peer=host_id
            )
        except RemoteError as exc:
            raise RemoteInvocationError(exc.remote_code, exc.remote_message, host_id) from None
        except (
            PeerUnavailable,
            PeerMismatch,
            SessionClosed,
            RequestTimeout,
            TransportClosed,
        ) as exc:
            raise HostUnreachable(f"host {short_id(host_id)} is unreachable: {exc}") from None

    async def control_request(
        self, host_id: str, op: str, args: Mapping[str, Any], timeout_s: float
    ) -> Any:
        """Ask member ``host_id`` for control op ``op`` (channel 3, unsigned); its result.

        Raises what :meth:`send_to_host` raises, and ControlError with the code the
        peer sent when it answers with an error.
        """
        reply = await self.send_to_host(
            host_id, channels.CONTROL, encode_request(op, args), timeout_s
        )
        return decode_reply(reply).get("result")

    async def _start_control(self, nursery: trio.Nursery) -> None:
        """Serve the local CLI on ``control.sock`` in the data dir (mode 0600), and peers."""
        control = self.control = HostControl(self, nursery)

        async def from_peer(peer_id: str, data: bytes) -> bytes:
            return await handle_request(data, control.dispatch_from_peer)

        self.handlers[channels.CONTROL] = from_peer
        path = self.data_dir / CONTROL_SOCKET
        try:
            await nursery.start(serve_unix, path, control.dispatch, {"events": control.events})
        except OSError as exc:  # e.g. a data dir path too long for a Unix socket
            log.warning(
                "no control socket at %s: %s; CLI commands cannot reach this host",
                path,
                exc.strerror or exc,
            )

    async def shutdown(
        self, leave_timeout_s: float = LEAVE_GRACE_S, drain_timeout_s: float = DRAIN_S
    ) -> None:
        """Drain calls, announce a graceful leave, wait up to ``leave_timeout_s``, stop."""
        if self.actors is not None:
            left = await self.actors.drain(drain_timeout_s)
            if left:
                log.warning("stopping with %d call(s) still running", left)
        if self.membership is not None and self.core is not None and not self.core.left:
            await self.membership.leave(timeout_s=leave_timeout_s)
        if self.transport is not None:
            with trio.move_on_after(leave_timeout_s):
                await self.transport.aclose()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _start_transport_and_membership(self, nursery: trio.Nursery) -> None:
        bind = self.config.bind
        offset = wall_clock_offset()
        psk = self.keyring.noise_psks()  # one per secret, primary first
        for _attempt in range(BIND_ATTEMPTS):
            udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            try:
                await udp.bind((bind, self.config.port))
            except OSError as exc:
                udp.close()
                raise ConfigError(
                    f"cannot bind UDP {bind}:{self.config.port}: {exc.strerror}"
                ) from None
            port = udp.getsockname()[1]
            transport = Transport(
                self.identity,
                self.config.lattice,
                psk,
                self.config.transport,
                self._handle_request,
            )
            try:
                await nursery.start(transport.serve, bind, port)
            except OSError as exc:
                udp.close()
                if exc.errno == errno.EADDRINUSE and self.config.port == 0:
                    continue  # the UDP port's TCP twin is taken; try another number
                raise ConfigError(f"cannot listen on TCP {bind}:{port}: {exc.strerror}") from None
            break
        else:  # pragma: no cover - needs BIND_ATTEMPTS collisions in a row
            raise ConfigError(f"no port free for both UDP and TCP after {BIND_ATTEMPTS} tries")
        self.transport = transport
        self.addr = (self._advertise_host(), port)
        self.core = Swim(
            self.identity,
            self.addr,
            self.config.membership,
            self._rng,
            trio.current_time() + offset,
            meta=self._meta,
            delegate=self.directory,
        )
        self.membership = MembershipDriver(
            self.core,
            self.keyring,
            self.config.membership,
            transport=transport,
            clock_offset=offset,
            sock=udp,
        )
        self.handlers.setdefault(channels.PUSH_PULL, self.membership.handle_push_pull)
        await nursery.start(self.membership.serve)

    def _advertise_host(self) -> str:
        if self.options.advertise_host:
            return self.options.advertise_host
        bind = self.config.bind
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

    async def _handle_request(self, peer_id: str, channel: int, payload: bytes) -> bytes:
        handler = self.handlers.get(channel)
        if handler is None:
            raise UnknownChannel(f"this host serves no transport channel {channel}")
        return await handler(peer_id, payload)

    async def _fan_out_events(self) -> None:
        assert self.membership is not None
        async for event in self.membership.events:
            self._note_partition_heal(event)
            if self.directory_driver is not None:
                self.directory_driver.on_member_event(event)
            self.publish_event(event)

    def publish_event(self, event: object) -> None:
        """Hand ``event`` (a membership event or a control event dict) to every subscriber.

        Never raises for a subscriber's sake and never waits: a full
        subscriber loses the event (counted), one that has gone away (its
        channel closed, e.g. ``meshhost events`` stopped with Ctrl-C) is
        dropped quietly.  Callers such as ``scale`` publish in the middle of
        their work, so a raise here would fail an operation that succeeded.
        """
        if self.recent_events is not None:
            self.recent_events.add(event_to_dict(event))
        if (
            isinstance(event, dict)
            and event.get("kind") == "entry_changed"
            and event.get("ns") == SECURITY_NS
            and self.security is not None
        ):
            self.security.changed()
            if self._nursery is not None and self.actors is not None:
                self._nursery.start_soon(self._enforce_security)
        if self.reconcile_driver is not None:
            if isinstance(event, dict):
                self.reconcile_driver.on_directory_event(event)
            else:
                self.reconcile_driver.on_member_event(event)
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                self.events_dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)

    async def _enforce_security(self) -> None:
        """Stop every actor this host may no longer run (revoked, issuer not allowed)."""
        if self.actors is None or self.security is None:
            return
        for actor_id, reason in await self.actors.stop_refused(self.security.refusal):
            log.warning("stopped actor %s: %s", actor_id, reason)
            self.publish_event({"kind": "actor_refused", "actor": actor_id, "reason": reason})

    def _note_partition_heal(self, event: object) -> None:
        # A host we had declared dead is back: the network probably healed.
        # Announce again so hosts that joined on the other side meanwhile
        # (and never heard of us) find us without waiting for a periodic one.
        if isinstance(event, MemberDead):
            self._failed_ids.add(event.member.id)
        elif isinstance(event, MemberJoined | MemberAlive):
            if event.member.id in self._failed_ids:
                self._failed_ids.discard(event.member.id)
                if self.mdns is not None:
                    self.mdns.reannounce()
        elif isinstance(event, MemberLeft):
            self._failed_ids.discard(event.member.id)

    def reload_secrets(self, secrets: list[bytes]) -> None:
        """Make the keyring hold exactly ``secrets``, the first one primary.

        This is what a SIGHUP after editing the secret file does: add the new
        secret as a second line, reload on every host; move it to the first
        line, reload; delete the old line, reload.
        """
        if not secrets:
            raise KeyringError("a keyring needs at least one lattice secret")
        for secret in secrets:
            self.add_secret(secret)
        if self.keyring.primary != secrets[0]:
            self.make_primary(secrets[0])
        for secret in self.keyring.secrets:
            if secret not in secrets:
                self.remove_secret(secret)

    # -- data dir lock --------------------------------------------------------

    def _lock(self) -> None:
        path = self.data_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot open the lock file {path}: {exc.strerror}; move it aside "
                "(it holds no data)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HostBusy(
                f"another meshhost process is running on data dir {self.data_dir}; "
                "stop it, or give this host its own --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {time.time():.0f}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
