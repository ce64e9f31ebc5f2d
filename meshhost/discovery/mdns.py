"""mDNS discovery with zeroconf, bridged into trio.

Theory of operation.  Each host registers one DNS-SD service
``<host id>.<service type>`` (default type ``_meshhost._udp.local.``) whose
SRV/A records give its membership address and whose TXT record carries:

* ``id`` - the host's ``N...`` key,
* ``v``  - the protocol version (``1``),
* ``lt`` - the lattice tag, ``derive(secret, "mdns-tag", lattice)[:8]`` in hex.

A browser watches the same service type.  A service whose tag is not one of
our keyring's tags belongs to another lattice (or another secret) and is
ignored without a trace in membership; the tag reveals neither the secret nor
the lattice name.  Matching services are *proposed* to membership; mDNS never
removes anyone (a crashed host's records live for ~20 minutes), membership
decides liveness.

zeroconf runs its own thread and asyncio loop.  Its browser callback (named
parameters ``zeroconf, service_type, name, state_change``) only hands the name
to trio with ``TrioToken.run_sync_soon`` (never blocking zeroconf's thread, so
closing the browser from trio cannot deadlock); every blocking
zeroconf call (start, register, resolve, close) runs in a worker thread via
``trio.to_thread.run_sync``.

Announcements are repeated every ``announce_interval_s`` and immediately when
this host's addresses change, so hosts that were on the other side of a long
partition (and have forgotten us) see us again.  Known peers are proposed again
every ``repropose_interval_s`` so membership retries hosts it gave up on.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ifaddr
import trio
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    NonUniqueNameException,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf import ServiceBrowser as _ServiceBrowser

from meshhost.errors import DiscoveryError
from meshhost.identity.keyring import Keyring, mdns_tag

__all__ = [
    "DEFAULT_SERVICE_TYPE",
    "PROTOCOL_VERSION",
    "MdnsDiscovery",
    "MdnsStats",
]

Addr = tuple[str, int]
Propose = Callable[[Sequence[Addr]], None]

DEFAULT_SERVICE_TYPE = "_meshhost._udp.local."
PROTOCOL_VERSION = "1"
RESOLVE_TIMEOUT_MS = 3000
"""How long to wait for a peer's SRV/TXT/A records when the cache lacks them."""
MAX_CONCURRENT_RESOLVES = 8
"""Worker threads resolving services at once (each may wait RESOLVE_TIMEOUT_MS)."""
CLOSE_TIMEOUT_S = 3.0
"""Goodbye packets and thread shutdown; a stuck zeroconf must not block exit."""
MIN_ANNOUNCE_GAP_S = 5.0
"""At most one announcement per this many seconds; each is 3 multicast packets."""
MAX_PEERS = 4096
"""Services of our lattice remembered at once, the longest unheard forgotten first.
The lattice tag is public, so a stranger on the LAN can advertise services
with it: bounded, they cost bounded memory and bounded dials per re-proposal."""
MAX_PEER_ADDRESSES = 16
"""Addresses taken from one service (a multi-homed host has a few; more are
only someone making every host dial addresses of its choosing)."""
NOTICE_BUFFER = 1024
"""Browser notices queued for trio; beyond it they are dropped and counted
(a later re-announce or re-query brings them back)."""


@dataclass(slots=True)
class MdnsStats:
    """What the browser saw."""

    proposed: int = 0
    """Services of our lattice whose addresses were proposed to membership."""
    other_lattice: int = 0
    """Services with a lattice tag not in our keyring: ignored."""
    malformed: int = 0
    """Services without an id, with another protocol version or no IPv4 address."""
    resolve_failures: int = 0
    """Services whose records did not arrive in time."""
    notices_dropped: int = 0
    """Browser notices lost because trio did not keep up."""
    announcements: int = 0
    """Times our service was (re-)announced."""
    peers_forgotten: int = 0
    """Services forgotten to stay within MAX_PEERS."""


