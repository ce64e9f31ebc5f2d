"""Baselines measured in the same run as meshhost: raw trio TCP echo and NATS.

Every benchmark in bench/ compares itself with these, on this machine, in
this run, because the machines are shared and absolute numbers drift.

* raw trio TCP echo: a server process that echoes length-prefixed messages;
  the client (this process) sends one at a time (latency) or keeps 32
  outstanding on one connection with writes coalesced (throughput).
* NATS: ``nats-server`` (Debian package) on loopback, a responder process
  with nats-py answering requests by running the given handler, and a nats-py
  client doing request/reply.

Run standalone to print just the baselines: ``python bench/baseline.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

HEADER = struct.Struct(">I")
WINDOW = 32
"""Requests outstanding in throughput runs."""


@dataclass(frozen=True)
class Latency:
    p50_us: float
    p99_us: float

    def __str__(self) -> str:
        return f"p50 {self.p50_us:7.1f} µs   p99 {self.p99_us:7.1f} µs"


def percentiles(samples_s: list[float]) -> Latency:
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Latency(statistics.median(ordered) * 1e6, p99 * 1e6)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


# --- raw trio TCP echo -------------------------------------------------------


async def _raw_server(port: int) -> None:
    async def echo(stream: trio.SocketStream) -> None:
        buf = bytearray()
        try:
            while True:
                data = await stream.receive_some(1 << 16)
                if not data:
                    return
                buf += data
                out = bytearray()
                while len(buf) >= 4:
                    (n,) = HEADER.unpack_from(buf)
                    if len(buf) < 4 + n:
                        break
                    out += buf[: 4 + n]
                    del buf[: 4 + n]
                if out:
                    await stream.send_all(out)
        except trio.BrokenResourceError:
            return

    await trio.serve_tcp(echo, port, host="127.0.0.1")


class RawClient:
    """Length-prefixed echo client over one trio TCP stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def _read(self) -> bytes:
        while True:
            if len(self.buf) >= 4:
                (n,) = HEADER.unpack_from(self.buf)
                if len(self.buf) >= 4 + n:
                    msg = bytes(self.buf[4 : 4 + n])
                    del self.buf[: 4 + n]
                    return msg
            data = await self.stream.receive_some(1 << 16)
            if not data:
                raise RuntimeError("echo server closed the connection")
            self.buf += data

    async def echo(self, payload: bytes) -> bytes:
        await self.stream.send_all(HEADER.pack(len(payload)) + payload)
        return await self._read()


def start_raw_server() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--raw-server", str(port)])
    wait_for_port(port)
    return proc, port


async def raw_latency(port: int, size: int, count: int) -> Latency:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = RawClient(stream)
    payload = os.urandom(size)
    samples = []
    for _ in range(count // 10):
        await client.echo(payload)  # warm-up
    for _ in range(count):
        t0 = time.perf_counter()
        await client.echo(payload)
        samples.append(time.perf_counter() - t0)
    await stream.aclose()
    return percentiles(samples)


async def raw_throughput(port: int, size: int, count: int) -> float:
    """Requests per second with WINDOW outstanding; writes of a window are coalesced."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = RawClient(stream)
    frame = HEADER.pack(size) + os.urandom(size)
    t0 = time.perf_counter()
    done = 0
    while done < count:
        n = min(WINDOW, count - done)
        await stream.send_all(frame * n)
        for _ in range(n):
            await client._read()
        done += n
    elapsed = time.perf_counter() - t0
    await stream.aclose()
    return count / elapsed


# --- NATS --------------------------------------------------------------------


def start_nats_server() -> tuple[subprocess.Popen[bytes], int] | None:
    """Start nats-server on loopback; None when it is not installed."""
    binary = shutil.which("nats-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return proc, port


async def nats_latency(port: int, subject: str, size: int, count: int) -> Latency:
    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    payload = os.urandom(size)
    samples = []
    for _ in range(count // 10):
        await nc.request(subject, payload, timeout=5)
    for _ in range(count):
        t0 = time.perf_counter()
        await nc.request(subject, payload, timeout=5)
        samples.append(time.perf_counter() - t0)
    await nc.close()
    return percentiles(samples)


async def nats_throughput(port: int, subject: str, size: int, count: int) -> float:
    import asyncio

    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    payload = os.urandom(size)
    t0 = time.perf_counter()
    done = 0
    while done < count:
        n = min(WINDOW, count - done)
        await asyncio.gather(*(nc.request(subject, payload, timeout=5) for _ in range(n)))
        done += n
    elapsed = time.perf_counter() - t0
    await nc.close()
    return count / elapsed


def run_nats_responder(
    port: int, subject: str, make_handler: Callable[[], Callable[[bytes], bytes]]
) -> None:
    """Run a nats-py responder answering ``subject`` with ``handler(payload)`` (blocks)."""
    import asyncio

    import nats

    handler = make_handler()

    async def serve() -> None:
        nc = await nats.connect(f"nats://127.0.0.1:{port}")

        async def on_msg(msg: object) -> None:
            await msg.respond(handler(msg.data))  # type: ignore[attr-defined]

        await nc.subscribe(subject, cb=on_msg)
        await nc.flush()
        print("ready", flush=True)
        while True:
            await asyncio.sleep(3600)

    asyncio.run(serve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    if args.raw_server:
        trio.run(_raw_server, args.raw_server)
        return
    proc, port = start_raw_server()
    try:
        for size in (100, 10240):
            print(f"raw trio TCP echo {size:>6} B: {trio.run(raw_latency, port, size, args.count)}")
        rate = trio.run(raw_throughput, port, 100, args.count * 5)
        print(f"raw trio TCP echo, {WINDOW} outstanding, 100 B: {rate:,.0f} req/s")
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
