"""Network namespaces on a bridge, and the cuts, for ``meshhost lab run`` (needs root).

Every namespace is held by a process this module starts (``unshare -n`` then
``sleep``), not by a name under ``/run/netns``: when the holder dies the
kernel removes the namespace and every interface in it, so cleaning up is
killing processes, and nothing is ever made in the caller's namespace.  Each
holder and each process started in a namespace gets the parent-death signal
SIGKILL (``prctl(PR_SET_PDEATHSIG)``), so even a ``kill -9`` of the lab
leaves nothing behind.

Layout: a *hub* namespace holds two bridges, ``br0`` (everyone) and ``br1``
(the minority's side during a symmetric cut).  Host ``i`` has its own
namespace with ``lo`` and ``eth0``, a veth pair whose other end ``pI`` is a
port of ``br0`` in the hub, addressed ``10.77.0.I/24``.

Cuts, with iproute2 only:

* symmetric: the minority's ports move to ``br1`` -- the minority still hears
  itself, nobody hears across;
* one-way: in each minority namespace, a ``blackhole`` route per majority
  address -- the minority's packets to the majority are dropped, the other
  direction still arrives;
* loss: an nftables ``numgen random`` drop rule in every host namespace,
  only if ``nft`` exists (:func:`nft_available`).
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
from collections.abc import Sequence

from meshhost.errors import LabError

__all__ = ["Hub", "Namespace", "missing_tools", "nft_available", "pdeathsig"]

SUBNET = "10.77.0"
"""Host N gets {SUBNET}.N/24; only ever inside namespaces made here."""
IP_TIMEOUT_S = 10.0
READY_S = 10.0
TOOLS = ("ip", "unshare", "nsenter")
_PR_SET_PDEATHSIG = 1


def pdeathsig() -> None:
    """``preexec_fn``: the child is SIGKILLed when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def missing_tools() -> str | None:
    """Why this machine cannot run a lab (root, tools), or None if it can."""
    if os.geteuid() != 0:
        return (
            f"meshhost lab run needs root to make network namespaces (running as uid "
            f"{os.geteuid()}): run it as root, e.g. under sudo"
        )
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (
            f"meshhost lab run needs {', '.join(missing)}: install them with "
            "`apt-get install iproute2 util-linux`"
        )
    return None


def nft_available() -> bool:
    return shutil.which("nft") is not None


class Namespace:
    """A network namespace with ``lo`` up, alive as long as its holder process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", "ip link set lo up && echo ready && exec sleep 86400"],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=pdeathsig,
        )
        assert self.holder.stdout is not None
        ready, _, _ = select.select([self.holder.stdout], [], [], READY_S)
        line = self.holder.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.close()
            raise LabError(
                f"a network namespace did not come up within {READY_S:g} s "
                "(`unshare -n` needs root and a kernel with network namespaces)"
            )

    @property
    def pid(self) -> int:
        return self.holder.pid

    @property
    def enter(self) -> list[str]:
        """Prefix running a command inside (nsenter execs it: the same pid)."""
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net"]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                [*self.enter, *argv], capture_output=True, text=True, timeout=IP_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise LabError(f"`{' '.join(argv)}` did not finish within {IP_TIMEOUT_S:g} s") from None
        if check and done.returncode != 0:
            raise LabError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
        return done

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()
        if self.holder.stdout is not None:
            self.holder.stdout.close()


class Hub:
    """The hub namespace with its bridges, and one namespace per attached host."""

    def __init__(self) -> None:
        self.hub: Namespace | None = None
        self.spaces: dict[str, Namespace] = {}
        self.addresses: dict[str, str] = {}
        self.loss_percent = 0.0

    def open(self) -> Hub:
        self.hub = Namespace()
        for bridge in ("br0", "br1"):
            self.hub.run("ip", "link", "add", bridge, "type", "bridge")
            self.hub.run("ip", "link", "set", bridge, "up")
        return self

    def pids(self) -> list[int]:
        """Every namespace holder's pid (the test checks they are gone afterwards)."""
        return [ns.pid for ns in ([self.hub] if self.hub else []) + list(self.spaces.values())]

    def close(self) -> None:
        """Kill every holder: the namespaces, veths and bridges go with them."""
        for ns in [*self.spaces.values(), *([self.hub] if self.hub else [])]:
            ns.close()

    def attach(self, name: str) -> Namespace:
        """A fresh namespace whose eth0 is a port of br0, with the next address."""
        assert self.hub is not None and name not in self.spaces
        ns = Namespace()
        self.spaces[name] = ns
        index = len(self.spaces)
        address = f"{SUBNET}.{index}"
        self.hub.run(
            "ip",
            "link",
            "add",
            f"p{index}",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            str(ns.pid),
        )
        self.hub.run("ip", "link", "set", f"p{index}", "master", "br0", "up")
        ns.run("ip", "addr", "add", f"{address}/24", "dev", "eth0")
        ns.run("ip", "link", "set", "eth0", "up")
        self.addresses[name] = address
        return ns

    def _port(self, name: str) -> str:
        return f"p{list(self.spaces).index(name) + 1}"

    def cut(self, minority: Sequence[str], one_way: bool) -> None:
        """Cut the minority from everyone else (see the module doc)."""
        assert self.hub is not None
        if not one_way:
            for name in minority:
                self.hub.run("ip", "link", "set", self._port(name), "master", "br1")
            return
        majority = [n for n in self.spaces if n not in minority]
        for name in minority:
            for other in majority:
                self.spaces[name].run(
                    "ip", "route", "add", "blackhole", f"{self.addresses[other]}/32"
                )

    def heal(self, minority: Sequence[str], one_way: bool) -> None:
        assert self.hub is not None
        if not one_way:
            for name in minority:
                self.hub.run("ip", "link", "set", self._port(name), "master", "br0")
            return
        majority = [n for n in self.spaces if n not in minority]
        for name in minority:
            for other in majority:
                self.spaces[name].run(
                    "ip", "route", "del", "blackhole", f"{self.addresses[other]}/32"
                )

    def set_loss(self, percent: float) -> None:
        """Drop ``percent`` % of the packets arriving at every host (nftables)."""
        for ns in self.spaces.values():
            ns.run("nft", "add", "table", "inet", "lab")
            ns.run(
                "nft",
                "add",
                "chain",
                "inet",
                "lab",
                "in",
                "{ type filter hook input priority 0 ; }",
            )
            ns.run(
                "nft",
                "add",
                "rule",
                "inet",
                "lab",
                "in",
                "iifname",
                "eth0",
                "numgen",
                "random",
                "mod",
                "100",
                "<",
                str(round(percent)),
                "drop",
            )
        self.loss_percent = percent
