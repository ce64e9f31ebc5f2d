"""``meshhost demo``: a three-host lattice on loopback that heals itself.

Offline and with no configuration: it makes a fresh lattice secret in a
temporary directory, starts three ``meshhost up`` processes on 127.0.0.1
(static seeds, no mDNS, the ``local`` timing profile), waits until every host
sees the other two, ``kill -9``'s one, shows the others declare it dead,
restarts it on the same data dir and port, and shows the lattice whole again.
Everything it starts, it stops.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from meshhost.cli import main
from meshhost.cli.output import stdout
from meshhost.datadir import write_private
from meshhost.identity.keyring import encode_secret, generate_secret

HOSTS = 3
LATTICE = "demo"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = int(tcp.getsockname()[1])
        udp.bind(("127.0.0.1", port))  # the host needs the same number for both
        return port


class DemoHost:
    def __init__(self, index: int, root: Path, secret_file: Path, port: int, seeds: list[int]):
        self.name = f"host-{index + 1}"
        self.data_dir = root / self.name
        self.status_file = root / f"{self.name}.status.json"
        self.log = root / f"{self.name}.log"
        self.port = port
        self.argv = [
            sys.executable, "-m", "meshhost", "up",
            "--lattice", LATTICE, "--secret-file", str(secret_file),
            "--data-dir", str(self.data_dir), "--profile", "local",
            "--bind", "127.0.0.1", "--advertise", "127.0.0.1", "--port", str(port),
            "--no-mdns", "--status-file", str(self.status_file), "--json",
        ]  # fmt: skip
        for seed in seeds:
            self.argv += ["--seed", f"127.0.0.1:{seed}"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.status_file.unlink(missing_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)

    def status(self) -> dict[str, Any] | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            data: dict[str, Any] = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None
        return data

    def alive_view(self) -> set[str]:
        status = self.status()
        if status is None:
            return set()
        return {m["id"] for m in status["members"] if m["state"] == "alive"} | {status["host_id"]}

    def state_of(self, host_id: str) -> str | None:
        status = self.status()
        if status is None:
            return None
        return next((m["state"] for m in status["members"] if m["id"] == host_id), None)

    def host_id(self) -> str:
        status = self.status()
        return status["host_id"] if status else "?"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait(what: str, check: Callable[[], bool], timeout_s: float) -> float:
    start = time.monotonic()
    with stdout.status(what):
        while time.monotonic() - start < timeout_s:
            if check():
                return time.monotonic() - start
            time.sleep(0.1)
    raise click.ClickException(f"timed out after {timeout_s:.0f} s: {what}")


@main.command()
@click.option("--keep", is_flag=True, help="Keep the demo's data dirs and logs.")
def demo(keep: bool) -> None:
    """Run three hosts on loopback, kill one, and watch the lattice heal."""
    root = Path(tempfile.mkdtemp(prefix="meshhost-demo-"))
    secret_file = root / "lattice.secret"
    write_private(secret_file, encode_secret(generate_secret(os.urandom)) + "\n")
    ports = [_free_port() for _ in range(HOSTS)]
    hosts = [DemoHost(i, root, secret_file, ports[i], ports[:i]) for i in range(HOSTS)]
    stdout.print(f"[bold]meshhost demo[/]: lattice {LATTICE!r}, {HOSTS} hosts on 127.0.0.1")
    stdout.print(f"[dim]state and logs in {root}[/]", highlight=False)
    try:
        for host in hosts:
            host.start()
        all_ids: set[str] = set()

        def formed() -> bool:
            views = [h.alive_view() for h in hosts]
            if all(len(v) == HOSTS for v in views) and len({frozenset(v) for v in views}) == 1:
                all_ids.update(views[0])
                return True
            return False

        took = _wait("hosts are finding each other", formed, 30)
        stdout.print(f"[green]✓[/] lattice formed in {took:.1f} s:")
        for host in hosts:
            stdout.print(f"    {host.name}  {host.host_id()}  port {host.port}", highlight=False)

        victim = hosts[-1]
        victim_id = victim.host_id()
        survivors = hosts[:-1]
        stdout.print(f"[yellow]✗[/] kill -9 {victim.name} ({victim_id[:12]}…)", highlight=False)
        victim.stop(signal.SIGKILL)
        took = _wait(
            f"survivors are probing {victim.name}",
            lambda: any(h.state_of(victim_id) == "suspect" for h in survivors)
            or all(h.state_of(victim_id) == "dead" for h in survivors),
            60,
        )
        stdout.print(f"[yellow]?[/] {victim.name} is suspected after {took:.1f} s")
        took += _wait(
            "suspicion is being confirmed",
            lambda: all(h.state_of(victim_id) == "dead" for h in survivors),
            60,
        )
        stdout.print(f"[green]✓[/] every survivor declared {victim.name} dead after {took:.1f} s")

        stdout.print(f"[cyan]↻[/] restarting {victim.name} on the same data dir and port")
        victim.start()
        took = _wait("the lattice is healing", formed, 60)
        stdout.print(f"[green]✓[/] {victim.name} is back: {HOSTS} hosts alive after {took:.1f} s")
        stdout.print(
            "Next: run `meshhost up` on several machines of one LAN with the same "
            "--secret-file; they find each other by mDNS."
        )
    finally:
        for host in hosts:
            host.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
