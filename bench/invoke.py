"""Benchmark: a remote actor invocation vs raw trio TCP echo and vs nats-server + nats-py.

Run: ``python bench/invoke.py [--rounds 8] [--requests 1000] [--quick]``.

Who runs what (all on loopback, every server in its own process):

* this process: meshhost host A (the caller; it does not run the actor),
  the raw trio TCP client, and the nats-py client (an asyncio loop on a
  thread of its own, so one trio run holds host A for the whole benchmark);
* child "host B": a meshhost host running the shipped ``echo`` actor (one
  instance; operation ``Echo`` answers its payload).  A and B are two
  lattice members on 127.0.0.61/.62 (profile ``local``, no mDNS, A joins B
  as its static seed, a random lattice secret, fresh data dirs); every call
  from A goes over the Noise session to B (transport channel 1).  Host B
  also echoes requests on a spare transport channel, so the same run shows
  the Noise session alone (no invocation layer, no actor);
* child "raw echo": the length-prefixed trio TCP echo server of
  ``bench/baseline.py``;
* ``nats-server`` (Debian package) and child "nats responder": nats-py
  subscribed to a subject, answering each request by running the same echo
  actor through ``Runtime.call_sync`` on its event loop thread, as host B
  runs it inline after warm-up, so the actor work is equal.

Measured in shuffled rounds (figures are the median over rounds):

* latency: sequential calls of 100 B and 10 KiB, p50 and p99 per round;
* throughput at 100 B with 32 calls outstanding (``--outstanding 1,8,32``
  measures each of several windows): that many tasks, each making one
  call at a time until the round's calls are done (raw trio: the 32 tasks
  share one connection; a writer task sends all queued frames at once, a
  reader task hands replies back in order).  For
  reference, raw trio with a window of 32 requests whose writes are
  coalesced into one ``send_all`` (``bench/baseline.py``) is printed too.

CPUs (``--pin``): by default the throughput rounds run with this process on
one CPU and every server process on another, as two hosts on two machines;
latency rounds run wherever the kernel puts them, as in ``bench/baseline.py``.
Unpinned, the scheduler tends to keep caller and server on one CPU after
sequential ping-pong traffic, which halves throughput with 32 outstanding
(meshhost and the bare session alike) from one round to the next; pinned
sequential calls pay a cross-CPU wake-up each way (raw trio p50 drops, p99
grows when another program holds the pinned CPU).  ``--pin all`` pins every
round, ``--pin none`` none.

It also prints the CPU time per call of every process (from ``/proc``),
which shows where the work is; and a summary against the targets of issue
17 (issue 7 asked for 1.6x and 1.8x of raw trio, issue 17 for 1.8x and 2.0x).

``--metrics-cost`` measures only what monitoring costs (issue 14): the same
sequential 100 B calls with every host's metrics and tracing on (the
default: calls counted in the host's Prometheus registry and its
recent-calls window, and every span recorded in the host's span ring) and
off (the null observer, and a span ring that records nothing), switched on
host A and host B between shuffled
rounds, remote (A -> B) and local (A runs a second echo itself: the cheapest
call, where counting weighs most).  It prints the median p50 of each and
their ratio, against the target of at most 5 % more.

Figures on a shared 2-core machine are noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from baseline import (  # bench/baseline.py, a sibling script
    HEADER,
    RawClient,
    raw_throughput,
    start_nats_server,
    start_raw_server,
    wait_for_port,
)

from meshhost import config as config_mod
from meshhost import examples
from meshhost.errors import CapabilityDenied
from meshhost.host import Host, HostOptions
from meshhost.identity import nkeys
from meshhost.identity.keyring import Keyring
from meshhost.monitor.spans import SpanRing
from meshhost.observe import NULL_OBSERVER

LATTICE = "bench"
HOST_A_IP = "127.0.0.61"
HOST_B_IP = "127.0.0.62"
OPERATION = "Echo"
SIZES = (100, 10240)
WINDOW = 32
"""Calls outstanding in throughput rounds (default of ``--outstanding``; the
summary's throughput targets are at this window)."""
SUBJECT = "bench.echo"
SESSION_CHANNEL = 200
MONITOR_CHANNEL = 201
"""Host B's spare channel that turns its metrics and tracing on (b"on") or off (b"off")."""
TARGET_METRICS_COST = 1.05
"""Issue 14: p50 with metrics and tracing on at most 5 % above p50 with both off."""
"""Host B's plain echo on a transport channel no layer uses: the Noise session
alone, without the invocation layer, measured in the same run."""
CALL_TIMEOUT_S = 10.0
WARMUP_CALLS = 200
"""Per path and size before measuring: sessions, caches, and host B's inline
gate (8 calls on worker threads before the echo actor may run inline)."""
JOIN_TIMEOUT_S = 30.0
SECRET_ENV = "MESHHOST_BENCH_SECRET"
"""How the lattice secret reaches host B (not on its command line)."""

TARGET_RAW_RATIO = {100: 1.8, 10240: 2.0}
"""Issue 17: meshhost p50 at most this many times raw trio's p50."""
TARGET_NATS_FACTOR = 2.0
"""Issues 7 and 17: meshhost at least this many times better than NATS (p50, throughput)."""


def _signed_echo() -> tuple[bytes, str]:
    """The shipped echo actor signed with fresh keys: (module, actor id)."""
    issuer = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)
    module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    return examples.signed("echo", issuer, module), module.public_key


