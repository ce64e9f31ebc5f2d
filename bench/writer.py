"""Benchmark: how long the trio thread is blocked while gossip brings directory writes.

Run: ``python bench/writer.py [--puts 200] [--concurrency 16] [--rounds 3]``.

Two hosts in this process on loopback (profile ``local``, no mDNS, B joins A
as its seed, data dirs on the disk under ``--dir``, default the system temp
dir).  Per round, B serves a burst of ``--puts`` ``config_put`` control
requests, ``--concurrency`` at a time, through its control dispatcher (what
the CLI's requests run); A learns them by gossip (piggyback and push-pull)
and persists them in its directory log.  Measured:

* per gossip merge on A (``notify_message``, ``merge_remote_state``,
  ``merge_sync_answer``: the directory work a SWIM datagram or a push-pull
  causes on the trio thread): mean and largest duration;
* the largest gap of a checkpoint loop (``trio.sleep(0.001)`` in a loop,
  minus the 1 ms it asked for): how long the trio thread was unavailable to
  anything else, both hosts' work included;
* ``os.fsync`` calls: how many ran on the trio thread, how many in all, per
  host (counted by the file's data dir), against the number of puts: group
  commit makes several acknowledged writes share one fsync.

Figures on a shared machine are noisy: compare runs of the same build
(before/after) made back to back, and the ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from meshhost.host import Host, HostOptions
from meshhost.identity.keyring import generate_secret
from meshhost.testing import make_host

LATTICE = "bench-writer"
# Host numbers of meshhost.testing.make_host: 127.0.0.71 and .72, data dirs h51, h52.
A, B = 51, 52


class FsyncLog:
    """Wraps ``os.fsync``: records (data dir, on the trio thread?) of every call."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots
        self.trio_thread: int | None = None
        self.calls: list[tuple[str, bool]] = []
        self._real = os.fsync

    def __enter__(self) -> FsyncLog:
        real = self._real

        def fsync(fd: Any) -> None:
            try:
                path = os.readlink(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}")
            except OSError:
                path = "?"
            who = next((n for n, r in self.roots.items() if path.startswith(str(r))), "other")
            self.calls.append((who, threading.get_ident() == self.trio_thread))
            real(fd)

        os.fsync = fsync
        return self

    def __exit__(self, *exc: object) -> None:
        os.fsync = self._real

    def count(self, who: str, on_trio: bool | None = None) -> int:
        return sum(1 for w, t in self.calls if w == who and (on_trio is None or t == on_trio))


def _timed(durations: list[float], fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - began)

    return wrapper


async def _gap_loop(gaps: list[float], stop: trio.Event) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        await trio.sleep(0.001)
        gaps.append(time.perf_counter() - began - 0.001)


async def _round(
    n: int, a: Host, b: Host, puts: int, concurrency: int, fsyncs: FsyncLog
) -> dict[str, float]:
    merges: list[float] = []
    directory = a.directory
    saved = {
        name: getattr(directory, name)
        for name in ("notify_message", "merge_remote_state", "merge_sync_answer")
    }
    for name, fn in saved.items():
        setattr(directory, name, _timed(merges, fn))
    gaps: list[float] = []
    stop = trio.Event()
    before = list(fsyncs.calls)
    fsyncs.calls.clear()
    keys = [f"r{n}-k{i}" for i in range(puts)]
    latencies: list[float] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_gap_loop, gaps, stop)
            queue = iter(keys)

            async def writer() -> None:
                for key in queue:
                    began = time.perf_counter()
                    await b.control.dispatch("config_put", {"key": key, "value": "v" * 40})
                    latencies.append(time.perf_counter() - began)

            async with trio.open_nursery() as writers:
                for _ in range(concurrency):
                    writers.start_soon(writer)
            with trio.fail_after(60):
                while any(directory.get("config", k) is None for k in keys):
                    await trio.sleep(0.01)
            await trio.sleep(0.2)  # the tail of the gossip (repeats) lands too
            stop.set()
    finally:
        for name, fn in saved.items():
            setattr(directory, name, fn)
    result = {
        "merges": len(merges),
        "merge_mean_us": statistics.fmean(merges) * 1e6 if merges else 0.0,
        "merge_max_ms": max(merges, default=0.0) * 1e3,
        "gap_max_ms": max(gaps, default=0.0) * 1e3,
        "gap_p99_ms": sorted(gaps)[int(len(gaps) * 0.99)] * 1e3 if gaps else 0.0,
        "put_p50_ms": statistics.median(latencies) * 1e3,
        "a_fsync_trio": fsyncs.count("a", True),
        "a_fsync_all": fsyncs.count("a"),
        "b_fsync_trio": fsyncs.count("b", True),
        "b_fsync_all": fsyncs.count("b"),
    }
    fsyncs.calls[:0] = before
    return result


async def _bench(args: argparse.Namespace, root: Path) -> None:
    secret = generate_secret()
    quiet = HostOptions(monitor=False)
    a = make_host(root, A, secret=secret, lattice=LATTICE, options=quiet)
    dirs = {"a": (root / f"h{A}").resolve(), "b": (root / f"h{B}").resolve()}
    with FsyncLog(dirs) as fsyncs:
        fsyncs.trio_thread = threading.get_ident()
        async with trio.open_nursery() as nursery:
            addr_a = await nursery.start(a.serve)
            seeds = (f"{addr_a[0]}:{addr_a[1]}",)
            b = make_host(root, B, seeds=seeds, secret=secret, lattice=LATTICE, options=quiet)
            await nursery.start(b.serve)
            with trio.fail_after(30):
                while len(a.alive_ids()) < 2 or len(b.alive_ids()) < 2:
                    await trio.sleep(0.05)
            rows = [
                await _round(n, a, b, args.puts, args.concurrency, fsyncs)
                for n in range(args.rounds)
            ]
            nursery.cancel_scope.cancel()
    print(
        f"{args.puts} config puts on B, {args.concurrency} at a time, learnt by A through "
        f"gossip; {args.rounds} rounds"
    )
    for key in rows[0]:
        values = [row[key] for row in rows]
        shown = " ".join(f"{v:9.2f}" if isinstance(v, float) else f"{v:9d}" for v in values)
        print(f"  {key:14s} {shown}   median {statistics.median(values):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--puts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the data dirs go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        trio.run(_bench, args, Path(tmp))


if __name__ == "__main__":
    main()
