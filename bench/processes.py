"""Benchmark: aggregate calls/s of one serving machine with 1 and with 2 host processes.

Run: ``python bench/processes.py [--rounds 3] [--seconds 3] [--callers 2]``.

Who runs what (loopback, every host in its own process):

* the served side is a real ``meshhost up --processes P`` (P = 1, then 2),
  started as a person would, with the shipped ``echo`` actor started on each
  of its P hosts (``meshhost start --host`` each id it printed);
* ``--callers`` caller processes, each a meshhost host of its own (no actor)
  joined to it by seed, each making calls with WINDOW outstanding (WINDOW
  trio tasks, one call at a time each) for ``--seconds`` per round, all
  callers at once; the router spreads their calls over the P hosts.

Printed: calls/s of every round (the callers' sum) and the median per P,
their ratio, and the CPU time per call of the served processes together and
of the callers together (from ``/proc``, 10 ms ticks).  On a 2-core
machine the callers and the served side share the cores, so 2 serving
processes cannot double the figure; there the CPU per call shows what
spreading costs (each session batches fewer frames per wake-up).  Figures
on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from invoke import _cpu_s, _make_host, _signed_echo  # bench/invoke.py, a sibling script

from meshhost.identity.keyring import encode_secret

SERVER_IP = "127.0.0.71"
CALLER_IPS = ("127.0.0.72", "127.0.0.73", "127.0.0.74", "127.0.0.75")
WINDOW = 32
OPERATION = "Echo"
PAYLOAD = os.urandom(100)
READY_TIMEOUT_S = 60.0


# --- child: one caller ----------------------------------------------------------------


async def _caller(root: Path, ip: str, seed: str, actor_id: str, hosts: int) -> None:
    secret = bytes.fromhex(os.environ["MESHHOST_BENCH_SECRET"])
    host = _make_host(root, ip, secret, (seed,))
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        actors = host.actors
        with trio.fail_after(READY_TIMEOUT_S):
            while len(host.directory.hosts_running(actor_id)) < hosts:
                await trio.sleep(0.05)

        async def burst(seconds: float) -> int:
            done = 0
            stop_at = trio.current_time() + seconds

            async def worker() -> None:
                nonlocal done
                while trio.current_time() < stop_at:
                    answer = await actors.invoke(actor_id, OPERATION, PAYLOAD, timeout_s=10)
                    if answer != PAYLOAD:
                        raise RuntimeError("wrong echo")
                    done += 1

            async with trio.open_nursery() as workers:
                for _ in range(WINDOW):
                    workers.start_soon(worker)
            return done

        await burst(0.5)  # warm-up: sessions, caches, the served side's inline gate
        print("READY", flush=True)
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline)
            if not line.strip():
                break
            seconds = float(line)
            count = await burst(seconds)
            print(f"DONE {count}", flush=True)
        with trio.move_on_after(3):
            await host.shutdown(leave_timeout_s=0.5, drain_timeout_s=1.0)
        nursery.cancel_scope.cancel()


# --- the benchmark ------------------------------------------------------------------------


def _meshhost(*args: str, data_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "meshhost", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise SystemExit(f"meshhost {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def _read_events(proc: subprocess.Popen[str], want: int) -> list[dict[str, object]]:
    """The "started" and "worker" events of ``up`` until ``want`` hosts are up."""
    assert proc.stdout is not None
    found: list[dict[str, object]] = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(found) < want and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("meshhost up exited early")
        event = json.loads(line)
        if event.get("event") in ("started", "worker"):
            found.append(event)
    return found


def _round(callers: list[subprocess.Popen[str]], seconds: float) -> float:
    for c in callers:
        assert c.stdin is not None
        c.stdin.write(f"{seconds}\n")
        c.stdin.flush()
    total = 0
    for c in callers:
        assert c.stdout is not None
        line = c.stdout.readline().split()
        if not line or line[0] != "DONE":
            raise SystemExit(f"a caller failed: {line}")
        total += int(line[1])
    return total / seconds


def _measure(
    root: Path, processes: int, args: argparse.Namespace, secret: bytes
) -> tuple[list[float], float, float]:
    """(calls/s of each round, CPU µs per call of the served side, of the callers)."""
    data_dir = root / f"served-{processes}"
    data_dir.mkdir(mode=0o700)
    secret_file = root / "lattice.secret"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meshhost",
            "up",
            "--processes",
            str(processes),
            "--data-dir",
            str(data_dir),
            "--secret-file",
            str(secret_file),
            "--lattice",
            "bench",
            "--profile",
            "local",
            "--bind",
            SERVER_IP,
            "--no-mdns",
            "--json",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    callers: list[subprocess.Popen[str]] = []
    try:
        events = _read_events(up, processes)
        seed = str(events[0]["addr"])
        module, actor_id = _signed_echo()
        module_path = root / "echo.wasm"
        module_path.write_bytes(module)
        for event in events:
            _meshhost("start", str(module_path), "--host", str(event["id"]), data_dir=data_dir)
        for k in range(args.callers):
            callers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--caller",
                        str(root / f"caller-{processes}-{k}"),
                        CALLER_IPS[k],
                        seed,
                        actor_id,
                        str(processes),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "MESHHOST_BENCH_SECRET": secret.hex()},
                )
            )
        for c in callers:
            assert c.stdout is not None
            if c.stdout.readline().strip() != "READY":
                raise SystemExit("a caller did not get ready")
        served = [int(str(e.get("pid", up.pid))) for e in events]
        cpu_before = ([_cpu_s(p) for p in served], [_cpu_s(c.pid) for c in callers])
        rates = [_round(callers, args.seconds) for _ in range(args.rounds)]
        calls = sum(rates) * args.seconds
        served_us = sum(_cpu_s(p) for p in served) - sum(cpu_before[0])
        callers_us = sum(_cpu_s(c.pid) for c in callers) - sum(cpu_before[1])
        return rates, served_us * 1e6 / calls, callers_us * 1e6 / calls
    finally:
        for c in callers:
            if c.stdin is not None:
                c.stdin.close()
        for c in callers:
            try:
                c.wait(timeout=10)
            except subprocess.TimeoutExpired:
                c.kill()
        up.terminate()
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--callers", type=int, default=2, choices=range(1, len(CALLER_IPS) + 1))
    parser.add_argument(
        "--only",
        type=int,
        choices=(1, 2),
        help="measure only this many serving processes (for a profiler)",
    )
    parser.add_argument("--caller", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.caller:
        root, ip, seed, actor_id, hosts = args.caller
        trio.run(_caller, Path(root), ip, seed, actor_id, int(hosts))
        return
    secret = os.urandom(32)
    with tempfile.TemporaryDirectory(prefix="meshhost-bench-") as tmp:
        root = Path(tmp)
        (root / "lattice.secret").write_text(encode_secret(secret) + "\n")
        (root / "lattice.secret").chmod(0o600)
        results = {
            p: _measure(root, p, args, secret) for p in ((args.only,) if args.only else (1, 2))
        }
    print(
        f"uptime: {os.getloadavg()[0]:.2f} load, {os.cpu_count()} CPUs; {args.callers} callers, "
        f"{WINDOW} calls outstanding each, 100 B echo, {args.rounds} rounds of "
        f"{args.seconds:g} s"
    )
    for p, (rounds, served_us, callers_us) in results.items():
        shown = ", ".join(f"{r:,.0f}" for r in rounds)
        print(
            f"serving processes {p}: median {statistics.median(rounds):,.0f} calls/s "
            f"(rounds: {shown}); CPU per call: served side {served_us:.0f} µs, "
            f"callers {callers_us:.0f} µs"
        )
    if len(results) == 2:
        ratio = statistics.median(results[2][0]) / statistics.median(results[1][0])
        print(f"2 processes / 1 process: {ratio:.2f}x")


if __name__ == "__main__":
    main()