_PROTOCOL_SUFFIXES = ("._udp.local.", "._tcp.local.")
_NAME_CHARS = re.compile(r"[A-Za-z0-9-]+")
_LETTER = re.compile(r"[A-Za-z]")
MAX_SERVICE_NAME_CHARS = 15
"""RFC 6335 5.1: a service name is at most 15 characters (not counting the ``_``)."""


def _service_type_problem(service_type: str) -> str | None:
    suffix = next((p for p in _PROTOCOL_SUFFIXES if service_type.lower().endswith(p)), None)
    if suffix is None:
        return "it must end with '._udp.local.' or '._tcp.local.'"
    label = service_type[: -len(suffix)]
    if not label.startswith("_"):
        return "the service name must start with '_'"
    name = label[1:]
    if not 1 <= len(name) <= MAX_SERVICE_NAME_CHARS:
        return f"the service name must be 1..{MAX_SERVICE_NAME_CHARS} characters"
    if not _NAME_CHARS.fullmatch(name):
        return "the service name may hold only letters, digits and '-'"
    if name[0] == "-" or name[-1] == "-" or "--" in name:
        return "the service name must not start or end with '-' or hold '--'"
    if not _LETTER.search(name):
        return "the service name must hold a letter"
    return None


def check_service_type(service_type: str) -> str:
    """Validate a DNS-SD service type like ``_meshhost._udp.local.``.

    The rules are RFC 6763 section 7 (``_name._udp`` or ``_name._tcp``, here
    in ``local.``) and RFC 6335 section 5.1 for the name: 1..15 letters,
    digits and hyphens, at least one letter, no hyphen at either end or
    twice in a row.  Raises :class:`DiscoveryError` saying what is wrong.
    """
    problem = _service_type_problem(service_type)
    if problem is not None:
        raise DiscoveryError(
            f"bad mDNS service type {service_type!r} ({problem}); use the form "
            "'_name._udp.local.' with a name of at most 15 characters"
        )
    return service_type


