"""A meshhost host: every layer of one lattice member in one trio nursery.

:meth:`Host.serve` first builds every part, fully and in one place
(:func:`meshhost.hostparts.build_parts`: sockets bound, each part given what
it depends on), then starts them in one nursery.  Before that, asking for a
part raises ``HostNotServing``; after it, no part is ``None``
(``mdns`` and ``seeds`` are ``None`` only when the configuration turns them
off).  Key and secret files: :mod:`meshhost.hostkeys`.

Composition::

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

import fcntl
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import trio

from meshhost.actorhost import ActorHost
from meshhost.apps.ops import AppOps
from meshhost.apps.reconcile_loop import ReconcileDriver
from meshhost.config import HostConfig
from meshhost.control.api import decode_reply, encode_request, serve_unix
from meshhost.control.authz import Authorizer
from meshhost.control.hostops import HostControl
from meshhost.control.security import SECURITY_NS, LatticeSecurity
from meshhost.datadir import (
    CONTROL_SOCKET,
    LATTICE_SECRET,
    check_private,
    default_data_dir,
    make_private_dir,
)
from meshhost.directory import Directory
from meshhost.directory.driver import DirectoryDriver
from meshhost.discovery import MdnsDiscovery, StaticSeeds
from meshhost.discovery.diagnose import join_trouble
from meshhost.diskwriter import DiskWriter
from meshhost.errors import (
    ConfigError,
    DecodeError,
    HostBusy,
    HostNotServing,
    HostUnreachable,
    KeyringError,
    PeerMismatch,
    PeerUnavailable,
    RemoteError,
    RemoteInvocationError,
    RequestTimeout,
    SessionClosed,
    TransportClosed,
)
from meshhost.hostkeys import (
    load_identity,
    load_keyring,
    read_secret_text,
    warn_if_others_can_read,
    write_secret_file,
)
from meshhost.hostparts import ChannelHandler, HostOptions, HostParts, build_parts
from meshhost.identity import nkeys, short_id
from meshhost.identity.keyring import Keyring
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
from meshhost.membership.udp import MembershipDriver
from meshhost.monitor import HostMetrics, RecentEvents
from meshhost.monitor.events import event_to_dict
from meshhost.transport import Transport, channels
from meshhost.wire import Limits, Reader

log = logging.getLogger(__name__)

__all__ = [
    "LOCK_FILE",
    "ChannelHandler",
    "Host",
    "HostOptions",
    "decode_meta",
    "encode_meta",
    "load_identity",
    "load_keyring",
]

LOCK_FILE = "host.lock"
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
        self.rng = rng or random.Random(int.from_bytes(os.urandom(8), "big"))
        self._parts: HostParts | None = None
        self.writer = DiskWriter()
        """Every durable write of the serving host: a thread, group commit (diskwriter)."""
        self.handlers: dict[int, ChannelHandler] = {}
        """Extra transport channel -> handler (e.g. a benchmark's echo); add before
        :meth:`serve`.  The layers' own channels are in ``parts.handlers``."""
        self.events_dropped = 0
        self._subscribers: list[trio.MemorySendChannel[object]] = []
        self._nursery: trio.Nursery | None = None
        self._lock_fd: int | None = None
        self._failed_ids: set[str] = set()
        self._labels = dict(config.labels)
        self._meta = encode_meta(self._labels)
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
        text = secret_text if secret_text is not None else read_secret_text(secret_path)
        if secret_path is not None:
            warn_if_others_can_read(secret_path)
        host = cls(config, identity=identity, keyring=keyring, data_dir=data_dir, options=options)
        host.bootstrap_admins = tuple(bootstrap_admins(text))
        host.secret_path = secret_path
        return host

    # -- parts (built by serve) -----------------------------------------------

    @property
    def parts(self) -> HostParts:
        """Every part of this host (:mod:`meshhost.hostparts`), built by :meth:`serve`
        before anything runs; they stay after it returns.  Raises HostNotServing
        before that."""
        if self._parts is None:
            raise HostNotServing(
                f"host {short_id(self.host_id)} is not serving yet: start it with "
                "`await nursery.start(host.serve)`"
            )
        return self._parts

    @property
    def built(self) -> bool:
        """True once :meth:`serve` built the parts."""
        return self._parts is not None

    @property
    def addr(self) -> tuple[str, int]:
        """The membership (and transport) address peers use."""
        return self.parts.addr

    @property
    def transport(self) -> Transport:
        return self.parts.transport

    @property
    def core(self) -> Swim:
        """The SWIM membership core."""
        return self.parts.core

    @property
    def membership(self) -> MembershipDriver:
        return self.parts.membership

    @property
    def directory(self) -> Directory:
        """The lattice directory (the membership delegate)."""
        return self.parts.directory

    @property
    def directory_driver(self) -> DirectoryDriver:
        return self.parts.directory_driver

    @property
    def security(self) -> LatticeSecurity:
        """Operators, lattice-wide issuer allow-list and revocations."""
        return self.parts.security

    @property
    def actors(self) -> ActorHost:
        """Actors on this host and calls to actors anywhere."""
        return self.parts.actors

    @property
    def reconcile_driver(self) -> ReconcileDriver:
        return self.parts.reconcile_driver

    @property
    def app_ops(self) -> AppOps:
        return self.parts.app_ops

    @property
    def control(self) -> HostControl:
        """The control ops (the CLI's socket and peers' channel 3)."""
        return self.parts.control

    @property
    def mdns(self) -> MdnsDiscovery | None:
        """None when the configuration turns mDNS off."""
        return self.parts.mdns

    @property
    def seeds(self) -> StaticSeeds | None:
        """None when the configuration names no seeds."""
        return self.parts.seeds

    @property
    def meta(self) -> bytes:
        """The metadata membership gossips for this host (its labels, encoded)."""
        return self._meta

    # -- queries -------------------------------------------------------------

    async def _watch_join(self, patience_s: float) -> None:
        """Until the first peer is seen: after ``patience_s`` alone, publish
        ``{"kind": "join_trouble", "reason": ...}`` saying why (seed refused our
        handshake, no answer, no mDNS peer yet), and again whenever the reason
        changes. A host that has seen a peer once stops watching: losing peers
        later is what membership events report."""
        await trio.sleep(patience_s)
        said = None
        seeds = self.seeds
        while len(self.alive_ids()) <= 1:
            reason = join_trouble(
                seeds.seeds if seeds is not None else [],
                seeds.resolved if seeds is not None else {},
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
        return [] if self._parts is None else self._parts.core.members()

    def alive_ids(self) -> set[str]:
        """Ids of hosts alive or suspect, ourselves included."""
        return set() if self._parts is None else self._parts.core.live_ids()

    def status(self) -> dict[str, Any]:
        """A JSON-able snapshot: who we are and whom we see."""
        members = sorted(self.members(), key=lambda m: m.id)
        return {
            "host_id": self.host_id,
            "lattice": self.config.lattice,
            "addr": list(self._parts.addr) if self._parts is not None else None,
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
        ks = self.keyring.stats
        for name in ks.__slots__:
            out[f"seal.{name}"] = getattr(ks, name)
        parts = self._parts
        if parts is None:
            return out  # not serving: only what exists without the layers
        for name in parts.membership.stats.__slots__:
            out[f"udp.{name}"] = getattr(parts.membership.stats, name)
        out.update({f"swim.{k}": v for k, v in parts.core.stats.items()})
        if parts.mdns is not None:
            for name in parts.mdns.stats.__slots__:
                out[f"mdns.{name}"] = getattr(parts.mdns.stats, name)
        out.update({f"transport.{k}": v for k, v in parts.transport.stats.items()})
        out["directory.bad_messages"] = parts.directory.bad_messages
        out["directory.refused_entries"] = parts.directory.refused_entries
        out["directory.events_dropped"] = parts.directory.events_dropped
        out["directory.pulls"] = parts.directory_driver.pulls
        out["directory.pull_failures"] = parts.directory_driver.pull_failures
        out["actors.in_flight"] = parts.actors.in_flight
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
        if self._parts is not None:  # else the builder takes them from here
            self._parts.membership.update_meta(meta)
            self._parts.directory.set_labels(self._labels)

    # -- key rotation ---------------------------------------------------------

    def add_secret(self, secret: bytes) -> None:
        """Rotation step 1 (on every host): accept packets sealed with ``secret``."""
        self.keyring.add(secret)
        self._sync_transport_psks()

    def make_primary(self, secret: bytes) -> None:
        """Rotation step 2 (on every host): seal with ``secret``; mDNS announces its tag."""
        self.keyring.make_primary(secret)
        self._sync_transport_psks()
        if self._parts is not None and self._parts.mdns is not None:
            self._parts.mdns.reannounce()

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
        write_secret_file(self.secret_path, self.keyring.secrets if secrets is None else secrets)
        return True

    def _sync_transport_psks(self) -> None:
        """New Noise handshakes dial with the primary and accept every secret."""
        if self._parts is not None:  # else the builder reads the keyring
            self._parts.transport.set_psks(self.keyring.noise_psks())

    # -- running --------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Build every part (:func:`meshhost.hostparts.build_parts`), then run them
        until cancelled or :meth:`shutdown`.  ``task_status`` gets our address."""
        self._lock()
        self.writer.start()
        try:
            parts = self._parts = await build_parts(self)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._run(parts, nursery)
                task_status.started(parts.addr)
        finally:
            self._nursery = None
            for send in self._subscribers:
                send.close()
            with trio.CancelScope(shield=True):  # what was queued reaches the disk
                await trio.to_thread.run_sync(self.writer.close)
            if self._parts is not None:
                self._parts.store.close()
            self._unlock()

    async def _run(self, parts: HostParts, nursery: trio.Nursery) -> None:
        """Start every part in ``nursery``, each one ready when the next starts."""
        await nursery.start(
            partial(parts.transport.serve, self.config.bind, parts.addr[1], listener=parts.listener)
        )
        await nursery.start(parts.membership.serve)
        await nursery.start(parts.actors.serve)
        await nursery.start(parts.directory_driver.serve)
        await nursery.start(parts.reconcile_driver.serve)
        nursery.start_soon(self._fan_out_events, parts)
        if parts.mdns is not None:
            await nursery.start(parts.mdns.serve, parts.membership.join)
        if parts.seeds is not None:
            await nursery.start(parts.seeds.serve, parts.membership.join)
        path = self.data_dir / CONTROL_SOCKET
        control = parts.control
        try:
            await nursery.start(serve_unix, path, control.dispatch, {"events": control.events})
        except OSError as exc:  # e.g. a data dir path too long for a Unix socket
            log.warning(
                "no control socket at %s: %s; CLI commands cannot reach this host",
                path,
                exc.strerror or exc,
            )
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
        if self.options.otlp_url is not None:
            from meshhost.monitor.otlp import export_spans  # opentelemetry: if asked

            await nursery.start(
                partial(
                    export_spans,
                    parts.actors.spans,
                    self.options.otlp_url,
                    host_id=self.host_id,
                    lattice=self.config.lattice,
                )
            )

    async def send_to_host(
        self, host_id: str, channel: int, payload: bytes, timeout_s: float
    ) -> bytes:
        """A request to the member ``host_id`` on ``channel``; returns its reply.

        Raises HostUnreachable when the host is unknown, cannot be reached or
        does not answer within ``timeout_s``, and RemoteInvocationError (with
        the code the peer sent) when it answers with an error.
        """
        parts = self.parts
        addr = parts.core.addr_of(host_id)
        if addr is None:
            raise HostUnreachable(
                f"host {host_id} is not a member of lattice {self.config.lattice!r}"
            )
        try:
            return await parts.transport.request(
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

    def stop_soon(self) -> None:
        """Start :meth:`shutdown` in the host's nursery (the ``host_stop`` op: its
        answer goes out while the host drains)."""
        if self._nursery is not None:
            self._nursery.start_soon(self.shutdown)

    async def shutdown(
        self, leave_timeout_s: float = LEAVE_GRACE_S, drain_timeout_s: float = DRAIN_S
    ) -> None:
        """Drain calls, announce a graceful leave, wait up to ``leave_timeout_s``, stop."""
        parts = self._parts
        if parts is not None:
            left = await parts.actors.drain(drain_timeout_s)
            if left:
                log.warning("stopping with %d call(s) still running", left)
            if not parts.core.left:
                await parts.membership.leave(timeout_s=leave_timeout_s)
            with trio.move_on_after(leave_timeout_s):
                await parts.transport.aclose()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _fan_out_events(self, parts: HostParts) -> None:
        async for event in parts.membership.events:
            self._note_partition_heal(event)
            parts.directory_driver.on_member_event(event)
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
        parts = self._parts
        if parts is None:  # not built yet: nothing but subscribers to tell
            pass
        elif isinstance(event, dict):
            if event.get("kind") == "entry_changed" and event.get("ns") == SECURITY_NS:
                parts.security.changed()
                if self._nursery is not None:
                    self._nursery.start_soon(self._enforce_security, parts)
            parts.reconcile_driver.on_directory_event(event)
        else:
            parts.reconcile_driver.on_member_event(event)
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                self.events_dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)

    async def _enforce_security(self, parts: HostParts) -> None:
        """Stop every actor this host may no longer run (revoked, issuer not allowed)."""
        for actor_id, reason in await parts.actors.stop_refused(parts.security.refusal):
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
                if self._parts is not None and self._parts.mdns is not None:
                    self._parts.mdns.reannounce()
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