def _make_host(data_dir: Path, ip: str, secret: bytes, seeds: tuple[str, ...]) -> Host:
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = config_mod.load(
        overrides={
            "profile": "local",
            "lattice": LATTICE,
            "bind": ip,
            "mdns": False,
            "seeds": seeds,
            "data_dir": str(data_dir),
        },
        environ={},
    )
    return Host(
        cfg,
        identity=nkeys.generate(nkeys.Prefix.SERVER, os.urandom),
        keyring=Keyring.create(LATTICE, [secret]),
        data_dir=data_dir,
        options=HostOptions(),
    )


# --- child: host B ----------------------------------------------------------------


async def _serve_host_b(root: Path, secret: bytes) -> None:
    host = _make_host(root / "host-b", HOST_B_IP, secret, ())

    async def echo(peer_id: str, payload: bytes) -> bytes:
        return payload

    host.handlers[SESSION_CHANNEL] = echo

    async def monitor(peer_id: str, payload: bytes) -> bytes:
        set_metrics(host, payload == b"on")
        return payload

    host.handlers[MONITOR_CHANNEL] = monitor
    async with trio.open_nursery() as nursery:
        addr = await nursery.start(host.serve)
        module, actor_id = _signed_echo()
        await host.actors.start(module, 1)
        print(f"READY {addr[0]}:{addr[1]} {actor_id}", flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the benchmark closes our stdin
        with trio.move_on_after(3):
            await host.shutdown(leave_timeout_s=0.5, drain_timeout_s=1.0)
        nursery.cancel_scope.cancel()


class _NoSpans(SpanRing):
    """A span ring that records nothing: tracing off, for the cost comparison."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        pass


_SPANS_ON: dict[int, SpanRing] = {}
"""Each host's own span ring, kept while tracing is switched off."""


def set_metrics(host: Host, on: bool) -> None:
    """Monitoring on (calls counted in the host's registry, spans recorded in its ring)
    or off (the null observer, and a ring that records nothing)."""
    assert host.monitor is not None
    actors = host.actors
    actors.set_observer(host.monitor if on else NULL_OBSERVER)
    own = _SPANS_ON.setdefault(id(actors), actors.spans)
    actors.spans = own if on else _NoSpans()


# --- child: nats responder ------------------------------------------------------------


class _NoCapabilities:
    """Host-call handler of the responder's runtime: echo makes no host calls."""

    def host_call(
        self, actor: Any, binding: str, namespace: str, operation: str, payload: bytes
    ) -> bytes:
        raise CapabilityDenied(f"{actor.actor_id} has no capabilities in this benchmark")

    def log(self, actor: Any, level: str, message: str) -> None:
        pass


def _run_nats_responder(port: int, root: Path) -> None:
    import nats

    from meshhost.runtime import Runtime

    runtime = Runtime(root / "nats-responder", _NoCapabilities())
    module, actor_id = _signed_echo()
    runtime.load(module)

    async def serve() -> None:
        nc = await nats.connect(f"nats://127.0.0.1:{port}")

        async def on_msg(msg: Any) -> None:
            await msg.respond(runtime.call_sync(actor_id, OPERATION, msg.data))

        await nc.subscribe(SUBJECT, cb=on_msg)
        await nc.flush()
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await nc.close()

    try:
        asyncio.run(serve())
    finally:
        runtime.close()


# --- measuring helpers -----------------------------------------------------------------


def _pct_us(samples_ns: list[int], q: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


async def _sequential(
    call: Callable[[bytes], Awaitable[bytes]], size: int, count: int
) -> tuple[float, float]:
    """(p50, p99) in µs of ``count`` sequential calls with a ``size``-byte payload."""
    payload = os.urandom(size)
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        answer = await call(payload)
        times.append(time.perf_counter_ns() - start)
        if answer != payload:
            raise RuntimeError(f"wrong echo: {len(answer)} bytes back for {size}")
    return _pct_us(times, 0.5), _pct_us(times, 0.99)


async def _concurrent(
    call: Callable[[bytes], Awaitable[bytes]], size: int, count: int, window: int = WINDOW
) -> float:
    """Calls per second of ``count`` calls made by ``window`` trio tasks."""
    payload = os.urandom(size)
    left = count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            if await call(payload) != payload:
                raise RuntimeError("wrong echo")

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(window):
            nursery.start_soon(worker)
    return count / (time.perf_counter() - start)


class RawMux:
    """Length-prefixed echo client whose calls may come from many tasks at once.

    Like any pipelining client (nats-py does the same), calls queue their
    frames and one writer task sends everything queued in one ``send_all``.
    Replies come back in request order, so a FIFO of waiters pairs them up.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._pending = bytearray()
        self._queued = trio.Event()
        self._waiters: collections.deque[tuple[trio.Event, list[bytes]]] = collections.deque()

    async def run(self) -> None:
        """Write queued frames and read replies until the stream closes."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write)
            await self._read()
            nursery.cancel_scope.cancel()

    async def _write(self) -> None:
        while True:
            await self._queued.wait()
            self._queued = trio.Event()
            data, self._pending = self._pending, bytearray()
            try:
                await self.stream.send_all(data)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return

    async def _read(self) -> None:
        buf = bytearray()
        while True:
            try:
                data = await self.stream.receive_some(1 << 16)
            except trio.ClosedResourceError:  # the benchmark is over
                return
            if not data:
                return
            buf += data
            while len(buf) >= 4:
                (n,) = HEADER.unpack_from(buf)
                if len(buf) < 4 + n:
                    break
                event, box = self._waiters.popleft()
                box.append(bytes(buf[4 : 4 + n]))
                del buf[: 4 + n]
                event.set()

    async def echo(self, payload: bytes) -> bytes:
        event, box = trio.Event(), list[bytes]()
        self._pending += HEADER.pack(len(payload))
        self._pending += payload
        self._waiters.append((event, box))
        self._queued.set()
        await event.wait()
        return box[0]


class AsyncioThread:
    """An asyncio event loop on its own thread, for the nats-py client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await trio.to_thread.run_sync(future.result)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class NatsClient:
    """nats-py request/reply to the responder, driven from trio via AsyncioThread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.aio = AsyncioThread()
        self.nc: Any = None

    async def connect(self) -> None:
        import nats

        async def go() -> Any:
            return await nats.connect(f"nats://127.0.0.1:{self.port}")

        self.nc = await self.aio.run(go())

    async def _request(self, payload: bytes) -> bytes:
        msg = await self.nc.request(SUBJECT, payload, timeout=CALL_TIMEOUT_S)
        return bytes(msg.data)

    async def sequential(self, size: int, count: int) -> tuple[float, float]:
        async def go() -> tuple[float, float]:
            payload = os.urandom(size)
            times = []
            for _ in range(count):
                start = time.perf_counter_ns()
                answer = await self._request(payload)
                times.append(time.perf_counter_ns() - start)
                if answer != payload:
                    raise RuntimeError("wrong echo from the NATS responder")
            return _pct_us(times, 0.5), _pct_us(times, 0.99)

        return await self.aio.run(go())  # type: ignore[no-any-return]

    async def concurrent(self, size: int, count: int, window: int = WINDOW) -> float:
        async def go() -> float:
            payload = os.urandom(size)
            left = count

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    if await self._request(payload) != payload:
                        raise RuntimeError("wrong echo from the NATS responder")

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(window)))
            return count / (time.perf_counter() - start)

        return await self.aio.run(go())  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        if self.nc is not None:
            await self.aio.run(self.nc.close())
        self.aio.close()


