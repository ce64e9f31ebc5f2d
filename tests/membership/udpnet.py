"""An in-memory UDP network for trio tests, through trio's public socket-factory hook.

``enable_udp_net()`` makes every ``trio.socket.socket(AF_INET, SOCK_DGRAM)``
of the current trio run a fake socket on one shared network: ``bind`` takes
any address (``10.0.0.1:7946`` needs no interface), ``sendto`` hands the
datagram to whichever fake socket is bound there (or drops it, as UDP
would), ``recvfrom`` waits for the next one.  Nothing touches the kernel, so
with trio's autojump clock a membership run of minutes takes milliseconds.

It replaces ``trio.testing._fake_net.FakeNet`` (private to trio, and free to
change in any release) with ``trio.socket.set_custom_socket_factory``, which
trio documents for exactly this.  Only what meshhost's UDP driver calls is
here: bind, getsockname, sendto, recvfrom, close.
"""

from __future__ import annotations

import errno
import socket as stdlib_socket
from typing import Any

import trio

__all__ = ["QUEUE_DATAGRAMS", "FakeUdpSocket", "UdpNet", "enable_udp_net"]

QUEUE_DATAGRAMS = 256
"""Datagrams a socket holds unread before it drops more, as a kernel buffer would."""

Addr = tuple[str, int]


class UdpNet:
    """The shared network: bound address -> socket."""

    def __init__(self) -> None:
        self.bound: dict[Addr, FakeUdpSocket] = {}
        self.dropped = 0
        """Datagrams sent to an unbound address or a full socket."""
        self._next_port = 40000

    def free_port(self, host: str) -> int:
        while (host, self._next_port) in self.bound:
            self._next_port += 1
        return self._next_port


class FakeUdpSocket:
    """One UDP socket on a :class:`UdpNet` (IPv4 only)."""

    def __init__(self, net: UdpNet) -> None:
        self._net = net
        self._addr: Addr | None = None
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, Addr]](QUEUE_DATAGRAMS)
        self.family = stdlib_socket.AF_INET
        self.type = stdlib_socket.SOCK_DGRAM

    async def bind(self, address: Addr) -> None:
        await trio.lowlevel.checkpoint()
        host, port = address
        if self._addr is not None:
            raise OSError(errno.EINVAL, "socket is already bound")
        port = port or self._net.free_port(host)
        if (host, port) in self._net.bound:
            raise OSError(errno.EADDRINUSE, f"{host}:{port} is in use")
        self._addr = (host, port)
        self._net.bound[self._addr] = self

    def getsockname(self) -> Addr:
        return self._addr if self._addr is not None else ("0.0.0.0", 0)

    async def sendto(self, data: bytes | bytearray | memoryview, address: Addr) -> int:
        await trio.lowlevel.checkpoint()
        if self._addr is None:
            await self.bind(("127.0.0.1", 0))
        assert self._addr is not None
        dest = self._net.bound.get((address[0], address[1]))
        try:
            if dest is None:
                raise trio.WouldBlock
            dest._send.send_nowait((bytes(data), self._addr))
        except trio.WouldBlock:
            self._net.dropped += 1
        return len(data)

    async def recvfrom(self, bufsize: int) -> tuple[bytes, Addr]:
        data, source = await self._receive.receive()
        return data[:bufsize], source

    def close(self) -> None:
        if self._addr is not None and self._net.bound.get(self._addr) is self:
            del self._net.bound[self._addr]
        self._addr = None


class _Factory(trio.abc.SocketFactory):
    def __init__(self, net: UdpNet) -> None:
        self._net = net

    def socket(self, family: Any = None, type: Any = None, proto: Any = None) -> Any:
        if family != stdlib_socket.AF_INET or type != stdlib_socket.SOCK_DGRAM:
            raise NotImplementedError("the fake network carries IPv4 UDP only")
        return FakeUdpSocket(self._net)


def enable_udp_net() -> UdpNet:
    """Route this trio run's IPv4 UDP sockets through a new in-memory network."""
    net = UdpNet()
    trio.socket.set_custom_socket_factory(_Factory(net))
    return net
