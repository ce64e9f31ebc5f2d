"""``meshhost top``: a live view of the whole lattice in the terminal.

Every second it asks the local host for the list of hosts, then every live
host (forwarded over the lattice) for its figures (control op ``metrics``
without the Prometheus families), and redraws three tables: hosts (state,
Lifeguard health score, readiness, actors, calls/s), actors (instances,
calls/s, p50, p99 and errors/s summed over the hosts that run them; p50 and
p99 are the slowest host's), and the latest events.

Keys: ``q`` quits (exit 0); Ctrl-C quits with exit code 130.  Plain
terminal only (no mouse), so it works over SSH.  Without a terminal on
stdin (a pipe) keys are not read; ``--once`` prints one frame and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import termios
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import trio
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from meshhost.cli import main
from meshhost.cli.hostclient import host_client, host_options
from meshhost.cli.monitor import format_seconds
from meshhost.cli.output import (
    emit_json,
    exit_by_signal,
    fails_cleanly,
    safe_console_class,
    stdout,
)
from meshhost.control.api import ControlClient
from meshhost.errors import MeshError
from meshhost.identity import short_id

REFRESH_S = 1.0
HOST_TIMEOUT_S = 2.0
"""A host that does not answer in time is shown as such; the others still refresh."""
EVENTS_SHOWN = 8


async def gather(client: ControlClient) -> dict[str, Any]:
    """The hosts the local host sees and the snapshot of each live one (None: no answer)."""
    hosts = await client.request("hosts")
    snaps: dict[str, dict[str, Any] | None] = {}

    async def one(host_id: str) -> None:
        snaps[host_id] = None
        with trio.move_on_after(HOST_TIMEOUT_S):
            try:
                snaps[host_id] = await client.request("metrics", host=host_id, metrics=False)
            except MeshError:
                pass  # shown as "no answer"

    async with trio.open_nursery() as nursery:
        for row in hosts:
            if row["state"] in ("alive", "suspect"):
                nursery.start_soon(one, row["id"])
    return {"hosts": hosts, "snapshots": snaps}


def actor_rows(snaps: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Per actor over every host that answered: sums of instances and rates, worst p50/p99."""
    out: dict[str, dict[str, Any]] = {}
    for snap in snaps.values():
        for actor in (snap or {}).get("actors", []):
            row = out.setdefault(
                actor["id"],
                {
                    "id": actor["id"],
                    "name": actor.get("name", ""),
                    "hosts": 0,
                    "instances": 0,
                    "calls_per_s": 0.0,
                    "errors_per_s": 0.0,
                    "p50_s": 0.0,
                    "p99_s": 0.0,
                },
            )
            row["hosts"] += 1
            row["instances"] += actor["instances"]
            row["calls_per_s"] += actor["calls_per_s"]
            row["errors_per_s"] += actor["errors_per_s"]
            row["p50_s"] = max(row["p50_s"], actor["p50_s"])
            row["p99_s"] = max(row["p99_s"], actor["p99_s"])
    return sorted(out.values(), key=lambda r: (-r["calls_per_s"], r["name"], r["id"]))


