"""``meshhost up --processes N``: N host processes so that every core serves.

Design: N hosts with N identities, not one identity with N workers.  One
``up`` runs the *primary* host in its own process, as without the option,
and starts N-1 *worker* processes, each a complete ``meshhost up`` of its
own: its own host key and data dir (``DATA_DIR/workers/K``), the primary's
lattice, secret, labels, profile, config file and mDNS settings, any free
port on the same address, and the primary as its seed.  Each joins the
lattice as a member like any other host.

Why not one identity shared by N processes: a host id is one SWIM member
(one incarnation number, one address) and one Noise static key that peers
keep one session to; N processes behind it would have to share membership
state and split one peer's session between them (SO_REUSEPORT balances
connections, not calls, so a caller's whole stream would land on one
process).  As N members, the lattice already does the rest: placement puts
an actor on every process whose labels match (a daemonscaler manifest runs
it on each; a spreadscaler counts them as hosts), the router spreads remote
calls over them by load (power of two choices), and a crashed process is a
member failure that membership and failover already handle.  The cost is
N times the membership and session traffic of one host.

Workers are started in a session of their own (a terminal's Ctrl-C reaches
the primary only, which then stops them with SIGTERM so that each leaves
gracefully) and get SIGTERM from the kernel if the primary dies
(``PR_SET_PDEATHSIG``), so none outlives it.  A worker that exits on its
own is started again after a growing pause.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

__all__ = ["MAX_PROCESSES", "WorkerSettings", "Workers", "worker_argv", "worker_data_dir"]

log = logging.getLogger(__name__)

MAX_PROCESSES = 256
"""More than any machine's cores; a typo like 1000 is refused."""
WORKERS_DIR = "workers"
"""Under the primary's data dir: ``workers/1`` ... ``workers/N-1``."""
STOP_TIMEOUT_S = 20.0
"""How long stopping workers waits for their graceful leave before SIGKILL."""
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
WAIT_POLL_S = 0.05
_PR_SET_PDEATHSIG = 1


def worker_data_dir(data_dir: Path, k: int) -> Path:
    """The data dir of worker ``k`` (1-based) of the host whose data dir is ``data_dir``."""
    return data_dir / WORKERS_DIR / str(k)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What a worker takes over from the primary's ``up`` (its options as given)."""

    lattice: str
    profile: str
    seeds: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    bind: str | None = None
    advertise: str | None = None
    no_mdns: bool = False
    actor_calls: str | None = None
    mdns_service_type: str | None = None
    mdns_interfaces: tuple[str, ...] = ()
    allowed_issuers: tuple[str, ...] = ()
    config_file: Path | None = None
    secret_file: Path | None = None
    """None: the secret came from the environment, which the worker inherits."""
    otlp_url: str | None = None
    log_args: tuple[str, ...] = ()
    """The primary's -q / -v / --log-level / --log-format, as given."""


def worker_argv(settings: WorkerSettings, data_dir: Path, k: int, primary: str) -> list[str]:
    """The command line of worker ``k``: ``meshhost up`` seeded with ``primary`` (host:port).

    Monitoring listeners (metrics, dashboard) and the status file stay the
    primary's: their addresses and path are one each.
    """
    s = settings
    argv = [sys.executable, "-m", "meshhost", "up", "--json",
            "--lattice", s.lattice, "--profile", s.profile,
            "--data-dir", str(worker_data_dir(data_dir, k)), "--port", "0",
            "--seed", primary]  # fmt: skip
    for seed in s.seeds:
        argv += ["--seed", seed]
    for label in s.labels:
        argv += ["--label", label]
    for flag, value in (
        ("--bind", s.bind),
        ("--advertise", s.advertise),
        ("--actor-calls", s.actor_calls),
        ("--mdns-service-type", s.mdns_service_type),
        ("--config", s.config_file),
        ("--secret-file", s.secret_file),
        ("--otlp", s.otlp_url),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for address in s.mdns_interfaces:
        argv += ["--mdns-interface", address]
    for issuer in s.allowed_issuers:
        argv += ["--allowed-issuer", issuer]
    if s.no_mdns:
        argv.append("--no-mdns")
    if "--log-format" not in s.log_args:
        # `up --json` (how a worker reports to us) would make its log lines JSON,
        # and they go straight to the primary's stderr, among the primary's text lines.
        argv += ["--log-format", "text"]
    return argv + list(s.log_args)


def seed_address(addr: tuple[str, int]) -> str:
    """The primary's listening address as a worker on this machine reaches it."""
    ip, port = addr[0], addr[1]
    return f"{'127.0.0.1' if ip in ('0.0.0.0', '') else ip}:{port}"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """SIGTERM this process when the process that started it dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the primary's orderly stop still stops its workers


class Workers:
    """Runs and supervises the worker processes of one ``up --processes N``."""

    def __init__(
        self, argvs: list[list[str]], announce: Callable[[int, dict[str, Any]], None]
    ) -> None:
        self._argvs = argvs
        self._announce = announce
        """Called with (k, the worker's "started" event) each time worker k starts."""
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping = False

    def stop(self) -> None:
        """SIGTERM every worker (each leaves the lattice gracefully); idempotent."""
        self._stopping = True
        self.send_signal(signal.SIGTERM)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to every running worker."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Start every worker, keep them running until cancelled, then stop them."""
        try:
            async with trio.open_nursery() as nursery:
                for k, argv in enumerate(self._argvs, start=1):
                    nursery.start_soon(self._keep, k, argv)
                task_status.started()
        finally:
            self.stop()
            with trio.CancelScope(shield=True):
                await self._reap()

    async def _reap(self) -> None:
        with trio.move_on_after(STOP_TIMEOUT_S):
            for proc in list(self._procs.values()):
                await _wait(proc)
        for k, proc in self._procs.items():
            if proc.poll() is None:
                log.warning(
                    "worker %d (pid %d) did not leave within %g s: killed",
                    k,
                    proc.pid,
                    STOP_TIMEOUT_S,
                )
                proc.kill()
                proc.wait()

    async def _keep(self, k: int, argv: list[str]) -> None:
        pause = RESTART_MIN_S
        while not self._stopping:
            # Popen here, in the trio thread, not in trio's open_process: that
            # forks from a worker thread, and PR_SET_PDEATHSIG fires when the
            # *thread* that forked ends (trio's idle threads end after seconds).
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            self._procs[k] = proc
            await self._read_events(k, proc)  # cancelled: run() stops and reaps them all
            code = await _wait(proc)
            if self._stopping:
                return
            log.warning(
                "worker %d (pid %d) exited with code %d; starting it again in %g s",
                k,
                proc.pid,
                code,
                pause,
            )
            await trio.sleep(pause)
            pause = min(RESTART_MAX_S, pause * 2)

    async def _read_events(self, k: int, proc: subprocess.Popen[bytes]) -> None:
        """Announce the worker's "started" line; drop its other lines (the
        primary reports membership itself) until its stdout closes."""
        assert proc.stdout is not None
        buffer = b""
        async with trio.lowlevel.FdStream(os.dup(proc.stdout.fileno())) as stream:
            proc.stdout.close()
            async for chunk in stream:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict) and event.get("event") == "started":
                        self._announce(k, {**event, "pid": proc.pid})
                buffer = buffer[-65536:]


async def _wait(proc: subprocess.Popen[bytes]) -> int:
    """The exit code of ``proc``, polled (its stdout has closed: it is ending)."""
    while proc.poll() is None:
        await trio.sleep(WAIT_POLL_S)
    return proc.returncode