# --- processes -------------------------------------------------------------------------


class Children:
    """Child processes of this run; each is asked to stop (stdin EOF), then killed."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[Any]]] = []

    def spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.procs.append((name, proc))
        return proc

    def adopt(self, name: str, proc: subprocess.Popen[Any]) -> None:
        self.procs.append((name, proc))

    @staticmethod
    def ready_line(name: str, proc: subprocess.Popen[str], timeout_s: float = 60) -> list[str]:
        assert proc.stdout is not None
        line: list[str] = []

        def read() -> None:
            line.extend(proc.stdout.readline().split())  # type: ignore[union-attr]

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not line or line[0] != "READY":
            raise SystemExit(f"benchmark child {name!r} did not start (exit code {proc.poll()})")
        return line[1:]

    def close(self) -> None:
        """Newest first: the NATS responder leaves before nats-server stops."""
        for _name, proc in reversed(self.procs):
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            else:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Servers:
    """What runs where, for the report."""

    host_b: int
    raw: int
    nats_port: int | None = None
    nats_server: int = 0
    nats_responder: int = 0
    nats_note: str = ""
    """nats-server's version, or why the NATS comparison was skipped."""
    placement: str = ""

    def pids(self, mode: str) -> list[int]:
        """Server-side processes of ``mode`` (the caller is always this process)."""
        if mode in ("mesh", "session"):
            return [self.host_b]
        if mode == "nats":
            return [self.nats_server, self.nats_responder]
        return [self.raw]