def render(view: dict[str, Any], local_lattice: str) -> Group:
    """The three tables of one frame."""
    hosts, snaps = view["hosts"], view["snapshots"]
    local_lattice = next((s["lattice"] for s in snaps.values() if s), local_lattice)
    now = time.strftime("%H:%M:%S")
    alive = sum(1 for h in hosts if h["state"] == "alive")
    title = Text(
        f"meshhost top: lattice {local_lattice}, {len(hosts)} hosts, {alive} alive, "
        f"{now}   (q quits)",
        style="bold",
    )
    host_table = Table(title="hosts", title_justify="left", expand=False)
    for column in ("HOST", "ADDRESS", "STATE", "HEALTH", "READY", "ACTORS", "CALLS/S"):
        host_table.add_column(
            column, justify="right" if column in ("ACTORS", "CALLS/S") else "left"
        )
    for h in sorted(hosts, key=lambda r: r["id"]):
        snap = snaps.get(h["id"])
        if snap is None:
            health = ready = "-" if h["state"] not in ("alive", "suspect") else "no answer"
            rate = "-"
        else:
            health = str(snap["health"]["score"])
            ready = "yes" if snap["ready"]["ready"] else "no"
            rate = f"{sum(a['calls_per_s'] for a in snap['actors']):.1f}"
        style = {"alive": "green", "suspect": "yellow", "dead": "red"}.get(h["state"], "")
        host_table.add_row(
            short_id(h["id"]) + (" *" if h.get("local") else ""),
            h["address"],
            Text(h["state"], style=style),
            health,
            ready,
            str(h["actors"]),
            rate,
        )
    actor_table = Table(title="actors", title_justify="left", expand=False)
    for column in ("ACTOR", "NAME", "HOSTS", "INSTANCES", "CALLS/S", "P50", "P99", "ERRORS/S"):
        actor_table.add_column(column, justify="left" if column in ("ACTOR", "NAME") else "right")
    for a in actor_rows(snaps):
        actor_table.add_row(
            short_id(a["id"]),
            a["name"],
            str(a["hosts"]),
            str(a["instances"]),
            f"{a['calls_per_s']:.1f}",
            format_seconds(a["p50_s"]),
            format_seconds(a["p99_s"]),
            Text(f"{a['errors_per_s']:.1f}", style="red" if a["errors_per_s"] else ""),
        )
    events: dict[tuple[Any, ...], dict[str, Any]] = {}
    for snap in snaps.values():
        for event in (snap or {}).get("events", []):
            key = (
                event.get("at_unix_ms"),
                event.get("kind"),
                event.get("host"),
                event.get("actor"),
            )
            events.setdefault(key, event)
    latest = sorted(events.values(), key=lambda e: e.get("at_unix_ms", 0))[-EVENTS_SHOWN:]
    event_table = Table(title="recent events", title_justify="left", expand=False)
    for column in ("TIME", "EVENT", "HOST", "DETAIL"):
        event_table.add_column(column)
    for e in latest:
        at = time.strftime("%H:%M:%S", time.localtime(e.get("at_unix_ms", 0) / 1000))
        detail = " ".join(
            f"{k}={v}"
            for k, v in sorted(e.items())
            if k not in ("at_unix_ms", "kind", "host") and not isinstance(v, dict)
        )
        event_table.add_row(
            at, str(e.get("kind", "")), short_id(str(e.get("host", ""))), Text(detail[:80])
        )
    return Group(title, host_table, actor_table, event_table)


@contextlib.contextmanager
def _keys_mode() -> Iterator[int | None]:
    """stdin in cbreak mode (keys arrive one by one, Ctrl-C still interrupts); its fd, or
    None when stdin is not a terminal."""
    fd = sys.stdin.fileno() if sys.stdin is not None else -1
    if fd < 0 or not os.isatty(fd):
        yield None
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _watch_keys(fd: int, quit_scope: trio.CancelScope) -> None:
    while True:
        await trio.lowlevel.wait_readable(fd)
        data = os.read(fd, 64)
        if not data or b"q" in data.lower():
            quit_scope.cancel()
            return


@main.command()
@click.option("--once", is_flag=True, help="Print one frame and exit (no live view).")
@host_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one frame as JSON (hosts, actors, each host's snapshot) and exit.",
)
@fails_cleanly
def top(once: bool, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Live view of every host and actor: state, health, calls/s, p50/p99, errors, events.

    Refreshes every second; q quits, Ctrl-C quits with exit code 130.
    """
    client = host_client(data_dir, lattice)
    once = once or as_json

    async def run_once() -> None:
        frame = await gather(client)
        if as_json:
            emit_json({**frame, "actors": actor_rows(frame["snapshots"])})
        else:
            stdout.print(render(frame, lattice))

    async def run_live() -> None:
        console = safe_console_class()()  # Live needs a real rich Console, not the stand-in
        with (
            _keys_mode() as fd,
            Live(console=console, auto_refresh=False, screen=console.is_terminal) as live,
        ):
            with trio.CancelScope() as quit_scope:
                async with trio.open_nursery() as nursery:
                    if fd is not None:
                        nursery.start_soon(_watch_keys, fd, quit_scope)
                    while True:
                        live.update(render(await gather(client), lattice), refresh=True)
                        await trio.sleep(REFRESH_S)

    try:
        trio.run(run_once if once else run_live)
    except (KeyboardInterrupt, BaseExceptionGroup) as exc:
        # Ctrl-C lands wherever the loop is, often inside a nursery: then it
        # comes wrapped in an exception group.
        if isinstance(exc, KeyboardInterrupt) or exc.split(KeyboardInterrupt)[0] is not None:
            exit_by_signal(signal.SIGINT)
        # A MeshError (no host, the host went away) comes wrapped the same way: unwrap it
        # so that fails_cleanly prints its one line instead of a group traceback.
        group = exc.split(MeshError)[0]
        failed: BaseException | None = group
        while isinstance(failed, BaseExceptionGroup):
            failed = failed.exceptions[0]
        if failed is not None:
            raise failed from None
        raise
