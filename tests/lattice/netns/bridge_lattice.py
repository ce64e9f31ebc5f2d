"""Real ``meshhost up`` processes, each in its own network namespace, on one bridge.

A :class:`BridgedLattice` is a :class:`ProcLattice` whose own namespace is
the *hub*: it holds a bridge and nothing else.  Every host gets a fresh
namespace with ``lo`` and one ``eth0`` (a veth pair whose other end is a port
of the hub's bridge) addressed ``10.231.0.N/24``; there is no default route
and no link to the machine's own network.  Hosts run with the default
(``lan``) profile, no seeds: mDNS must find the peers across the bridge.
:meth:`BridgedLattice.cut` takes one host's veth port off the bridge, so
everything in and out of its ``eth0`` is silently lost while the host itself
sees no change (its link stays up, with carrier and address); :meth:`heal`
puts the port back.  iproute2 is all this needs.

Everything lives in namespaces held by processes this module started:
killing them (on exit, whatever happened) removes the bridge and the veth
pairs with them; nothing is made in the caller's namespace.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from tests.lattice.processes.proc_lattice import HostProc, Netns, ProcLattice
from tests.systools import require_netns

SUBNET = "10.231.0"
"""Host N gets {SUBNET}.N/24 (1..254); only ever inside namespaces made here."""
BRIDGE = "br0"
IP_TIMEOUT_S = 10.0


def require_bridge_tools() -> None:
    """Root and iproute2 / util-linux: skipped without them (failed under ``CI=true``)."""
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
        run_in(
            self.netns,
            "ip",
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            str(netns.holder.pid),
        )
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

    def port(self, name: str) -> str:
        """The bridge port (in the hub) whose veth peer is ``name``'s eth0."""
        return f"p{list(self.spaces).index(name) + 1}"

    def cut(self, name: str) -> None:
        """Lose every packet in and out of ``name``'s eth0 (multicast included).

        The port leaves the bridge: frames from the host reach a hub interface
        that forwards nothing, and no frame reaches the host.  Its own
        namespace is untouched, as with a pulled cable on the switch's side.
        """
        assert self.netns is not None
        run_in(self.netns, "ip", "link", "set", self.port(name), "nomaster")

    def heal(self, name: str) -> None:
        assert self.netns is not None
        run_in(self.netns, "ip", "link", "set", self.port(name), "master", BRIDGE)

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
