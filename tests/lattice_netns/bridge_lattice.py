"""Real ``meshhost up`` processes, each in its own network namespace, on one bridge.

A :class:`BridgedLattice` is a :class:`ProcLattice` whose own namespace is
the *hub*: it holds a bridge and nothing else.  Every host gets a fresh
namespace with ``lo`` and one ``eth0`` (a veth pair whose other end is a port
of the hub's bridge) addressed ``10.231.0.N/24``; there is no default route
and no link to the machine's own network.  Hosts run with the default
(``lan``) profile, no seeds: mDNS must find the peers across the bridge.
:meth:`BridgedLattice.cut` drops everything in and out of one host's
``eth0`` with nftables (inside that host's namespace), :meth:`heal` removes
the table again.

Everything lives in namespaces held by processes this module started:
killing them (on exit, whatever happened) removes the bridge, the veth pairs
and the nftables tables with them; nothing is made in the caller's namespace.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
from proc_lattice import HostProc, Netns, ProcLattice, require_netns

SUBNET = "10.231.0"
"""Host N gets {SUBNET}.N/24 (1..254); only ever inside namespaces made here."""
BRIDGE = "br0"
CUT_TABLE = "meshhost_cut"
IP_TIMEOUT_S = 10.0

_CUT_RULES = f"""table inet {CUT_TABLE} {{
  chain in {{ type filter hook input priority 0; policy accept; iifname "eth0" drop; }}
  chain out {{ type filter hook output priority 0; policy accept; oifname "eth0" drop; }}
}}
"""


def require_bridge_tools() -> None:
    """Skip without root or ``ip`` (nothing to test there); fail on anything else missing."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to make network namespaces, bridges and veth pairs "
                    f"(running as uid {os.geteuid()})")
    if shutil.which("ip") is None:
        pytest.skip("needs the `ip` tool (iproute2) to make namespaces, bridges and veth pairs")
    if shutil.which("nft") is None:
        pytest.fail("these tests cut links with nftables: install `nft` (.ci/run does)")
    require_netns()


def run_in(netns: Netns, *argv: str) -> str:
    """Run a command in ``netns``; its stdout, or fail showing what it said."""
    done = netns.run(list(argv), timeout_s=IP_TIMEOUT_S)
    assert done.returncode == 0, f"`{' '.join(argv)}` failed: {done.stderr.strip()}"
    return done.stdout


class BridgedLattice(ProcLattice):
    """Hosts in their own namespaces joined by a bridge; see the module doc."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, lattice_name=f"netns-{secrets.token_hex(3)}")
        self.spaces: dict[str, Netns] = {}
        """Host name -> its namespace."""
        self.addresses: dict[str, str] = {}
        """Host name -> the IPv4 address of its eth0."""

    def __enter__(self) -> BridgedLattice:
        super().__enter__()
        try:
            assert self.netns is not None
            run_in(self.netns, "ip", "link", "add", BRIDGE, "type", "bridge")
            run_in(self.netns, "ip", "link", "set", BRIDGE, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)  # hosts first: a live process keeps its namespace
        finally:
            for netns in self.spaces.values():
                netns.close()

    def attach(self, name: str) -> Netns:
        """A fresh namespace whose eth0 is on the bridge, with the next free address."""
        assert self.netns is not None and name not in self.spaces
        netns = Netns()
        self.spaces[name] = netns
        address = f"{SUBNET}.{len(self.spaces)}"
        port = f"p{len(self.spaces)}"
        run_in(self.netns, "ip", "link", "add", port, "type", "veth",
               "peer", "name", "eth0", "netns", str(netns.holder.pid))
        run_in(self.netns, "ip", "link", "set", port, "master", BRIDGE, "up")
        run_in(netns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        run_in(netns, "ip", "link", "set", "eth0", "up")
        self.addresses[name] = address
        return netns

    def add(self, name: str, **kwargs: Any) -> HostProc:
        """A host in its own bridged namespace, default profile unless told otherwise."""
        kwargs.setdefault("profile", None)
        if kwargs.get("netns") is None:
            kwargs["netns"] = self.attach(name)
        return super().add(name, **kwargs)

    def cut(self, name: str) -> None:
        """Drop every packet in and out of ``name``'s eth0 (multicast included)."""
        rules = self.root / f"{CUT_TABLE}.nft"
        rules.write_text(_CUT_RULES)
        run_in(self.spaces[name], "nft", "-f", str(rules))

    def heal(self, name: str) -> None:
        run_in(self.spaces[name], "nft", "delete", "table", "inet", CUT_TABLE)

    def sockets(self, name: str) -> list[tuple[str, str, int]]:
        """(proto, local address, port) of every socket bound in ``name``'s namespace."""
        found = []
        for line in run_in(self.spaces[name], "ss", "-Htuln").splitlines():
            fields = line.split()
            local = fields[4]
            address, _, port = local.rpartition(":")
            found.append((fields[0], address, int(port)))
        return found

    def multicast_groups(self, name: str, device: str) -> set[str]:
        """IPv4 multicast groups joined on ``device`` in ``name``'s namespace."""
        out = run_in(self.spaces[name], "ip", "-4", "maddr", "show", "dev", device)
        return {line.split()[1] for line in out.splitlines() if line.strip().startswith("inet ")}

