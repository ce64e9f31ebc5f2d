"""Static seed addresses: discovery for networks without multicast.

A seed is ``host:port`` (``host`` an IPv4 address or a name that resolves to
one).  Seeds are proposed to membership at start and again every
``interval_s``, so a seed that was down when this host started, or a lattice
that split and lost all its members, is tried again.  Like mDNS, seeds only
*propose*: the membership core decides who is alive.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket as stdlib_socket
from collections.abc import Callable, Sequence
from typing import Any

import trio

from meshhost.errors import SeedAddressError

__all__ = ["DEFAULT_SEED_INTERVAL_S", "StaticSeeds", "parse_seed"]

Addr = tuple[str, int]
Propose = Callable[[Sequence[Addr]], None]

DEFAULT_SEED_INTERVAL_S = 30.0
"""Seeds are proposed again this often: cheap, and it heals total splits."""
RESOLVE_TIMEOUT_S = 5.0
"""A name server that hangs must not stall discovery."""
_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
"""One label of a DNS host name (RFC 1123): letters, digits, inner hyphens."""

log = logging.getLogger(__name__)


def parse_seed(text: str) -> tuple[str, int]:
    """Split ``host:port`` into ``(host, port)``; raises :class:`SeedAddressError`."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise SeedAddressError(f"seed {text!r} is not host:port, e.g. 192.168.1.20:7946")
    if host.startswith("[") or ":" in host:
        raise SeedAddressError(f"seed {text!r}: IPv6 seeds are not supported; use IPv4")
    try:
        port = int(port_text)
    except ValueError:
        raise SeedAddressError(f"seed {text!r}: port {port_text!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise SeedAddressError(f"seed {text!r}: port must be within 1..65535")
    if not _valid_host(host):
        raise SeedAddressError(
            f"seed {text!r}: {host!r} is neither an IPv4 address nor a host name"
        )
    return host, port


def _valid_host(host: str) -> bool:
    labels = host.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):  # looks like an address: must be one
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    return len(host) <= 253 and all(_HOSTNAME_LABEL.fullmatch(label) for label in labels)


class StaticSeeds:
    """Propose a fixed list of seed addresses, now and every ``interval_s``."""

    def __init__(self, seeds: Sequence[str], *, interval_s: float = DEFAULT_SEED_INTERVAL_S):
        self.seeds = [parse_seed(s) for s in seeds]
        self.interval_s = interval_s
        self.unresolved = 0
        """Seed names that did not resolve (counted per attempt)."""
        self.resolved: dict[tuple[str, int], list[Addr] | str] = {}
        """Each seed's addresses at the last attempt, or why it did not resolve."""
        self._warned: set[str] = set()

    async def resolve(self) -> list[Addr]:
        """Resolve every seed to IPv4 addresses; names that fail are counted and skipped."""
        out: list[Addr] = []
        for host, port in self.seeds:
            try:
                with trio.fail_after(RESOLVE_TIMEOUT_S):
                    infos = await trio.socket.getaddrinfo(
                        host, port, stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM
                    )
            except (OSError, trio.TooSlowError) as exc:
                self.unresolved += 1
                reason = "timed out" if isinstance(exc, trio.TooSlowError) else exc.strerror
                self.resolved[host, port] = f"does not resolve to an IPv4 address ({reason})"
                if host not in self._warned:  # once: it is retried every interval_s
                    self._warned.add(host)
                    log.warning(
                        "seed %s:%d does not resolve to an IPv4 address (%s); "
                        "retrying every %.0f s",
                        host,
                        port,
                        reason,
                        self.interval_s,
                    )
                continue
            found = []
            for info in infos:
                addr = (str(info[4][0]), int(info[4][1]))
                found.append(addr)
                if addr not in out:
                    out.append(addr)
            self.resolved[host, port] = found
        return out

    async def serve(self, propose: Propose, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Propose the seeds now and every ``interval_s`` until cancelled."""
        task_status.started()
        while True:
            addrs = await self.resolve()
            if addrs:
                propose(addrs)
            await trio.sleep(self.interval_s)