def _nats_setup(children: Children, root: Path, servers: Servers) -> None:
    """Start nats-server and the responder, or note in ``servers`` why not."""
    if shutil.which("nats-server") is None:
        servers.nats_note = "nats-server is not installed (Debian: apt-get install nats-server)"
        return
    try:
        import nats  # noqa: F401
    except ImportError:
        servers.nats_note = "nats-py is not installed (pip install -e '.[bench]')"
        return
    started = start_nats_server()
    assert started is not None
    server, port = started
    children.adopt("nats-server", server)
    version = subprocess.run(
        ["nats-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    responder = children.spawn("nats responder", "--nats-responder", str(port), str(root))
    children.ready_line("nats responder", responder)
    servers.nats_port, servers.nats_server, servers.nats_responder = port, server.pid, responder.pid
    servers.nats_note = version.removeprefix("nats-server:").strip() or "(version unknown)"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (every thread); 0 without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Results:
    lat: dict[tuple[str, int], list[tuple[float, float]]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    """(mode, size) -> per-round (p50, p99) in µs."""
    tput: dict[tuple[str, int], list[float]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    """(mode, calls outstanding) -> per-round calls/s."""
    cpu: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """(mode, kind) -> [calls, caller CPU s, server-side CPU s per server pid...]."""

    def add_cpu(self, key: tuple[str, str], calls: int, used: list[float]) -> None:
        totals = self.cpu.setdefault(key, [0.0] * (1 + len(used)))
        totals[0] += calls
        for i, value in enumerate(used):
            totals[1 + i] += value


MODES = ("raw", "raw-coalesced", "session", "mesh", "nats")


class Placement:
    """Which CPUs the processes may use, switched between rounds (Linux; else a no-op)."""

    def __init__(self, policy: str, callers: list[int], servers: list[int]) -> None:
        self.policy = policy
        self.callers = callers
        self.servers = [pid for pid in dict.fromkeys(servers) if pid]
        self.cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.usable = len(self.cpus) >= 2 and policy != "none"

    def describe(self) -> str:
        if self.policy == "none":
            return "not pinned (--pin none): the kernel places every process"
        if not self.usable:
            return f"not pinned: {len(self.cpus)} CPU(s) available"
        which = "every round" if self.policy == "all" else "throughput rounds"
        return (
            f"{which} pinned: this process on CPU {self.cpus[0]}, every server on CPU"
            f" {self.cpus[1]}; other rounds: wherever the kernel puts them"
        )

    def apply(self, *, pinned: bool) -> None:
        if not self.usable:
            return
        pinned = pinned or self.policy == "all"
        everywhere = set(self.cpus)
        for pids, cpu in ((self.callers, self.cpus[0]), (self.servers, self.cpus[1])):
            for pid in pids:
                _set_affinity(pid, {cpu} if pinned else everywhere)


def _set_affinity(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` (sched_setaffinity alone moves only one thread)."""
    try:
        tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # the thread ended meanwhile
            pass


# --- the benchmark -----------------------------------------------------------------------


async def _wait_for_actor(host: Host, actor_id: str) -> None:
    with trio.move_on_after(JOIN_TIMEOUT_S):
        while not host.directory.hosts_running(actor_id):
            await trio.sleep(0.02)
        return
    raise SystemExit(f"host A did not learn where actor {actor_id} runs in {JOIN_TIMEOUT_S} s")


async def _bench(args: argparse.Namespace, root: Path, children: Children) -> None:
    secret = os.urandom(32)
    host_b = children.spawn("host B", "--host-b", str(root), env={SECRET_ENV: secret.hex()})
    b_addr, actor_id = children.ready_line("host B", host_b)
    raw_proc, raw_port = start_raw_server()
    children.adopt("raw echo", raw_proc)
    wait_for_port(raw_port)
    servers = Servers(host_b=host_b.pid, raw=raw_proc.pid)
    _nats_setup(children, root, servers)
    placement = Placement(args.pin, [os.getpid()], [p for m in MODES for p in servers.pids(m)])
    servers.placement = placement.describe()
    results = Results()

    host = _make_host(root / "host-a", HOST_A_IP, secret, (b_addr,))
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        actors = host.actors
        await _wait_for_actor(host, actor_id)
        if actor_id in {a.actor_id for a in actors.runtime.actors()}:
            raise SystemExit("host A runs the actor itself: the call would not be remote")

        async def mesh(payload: bytes) -> bytes:
            return await actors.invoke(actor_id, OPERATION, payload, timeout_s=CALL_TIMEOUT_S)

        b_id = host.directory.hosts_running(actor_id)[0].host_id

        async def session(payload: bytes) -> bytes:
            return await host.send_to_host(b_id, SESSION_CHANNEL, payload, CALL_TIMEOUT_S)

        streams = []
        for _ in range(2):
            stream = await trio.open_tcp_stream("127.0.0.1", raw_port)
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            streams.append(stream)
        raw = RawClient(streams[0])  # sequential calls: send, then read the reply
        raw_mux = RawMux(streams[1])  # 32 tasks
        nursery.start_soon(raw_mux.run)
        nats_client = NatsClient(servers.nats_port) if servers.nats_port is not None else None
        if nats_client is not None:
            await nats_client.connect()

        warm = min(WARMUP_CALLS, args.requests)
        for size in SIZES:
            await _sequential(session, size, warm)
            await _concurrent(session, size, warm)
            await _sequential(mesh, size, warm)
            await _sequential(raw.echo, size, warm)
            await _concurrent(raw_mux.echo, size, warm)
            await _concurrent(mesh, size, warm)
            if nats_client is not None:
                await nats_client.sequential(size, warm)
                await nats_client.concurrent(size, warm)

        modes = ["raw", "session", "mesh"] + (["nats"] if nats_client is not None else [])
        placement.apply(pinned=False)
        tput_kinds = [f"tput{window}" for window in args.outstanding]
        plan = [(mode, kind) for mode in modes for kind in ("lat100", "lat10k", *tput_kinds)]
        plan.append(("raw-coalesced", f"tput{WINDOW}"))
        rng = random.Random(os.urandom(8))
        sequential_calls = {"raw": raw.echo, "session": session, "mesh": mesh}
        concurrent_calls = {"raw": raw_mux.echo, "session": session, "mesh": mesh}
        for _ in range(args.rounds):
            order = plan[:]
            rng.shuffle(order)
            for mode, kind in order:
                placement.apply(pinned=kind.startswith("tput"))
                pids = [os.getpid(), *servers.pids(mode)]
                before = [_cpu_s(pid) for pid in pids]
                if kind.startswith("tput"):
                    window = int(kind[4:])
                    count = args.requests * 2
                    if mode == "raw-coalesced":
                        rate = await raw_throughput(raw_port, 100, count)
                    elif mode == "nats":
                        assert nats_client is not None
                        rate = await nats_client.concurrent(100, count, window)
                    else:
                        rate = await _concurrent(concurrent_calls[mode], 100, count, window)
                    results.tput[(mode, window)].append(rate)
                else:
                    count = args.requests
                    size = 100 if kind == "lat100" else 10240
                    if mode == "nats":
                        assert nats_client is not None
                        result = await nats_client.sequential(size, count)
                    else:
                        result = await _sequential(sequential_calls[mode], size, count)
                    results.lat[(mode, size)].append(result)
                used = [_cpu_s(pid) - b for pid, b in zip(pids, before, strict=True)]
                results.add_cpu((mode, kind), count, used)

        if nats_client is not None:
            await nats_client.aclose()
        for stream in streams:
            await stream.aclose()
        with trio.move_on_after(3):
            await host.shutdown(leave_timeout_s=0.3, drain_timeout_s=1.0)
        nursery.cancel_scope.cancel()

    _report(args, servers, results)


async def _bench_metrics_cost(args: argparse.Namespace, root: Path, children: Children) -> None:
    """Sequential 100 B calls with metrics and tracing on and off on both hosts, in
    shuffled rounds."""
    secret = os.urandom(32)
    host_b = children.spawn("host B", "--host-b", str(root), env={SECRET_ENV: secret.hex()})
    b_addr, actor_id = children.ready_line("host B", host_b)
    host = _make_host(root / "host-a", HOST_A_IP, secret, (b_addr,))
    p50: dict[tuple[str, bool], list[float]] = collections.defaultdict(list)
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        actors = host.actors
        await _wait_for_actor(host, actor_id)
        b_id = host.directory.hosts_running(actor_id)[0].host_id
        module, local_id = _signed_echo()
        await actors.start(module, 1)

        async def remote(payload: bytes) -> bytes:
            return await actors.invoke(actor_id, OPERATION, payload, timeout_s=CALL_TIMEOUT_S)

        async def local(payload: bytes) -> bytes:
            return await actors.invoke(local_id, OPERATION, payload, timeout_s=CALL_TIMEOUT_S)

        async def switch(on: bool) -> None:
            set_metrics(host, on)
            await host.send_to_host(b_id, MONITOR_CHANNEL, b"on" if on else b"off", CALL_TIMEOUT_S)

        calls = {"remote": remote, "local": local}
        warm = min(WARMUP_CALLS, args.requests)
        for on in (False, True):
            await switch(on)
            for call in calls.values():
                await _sequential(call, 100, warm)
        plan = [(where, on) for where in calls for on in (False, True)]
        rng = random.Random(os.urandom(8))
        for _ in range(args.rounds):
            rng.shuffle(plan)
            for where, on in plan:
                await switch(on)
                p50[(where, on)].append((await _sequential(calls[where], 100, args.requests))[0])
        await switch(True)
        with trio.move_on_after(3):
            await host.shutdown(leave_timeout_s=0.3, drain_timeout_s=1.0)
        nursery.cancel_scope.cancel()

    print(
        "monitoring cost (metrics + tracing): sequential 100 B calls, "
        f"{args.rounds} shuffled rounds x "
        f"{args.requests} calls, median of the rounds' p50 (µs)"
    )
    print(
        f"  {'':<34}{'both off':>12}{'both on':>12}{'on / off':>10}  met (<= "
        f"{TARGET_METRICS_COST:.2f}x)"
    )
    labels = {"remote": "invocation A -> B (echo on B)", "local": "invocation A -> A (echo on A)"}
    for where in calls:
        off, on = _median(p50[(where, False)]), _median(p50[(where, True)])
        ratio = on / off
        print(
            f"  {labels[where]:<34}{off:>12.1f}{on:>12.1f}{ratio:>9.3f}x  "
            f"{'yes' if ratio <= TARGET_METRICS_COST else 'NO'}"
        )


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _report(args: argparse.Namespace, servers: Servers, results: Results) -> None:
    have_nats = servers.nats_port is not None
    lat, tput = results.lat, results.tput

    def p(mode: str, size: int, i: int) -> float:
        return _median([r[i] for r in lat[(mode, size)]])

    print("processes:")
    print(
        f"  pid {os.getpid()} (this): host A {HOST_A_IP}, the caller (no actor); raw trio client;"
        " nats-py client (asyncio thread)"
    )
    print(f"  pid {servers.host_b}: host B {HOST_B_IP}, runs the echo actor (1 instance)")
    print(f"  pid {servers.raw}: raw trio TCP echo server (length-prefixed)")
    if have_nats:
        print(
            f"  pid {servers.nats_server} nats-server {servers.nats_note} on 127.0.0.1:"
            f"{servers.nats_port}; pid {servers.nats_responder} nats-py responder"
            " (echo via Runtime.call_sync)"
        )
    else:
        print(f"NATS comparison skipped: {servers.nats_note}")
    print(f"CPUs: {servers.placement}")
    print(
        f"\nsequential calls, {args.rounds} shuffled rounds x {args.requests} calls,"
        " median over rounds (µs)"
    )
    labels = {
        "raw": "raw trio TCP echo",
        "session": "Noise session echo (A -> B, no actor)",
        "mesh": "meshhost invocation A -> B (echo actor)",
        "nats": "nats-server + nats-py (echo actor)",
    }
    print(
        f"{'':<48}{'p50 100 B':>10}{'p99':>8}{'p50 10 KiB':>11}{'p99':>8}"
        f"{'p50 / raw: 100 B   10 KiB':>29}"
    )
    for mode in ["raw", "session", "mesh"] + (["nats"] if have_nats else []):
        cols = [p(mode, 100, 0), p(mode, 100, 1), p(mode, 10240, 0), p(mode, 10240, 1)]
        print(
            f"latency {labels[mode]:<40}{cols[0]:>10.1f}{cols[1]:>8.1f}{cols[2]:>11.1f}"
            f"{cols[3]:>8.1f}{cols[0] / p('raw', 100, 0):>19.2f}x"
            f"{cols[2] / p('raw', 10240, 0):>8.2f}x"
        )

    for window in args.outstanding:
        print(
            f"\nthroughput, 100 B, {window} calls outstanding, {args.requests * 2} calls per"
            " round, median over rounds"
        )
        rows = [
            ("raw", f"raw trio ({window} tasks, one connection, writer task)"),
            ("raw-coalesced", f"raw trio (window of {window}, writes coalesced; reference)"),
            ("session", f"Noise session echo A -> B ({window} tasks)"),
            ("mesh", f"meshhost A -> B ({window} tasks)"),
        ]
        if have_nats:
            rows.append(("nats", f"nats-server + nats-py ({window} tasks)"))
        for mode, label in rows:
            if tput.get((mode, window)):
                rate = _median(tput[(mode, window)])
                print(f"throughput {label:<52} {rate:>9,.0f} calls/s")

    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    fewest = min((totals[0] for totals in results.cpu.values()), default=1)
    print(
        "\nCPU per call, µs (user+sys of each whole process over all rounds, counted in"
        f" {tick_us / 1000:.0f} ms ticks: ±{tick_us / fewest:.1f} µs here; the caller also runs"
        " host A's background work)"
    )
    names = {
        "raw": ["echo server"],
        "raw-coalesced": ["echo server"],
        "mesh": ["host B"],
        "session": ["host B"],
        "nats": ["nats-server", "responder"],
    }
    kinds = {f"tput{window}": f"{window} outstanding 100 B" for window in args.outstanding}
    kinds[f"tput{WINDOW}"] = f"{WINDOW} outstanding 100 B"
    kinds |= {
        "lat100": "sequential 100 B",
        "lat10k": "sequential 10 KiB",
    }
    for (mode, kind), totals in sorted(results.cpu.items()):
        calls = totals[0]
        parts = [f"caller {totals[1] / calls * 1e6:6.1f}"] + [
            f"{name} {value / calls * 1e6:6.1f}"
            for name, value in zip(names[mode], totals[2:], strict=True)
        ]
        print(f"cpu {mode:<13} {kinds[kind]:<20} " + "   ".join(parts))

    window = WINDOW if WINDOW in args.outstanding else max(args.outstanding)
    mesh_rate = _median(tput[("mesh", window)])
    rows_out: list[tuple[str, float, str]] = []
    for size in SIZES:
        ratio = p("mesh", size, 0) / p("raw", size, 0)
        limit = TARGET_RAW_RATIO[size]
        rows_out.append(
            (
                f"p50 meshhost / raw trio at {size} B <= {limit:.1f}x",
                ratio,
                "yes" if ratio <= limit else "NO",
            )
        )
    if have_nats:
        for size in SIZES:
            factor = p("nats", size, 0) / p("mesh", size, 0)
            rows_out.append(
                (
                    f"p50 NATS / meshhost at {size} B >= {TARGET_NATS_FACTOR:.1f}x",
                    factor,
                    "yes" if factor >= TARGET_NATS_FACTOR else "NO",
                )
            )
        factor = mesh_rate / _median(tput[("nats", window)])
        rows_out.append(
            (
                f"throughput meshhost / NATS >= {TARGET_NATS_FACTOR:.1f}x",
                factor,
                "yes" if factor >= TARGET_NATS_FACTOR else "NO",
            )
        )
    rows_out.append(
        (
            f"throughput meshhost / raw trio ({window} tasks)",
            mesh_rate / _median(tput[("raw", window)]),
            "(no target)",
        )
    )
    for size in SIZES:
        rows_out.append(
            (
                f"p50 meshhost / Noise session echo at {size} B",
                p("mesh", size, 0) / p("session", size, 0),
                "(no target)",
            )
        )
    print("\nsummary (issue 17 targets)")
    print(f"  {'target':<44} {'measured':>9}  met")
    for label, value, met in rows_out:
        print(f"  {label:<44} {value:>8.2f}x  {met}")
    if not have_nats:
        print("  NATS targets: skipped (see above)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--requests",
        type=int,
        default=1000,
        help="sequential calls per round and size (throughput: twice as many)",
    )
    parser.add_argument(
        "--pin",
        choices=("throughput", "all", "none"),
        default="throughput",
        help="rounds that run with the callers on one CPU and every server on"
        " another (default: throughput)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 2 rounds of 50 calls (figures meaningless)",
    )
    parser.add_argument(
        "--metrics-cost",
        action="store_true",
        help="only compare p50 with every host's metrics and tracing on and off",
    )
    parser.add_argument(
        "--outstanding",
        default=str(WINDOW),
        metavar="N[,N...]",
        help=f"calls outstanding in throughput rounds, a comma-separated list (default {WINDOW})",
    )
    parser.add_argument("--host-b", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument(
        "--nats-responder", nargs=2, metavar=("PORT", "ROOT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.host_b:
        trio.run(_serve_host_b, Path(args.host_b), bytes.fromhex(os.environ.pop(SECRET_ENV)))
        return
    if args.nats_responder:
        _run_nats_responder(int(args.nats_responder[0]), Path(args.nats_responder[1]))
        return
    if args.quick:
        args.rounds, args.requests = 2, 50
    if args.rounds < 1 or args.requests < 1:
        parser.error("--rounds and --requests must be at least 1")
    try:
        args.outstanding = sorted({int(n) for n in args.outstanding.split(",")})
    except ValueError:
        parser.error(f"--outstanding takes numbers separated by commas, got {args.outstanding!r}")
    if args.outstanding[0] < 1:
        parser.error("--outstanding: every window must be at least 1")
    root = Path(tempfile.mkdtemp(prefix="meshhost-bench-invoke-"))
    children = Children()
    try:
        trio.run(_bench_metrics_cost if args.metrics_cost else _bench, args, root, children)
    finally:
        children.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