def local_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses: the non-loopback ones, or else the loopback ones.

    Empty when no interface has an IPv4 address (not even ``lo``: a fresh
    network namespace); the caller says so rather than guess ``127.0.0.1``,
    which would only work after ``lo`` is brought up.
    """
    addrs = sorted(
        {ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if isinstance(ip.ip, str)}
    )  # ifaddr gives an IPv4 address as str, an IPv6 one as (address, flowinfo, scope_id)
    public = [a for a in addrs if not ipaddress.IPv4Address(a).is_loopback]
    return public or [a for a in addrs if ipaddress.IPv4Address(a).is_loopback]


class MdnsDiscovery:
    """Announce this host and propose the hosts of our lattice found by mDNS.

    ``addr`` is the membership address; a wildcard host (``0.0.0.0``) announces
    every local IPv4 address and re-announces when they change.  ``interfaces``
    defaults to loopback when ``addr`` is a loopback address, else all.
    """

    def __init__(
        self,
        *,
        host_id: str,
        addr: Addr,
        keyring: Keyring,
        service_type: str = DEFAULT_SERVICE_TYPE,
        interfaces: Sequence[str] | None = None,
        announce_interval_s: float = 60.0,
        address_check_interval_s: float = 10.0,
        repropose_interval_s: float = 30.0,
        addresses: Callable[[], list[str]] = local_ipv4_addresses,
    ) -> None:
        self.host_id = host_id
        self.addr = addr
        self.keyring = keyring
        self.service_type = check_service_type(service_type)
        self.announce_interval_s = announce_interval_s
        self.address_check_interval_s = address_check_interval_s
        self.repropose_interval_s = repropose_interval_s
        self._addresses_fn = addresses
        loopback = ipaddress.IPv4Address(addr[0]).is_loopback
        if interfaces is not None:
            self._interfaces: Any = list(interfaces)
        else:
            self._interfaces = ["127.0.0.1"] if loopback else InterfaceChoice.All
        self.stats = MdnsStats()
        self.peers: dict[str, tuple[str, list[Addr]]] = {}
        """Service name -> (host id, addresses) of every matching service seen."""
        self._zc: Zeroconf | None = None
        self._info: ServiceInfo | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._send, self._receive = trio.open_memory_channel[tuple[str, ServiceStateChange]](
            NOTICE_BUFFER
        )
        self._announce_now = trio.Event()
        self._last_announce = 0.0
        self._closing = False

    # -- public --------------------------------------------------------------

    @property
    def instance_name(self) -> str:
        return f"{self.host_id}.{self.service_type}"

    def reannounce(self) -> None:
        """Announce again now (new primary secret, or membership saw a partition heal)."""
        self._announce_now.set()

    async def serve(self, propose: Propose, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Register, browse and propose until cancelled; unregisters on the way out."""
        self._token = trio.lowlevel.current_trio_token()
        try:
            self._zc = await trio.to_thread.run_sync(self._start_zeroconf)
        except OSError as exc:
            raise DiscoveryError(
                f"mDNS could not start on {self._interfaces!r}: {exc}; "
                "run with --no-mdns and --seed host:port on networks without multicast"
            ) from exc
        try:
            browser = _ServiceBrowser(self._zc, self.service_type, handlers=[self._on_change])
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._resolve_loop, propose)
                    # Registration probes the name for ~1.7 s; browse meanwhile.
                    nursery.start_soon(self._announce_loop)
                    nursery.start_soon(self._repropose_loop, propose)
                    task_status.started()
            finally:
                self._closing = True
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                    await trio.to_thread.run_sync(browser.cancel, abandon_on_cancel=True)
        finally:
            self._closing = True
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                await trio.to_thread.run_sync(self._close_zeroconf, abandon_on_cancel=True)

    # -- zeroconf side (its own thread) -------------------------------------

    def _start_zeroconf(self) -> Zeroconf:
        return Zeroconf(interfaces=self._interfaces, ip_version=IPVersion.V4Only, use_asyncio=False)

    def _close_zeroconf(self) -> None:
        zc = self._zc
        if zc is None:
            return
        try:
            zc.unregister_all_services()
        finally:
            zc.close()

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        # Runs on zeroconf's thread: do nothing here but hand over to trio.
        # run_sync_soon, not from_thread.run_sync: it never blocks this
        # thread, so trio can join the browser thread without a deadlock.
        token = self._token
        if token is None or self._closing:
            return
        try:
            token.run_sync_soon(self._notice, name, state_change)
        except trio.RunFinishedError:
            pass  # trio has exited; zeroconf is about to be closed

    # -- trio side ----------------------------------------------------------

    def _notice(self, name: str, state_change: ServiceStateChange) -> None:
        try:
            self._send.send_nowait((name, state_change))
        except trio.WouldBlock:
            self.stats.notices_dropped += 1

    async def _resolve_loop(self, propose: Propose) -> None:
        # Resolve names concurrently (a service whose records are slow to come
        # must not hold up the others), one resolution per name at a time: a
        # notice for a name being resolved marks it to be resolved once more.
        in_flight: dict[str, bool] = {}  # name -> another notice came meanwhile
        limiter = trio.CapacityLimiter(MAX_CONCURRENT_RESOLVES)

        async def resolve(name: str) -> None:
            while True:
                async with limiter:
                    await self._resolve(name, propose)
                if not in_flight.pop(name):
                    return
                in_flight[name] = False  # go round again for the newer notice

        async with trio.open_nursery() as nursery:
            async for name, state in self._receive:
                if name.lower() == self.instance_name.lower():
                    continue
                if state is ServiceStateChange.Removed:
                    # A goodbye: forget the mDNS entry, leave liveness to membership.
                    self.peers.pop(name, None)
                    continue
                if name in in_flight:
                    in_flight[name] = True
                    continue
                in_flight[name] = False
                nursery.start_soon(resolve, name)

    async def _resolve(self, name: str, propose: Propose) -> None:
        assert self._zc is not None
        info = await trio.to_thread.run_sync(
            self._zc.get_service_info,
            self.service_type,
            name,
            RESOLVE_TIMEOUT_MS,
            abandon_on_cancel=True,
        )
        if info is None:
            self.stats.resolve_failures += 1
            return
        peer = self._accept(info)
        if peer is None:
            return
        self._remember(name, peer)
        self.stats.proposed += 1
        propose(peer[1])

    def _remember(self, name: str, peer: tuple[str, list[Addr]]) -> None:
        """Keep ``peer`` as the newest of at most MAX_PEERS services."""
        self.peers.pop(name, None)
        self.peers[name] = peer
        while len(self.peers) > MAX_PEERS:
            del self.peers[next(iter(self.peers))]
            self.stats.peers_forgotten += 1

    def _accept(self, info: ServiceInfo) -> tuple[str, list[Addr]] | None:
        """Return (host id, addresses) of a service of our lattice, else None (counted)."""
        props = info.properties or {}
        tag = _text(props.get(b"lt"))
        if tag not in self.keyring.mdns_tags():
            self.stats.other_lattice += 1
            return None
        host_id = _text(props.get(b"id"))
        version = _text(props.get(b"v"))
        addrs = [
            (a, int(info.port or 0))
            for a in info.parsed_addresses(IPVersion.V4Only)[:MAX_PEER_ADDRESSES]
        ]
        if not host_id or version != PROTOCOL_VERSION or not addrs or not info.port:
            self.stats.malformed += 1
            return None
        if host_id == self.host_id:
            return None
        return host_id, addrs

    async def _announce_loop(self) -> None:
        assert self._zc is not None
        announced = self._announced_addresses()
        self._info = self._service_info(announced)
        try:
            await trio.to_thread.run_sync(
                self._zc.register_service, self._info, abandon_on_cancel=True
            )
        except NonUniqueNameException:
            raise DiscoveryError(
                f"another process announces host {self.host_id} on this network: "
                "two hosts share one data directory (host key); give each its own --data-dir"
            ) from None
        self._last_announce = trio.current_time()
        self.stats.announcements += 1
        while True:
            with trio.move_on_after(self.address_check_interval_s):
                await self._announce_now.wait()
            forced = self._announce_now.is_set()
            self._announce_now = trio.Event()
            current = self._announced_addresses()
            due = trio.current_time() - self._last_announce >= self.announce_interval_s
            if current == announced and not due and not forced:
                continue
            announced = current
            await self._announce(current)
            # Bursts of reannounce() (many hosts back after a heal) collapse
            # into one announcement per gap.
            await trio.sleep(MIN_ANNOUNCE_GAP_S)

    async def _announce(self, addresses: list[str]) -> None:
        assert self._zc is not None
        self._info = self._service_info(addresses)
        await trio.to_thread.run_sync(self._zc.update_service, self._info, abandon_on_cancel=True)
        self._last_announce = trio.current_time()
        self.stats.announcements += 1

    async def _repropose_loop(self, propose: Propose) -> None:
        while True:
            await trio.sleep(self.repropose_interval_s)
            addrs = [a for _, peer_addrs in self.peers.values() for a in peer_addrs]
            if addrs:
                propose(addrs)

    def _announced_addresses(self) -> list[str]:
        host = self.addr[0]
        if ipaddress.IPv4Address(host).is_unspecified:
            return self._addresses_fn()
        return [host]

    def _service_info(self, addresses: list[str]) -> ServiceInfo:
        tag = mdns_tag(self.keyring.primary, self.keyring.lattice)  # peers accept any of theirs
        return ServiceInfo(
            self.service_type,
            self.instance_name,
            port=self.addr[1],
            properties={"id": self.host_id, "v": PROTOCOL_VERSION, "lt": tag},
            server=f"mh-{self.host_id[:16].lower()}.local.",
            parsed_addresses=addresses,
        )


def _text(value: bytes | None) -> str:
    if value is None:
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return ""
