"""Benchmark: request/response RTT over a Noise session vs raw trio TCP, and streaming.

Run: ``python bench/transport.py [--rounds 8] [--requests 1000]``.

A server process runs two echo services on loopback: a raw trio TCP echo
(4-byte length prefix, the reply is the same bytes) and a meshhost
``Transport`` whose handler returns the payload.  The client (this process)
measures, in shuffled rounds, sequential request-response round trips of 100 B
and 10 KiB on each, and prints p50/p99 (median over rounds) and the ratio of
session to raw from the same run.  Then it streams 64 MiB up (the server
answers with the length) and 64 MiB down, one request at a time, and prints
MiB/s.  Writes are not pipelined: one request outstanding at a time.  It also
prints the cost of the sans-IO session work alone (framing, encryption and
parsing on both sides, no sockets, no trio) for each size, which is the part
of the difference to raw TCP that no driver change can remove.

Figures on a shared 2-core machine are noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import struct
import subprocess
import sys
import time
from functools import partial

import trio

from meshhost.config import TransportConfig
from meshhost.identity.nkeys import Prefix, generate
from meshhost.transport.pool import Transport

LATTICE = "bench"
PSK = hashlib.blake2b(b"bench psk", digest_size=32).digest()
STREAM_BYTES = 64 << 20
_LEN = struct.Struct("!I")


def _key(seed: int):  # type: ignore[no-untyped-def]
    return generate(Prefix.SERVER, lambda n: hashlib.sha256(b"bench%d" % seed).digest()[:n])


# --- server process ------------------------------------------------------------


async def _raw_echo(stream: trio.SocketStream) -> None:
    buf = bytearray()
    try:
        while True:
            data = await stream.receive_some(1 << 16)
            if not data:
                return
            buf += data
            while len(buf) >= 4:
                (n,) = _LEN.unpack_from(buf)
                if len(buf) < 4 + n:
                    break
                msg = bytes(buf[: 4 + n])
                del buf[: 4 + n]
                await stream.send_all(msg)
    except trio.BrokenResourceError:
        return


async def _serve() -> None:
    big = os.urandom(STREAM_BYTES)

    async def handler(peer_id: str, channel: int, payload: bytes) -> bytes:
        if channel == 2:
            return struct.pack("!Q", len(payload))
        if channel == 3:
            return big
        return payload

    transport = Transport(_key(1), LATTICE, PSK, TransportConfig(), handler)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _raw_echo, 0, host="127.0.0.1"))
        raw_port = listeners[0].socket.getsockname()[1]
        _, session_port = await nursery.start(transport.serve, "127.0.0.1", 0)
        print(f"PORTS {raw_port} {session_port}", flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the client closes our stdin
        nursery.cancel_scope.cancel()


# --- client --------------------------------------------------------------------


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


async def _raw_round(stream: trio.SocketStream, size: int, count: int) -> list[int]:
    msg = _LEN.pack(size) + os.urandom(size)
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        await stream.send_all(msg)
        got = 0
        while got < len(msg):
            got += len(await stream.receive_some(1 << 16))
        times.append(time.perf_counter_ns() - start)
    return times


async def _session_round(
    transport: Transport, addr: tuple[str, int], size: int, count: int
) -> list[int]:
    payload = os.urandom(size)
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        await transport.request(addr, 1, payload, timeout_s=10)
        times.append(time.perf_counter_ns() - start)
    return times


def _core_round_trip_us(size: int, count: int = 5000) -> float:
    """Mean cost in microseconds of one request/response through two sans-IO sessions."""
    from meshhost.transport.session import LocalIdentity, Session

    config = TransportConfig()

    def session(initiator: bool, seed: int) -> Session:
        rb = random.Random(seed).randbytes
        return Session(
            initiator=initiator,
            identity=LocalIdentity.create(_key(seed), rb),
            lattice=LATTICE,
            psk=PSK,
            config=config,
            random_bytes=rb,
            now=0.0,
        )

    a, b = session(True, 1), session(False, 2)
    a.start()
    for _ in range(4):  # the handshake: three messages and READY
        b.receive_data(bytes(a.data_to_send()), 0.0)
        a.receive_data(bytes(b.data_to_send()), 0.0)
    while a.next_event() or b.next_event():
        pass
    payload = os.urandom(size)

    def one() -> None:
        a.send_request(1, payload, 10_000)
        b.receive_data(a.data_to_send(), 0.0)
        event = b.next_event()
        b.send_response(event.request_id, event.payload)  # type: ignore[union-attr]
        a.receive_data(b.data_to_send(), 0.0)
        a.next_event()

    for _ in range(200):
        one()
    start = time.perf_counter()
    for _ in range(count):
        one()
    return (time.perf_counter() - start) / count * 1e6


async def _client(raw_port: int, session_port: int, rounds: int, requests: int) -> None:
    async def ignore(peer_id: str, channel: int, payload: bytes) -> bytes:
        return b""

    transport = Transport(_key(2), LATTICE, PSK, TransportConfig(), ignore)
    addr = ("127.0.0.1", session_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.serve, "127.0.0.1", 0)
        stream = await trio.open_tcp_stream("127.0.0.1", raw_port)
        # Warm up both paths (handshake, caches).
        await _raw_round(stream, 100, 200)
        await _session_round(transport, addr, 100, 200)
        plan = [(mode, size) for mode in ("raw", "session") for size in (100, 10240)]
        results: dict[tuple[str, int], list[tuple[float, float]]] = {k: [] for k in plan}
        rng = random.Random(1)
        for _ in range(rounds):
            order = plan[:]
            rng.shuffle(order)
            for mode, size in order:
                if mode == "raw":
                    times = await _raw_round(stream, size, requests)
                else:
                    times = await _session_round(transport, addr, size, requests)
                results[(mode, size)].append((_pct(times, 0.5), _pct(times, 0.99)))
        await stream.aclose()

        print(f"request-response RTT, {rounds} shuffled rounds x {requests} sequential requests")
        heads = ("raw p50", "raw p99", "sess p50", "sess p99", "p50 ratio")
        print(f"{'size':>8} " + " ".join(f"{h:>9}" for h in heads))
        for size in (100, 10240):
            raw50 = statistics.median(r[0] for r in results[("raw", size)])
            raw99 = statistics.median(r[1] for r in results[("raw", size)])
            s50 = statistics.median(r[0] for r in results[("session", size)])
            s99 = statistics.median(r[1] for r in results[("session", size)])
            print(
                f"{size:>7}B {raw50:>7.1f}us {raw99:>7.1f}us {s50:>7.1f}us {s99:>7.1f}us "
                f"{s50 / raw50:>8.2f}x"
            )

        # Where the difference goes: the sans-IO session work alone (frame,
        # encrypt, decrypt, parse on both sides), no sockets and no trio.
        for size in (100, 10240):
            print(
                f"{size:>7}B session core (both sides, sans-IO): "
                f"{_core_round_trip_us(size):.1f}us per round trip"
            )

        payload = os.urandom(STREAM_BYTES)
        start = time.perf_counter()
        reply = await transport.request(addr, 2, payload, timeout_s=120)
        up = time.perf_counter() - start
        assert struct.unpack("!Q", reply)[0] == STREAM_BYTES
        start = time.perf_counter()
        reply = await transport.request(addr, 3, b"", timeout_s=120)
        down = time.perf_counter() - start
        assert len(reply) == STREAM_BYTES
        mib = STREAM_BYTES / (1 << 20)
        print(
            f"streaming {mib:.0f} MiB over one session: upload {mib / up:.0f} MiB/s, "
            f"download {mib / down:.0f} MiB/s"
        )
        await transport.aclose()
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--pin", action="store_true", help="pin client and server to different CPUs"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin and len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[1] if args.serve else cpus[0]})
    if args.serve:
        trio.run(_serve)
        return
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"] + (["--pin"] if args.pin else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if not line or line[0] != "PORTS":
            raise SystemExit("benchmark server did not start")
        trio.run(_client, int(line[1]), int(line[2]), args.rounds, args.requests)
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
