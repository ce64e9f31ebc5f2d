"""Commands that talk to a running host over its control socket.

``hosts``, ``inventory``, ``start``, ``stop``, ``scale``, ``call``,
``events`` and ``host stop`` (``link`` and ``config`` are in
:mod:`meshhost.cli.directory`).  Each finds the local host through
``--data-dir`` (or ``--lattice`` for the default data dir), see
:mod:`meshhost.cli.hostclient`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click
import msgpack

from meshhost.cli import main
from meshhost.cli.hostclient import host_client, host_options, host_request
from meshhost.cli.output import (
    PlainTable,
    emit_json,
    exit_by_signal,
    fails_cleanly,
    json_option,
    stderr,
    stdout,
)
from meshhost.control.api import MAX_MESSAGE_BYTES
from meshhost.errors import ControlError, DecodeError, LocalProtocolError, MeshError
from meshhost.identity import short_id
from meshhost.wire import Limits, Reader

_ANSWER_LIMITS = Limits(max_bytes=MAX_MESSAGE_BYTES)
"""`call --msgpack`: an answer is at most one control message."""


def _parse_labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--label")
        labels[key] = value
    return labels


def _hosts_once_formed(data_dir: Path | None, lattice: str, wait_s: float) -> Any:
    """The ``hosts`` rows, giving a host that is starting up to ``wait_s`` to answer
    and to see another host alive (then what it sees, alone or not)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            rows = host_request(data_dir, lattice, "hosts")
        except LocalProtocolError:  # nothing answers on its control socket (yet)
            if time.monotonic() >= deadline:
                raise
        else:
            if sum(row["state"] == "alive" for row in rows) > 1 or time.monotonic() >= deadline:
                return rows
        time.sleep(0.2)


@main.command()
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0, 3600),
    default=0,
    metavar="S",
    help="Give a host that is starting up to S seconds to answer and find a peer.",
)
@host_options
@json_option
@fails_cleanly
def hosts(wait_s: float, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """List the hosts of the lattice as this host sees them."""
    rows = _hosts_once_formed(data_dir, lattice, wait_s)
    if as_json:
        emit_json(rows)
        return
    alive = sum(1 for row in rows if row["state"] == "alive")
    local = next((row["id"] for row in rows if row.get("local")), None)
    title = f"{len(rows)} host{'s' if len(rows) != 1 else ''}, {alive} alive"
    table = PlainTable(title=title + (f"; this host is {short_id(local)}" if local else ""))
    for column in ("HOST", "ADDRESS", "STATE", "ACTORS", "LABELS"):
        table.add_column(column)
    for row in rows:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(row.get("labels", {}).items()))
        table.add_row(
            row["id"], row.get("address", ""), row["state"], str(row.get("actors", 0)), labels
        )
    stdout.print(table)


@main.command()
@click.argument("host", required=False)
@host_options
@json_option
@fails_cleanly
def inventory(host: str | None, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Actors and providers of HOST (default: the local host)."""
    inv = host_request(data_dir, lattice, "inventory", host=host)
    if as_json:
        emit_json(inv)
        return
    table = PlainTable(title=f"host {inv['host']}")
    for column in ("ACTOR", "NAME", "INSTANCES", "CAPABILITIES"):
        table.add_column(column)
    for actor in inv.get("actors", []):
        table.add_row(
            actor["id"], actor.get("name", ""), str(actor["instances"]), ", ".join(actor["caps"])
        )
    stdout.print(table)
    for actor in inv.get("actors", []):  # a line each: the table stays readable at 80 columns
        if actor.get("limits"):
            stdout.print(
                f"limits of {short_id(actor['id'])}: {_limits_text(actor['limits'])}",
                highlight=False,
                markup=False,
            )
    providers = inv.get("providers", [])
    if providers:
        stdout.print("providers: " + ", ".join(providers), highlight=False, markup=False)
    for listener in inv.get("http", []):  # on one machine only one host holds a port
        state = listener.get("state", "serving")
        note = "" if state == "serving" else f" [{state}: {listener.get('error', '')}]"
        stdout.print(
            f"http: {listener['address']} -> {short_id(listener['actor'])} "
            f"(link {listener['link_name']}){note}",
            highlight=False,
            markup=False,
        )


def _limits_text(limits: dict[str, int]) -> str:
    """``memory 64 MiB, cpu 2000 ms, call 30000 ms, 1000 instances`` (for inventory)."""
    return (
        f"memory {limits.get('max_memory_mib')} MiB, cpu {limits.get('max_cpu_time_ms')} "
        f"ms, call {limits.get('max_call_time_ms')} ms, "
        f"{limits.get('max_instances')} instances"
    )


@main.command()
@click.argument("module", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--host", help="Start on this host (its N… id or a unique prefix); default: the local host."
)
@click.option("--label", "labels", multiple=True, help="Start on a host with this label (k=v).")
@click.option(
    "--count",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Number of instances to start.",
)
@click.option(
    "--max-memory-mib",
    type=int,
    metavar="MIB",
    help="Memory limit of each instance (default: the host's, 64).",
)
@click.option(
    "--max-cpu-time-ms",
    type=int,
    metavar="MS",
    help="Guest CPU time per call (default: the host's, 2000).",
)
@click.option(
    "--max-call-time-ms",
    type=int,
    metavar="MS",
    help="Wall-clock time per call (default: the host's, 30000).",
)
@click.option(
    "--max-instances",
    type=int,
    metavar="N",
    help="Most instances of this actor on the host (default: the host's, 1000).",
)
@host_options
@json_option
@fails_cleanly
def start(
    module: Path,
    host: str | None,
    labels: tuple[str, ...],
    count: int,
    max_memory_mib: int | None,
    max_cpu_time_ms: int | None,
    max_call_time_ms: int | None,
    max_instances: int | None,
    data_dir: Path | None,
    lattice: str,
    as_json: bool,
) -> None:
    """Start COUNT instances of the signed actor in MODULE.

    The --max-… limits apply to every instance of the actor on that host
    (a later start that gives limits replaces them); those not given are the
    host's defaults ([actor_limits] in its config).
    """
    if host and labels:
        raise click.UsageError("give --host or --label, not both")
    given = {
        "max_memory_mib": max_memory_mib,
        "max_cpu_time_ms": max_cpu_time_ms,
        "max_call_time_ms": max_call_time_ms,
        "max_instances": max_instances,
    }
    limits = {name: value for name, value in given.items() if value is not None}
    result = host_request(
        data_dir,
        lattice,
        "start",
        module=module.read_bytes(),
        count=count,
        host=host,
        labels=_parse_labels(labels),
        **({"limits": limits} if limits else {}),
    )
    if as_json:
        emit_json(result)
    else:
        stdout.print(
            f"started {result['actor']} ({result.get('name', '')}) x{count} "
            f"on {short_id(result['host'])}",
            highlight=False,
            markup=False,
        )


@main.command()
@click.argument("actor")
@click.option("--host", help="Stop on this host only.")
@click.option("--count", type=click.IntRange(1), help="Stop this many instances (default all).")
@host_options
@json_option
@fails_cleanly
def stop(
    actor: str,
    host: str | None,
    count: int | None,
    data_dir: Path | None,
    lattice: str,
    as_json: bool,
) -> None:
    """Stop ACTOR (an M… key or call alias)."""
    result = host_request(data_dir, lattice, "stop", actor=actor, host=host, count=count)
    if as_json:
        emit_json(result)
    else:
        stdout.print(
            f"stopped {result['stopped']} instance(s) of {actor}", highlight=False, markup=False
        )


class _CountCommand(click.Command):
    """A command whose COUNT argument, given as ``-1``, is reported as a bad count.

    click reads any word starting with ``-`` as an option and would answer
    "No such option '-1'"; here such a word that is not an option's value is
    checked as COUNT, which names the allowed range.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            name
            for p in self.params
            if isinstance(p, click.Option) and not p.is_flag
            for name in p.opts
        }
        count = next(p for p in self.params if p.name == "count")
        previous = ""
        for word in args:
            if word == "--":
                break
            if word[:1] == "-" and word[1:].isdigit() and previous not in takes_value:
                count.type.convert(word, count, ctx)  # raises BadParameter naming the range
            previous = word
        return super().parse_args(ctx, args)


@main.command(cls=_CountCommand)
@click.argument("actor")
@click.argument("count", type=click.IntRange(0, 1000))
@click.option("--host", help="Scale on this host (default: the local host).")
@host_options
@json_option
@fails_cleanly
def scale(
    actor: str, count: int, host: str | None, data_dir: Path | None, lattice: str, as_json: bool
) -> None:
    """Set the number of instances of ACTOR on a host to COUNT."""
    result = host_request(data_dir, lattice, "scale", actor=actor, count=count, host=host)
    if as_json:
        emit_json(result)
    else:
        stdout.print(
            f"{actor} now has {result['count']} instance(s)", highlight=False, markup=False
        )


def _read_payload(payload: str | None, as_msgpack: bool) -> bytes:
    if payload is None:
        raw = b""
    elif payload == "-":
        raw = sys.stdin.buffer.read()
    elif payload.startswith("@"):
        try:
            raw = Path(payload[1:]).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {payload[1:]}: {exc.strerror}") from None
    else:
        raw = payload.encode()
    if not as_msgpack:
        return raw
    try:
        packed: bytes = msgpack.packb(json.loads(raw or b"null"), use_bin_type=True)
        return packed
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"--msgpack needs a JSON payload: {exc}") from None


@main.command()
@click.argument("actor")
@click.argument("operation")
@click.argument("payload", required=False)
@click.option(
    "--msgpack",
    "as_msgpack",
    is_flag=True,
    help="PAYLOAD is JSON: send it as msgpack, and show a msgpack answer as JSON.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0.001),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the answer (failover to another host included).",
)
@click.option(
    "--trace",
    "show_trace",
    is_flag=True,
    help="Then print the call's trace: its spans on every host, as a tree.",
)
@host_options
@json_option
@fails_cleanly
def call(
    actor: str,
    operation: str,
    payload: str | None,
    as_msgpack: bool,
    timeout_s: float,
    show_trace: bool,
    data_dir: Path | None,
    lattice: str,
    as_json: bool,
) -> None:
    """Invoke OPERATION on ACTOR anywhere in the lattice.

    PAYLOAD is sent as given; @FILE reads it from a file, - from stdin.
    """
    body = _read_payload(payload, as_msgpack)
    # With --trace the CLI names the trace itself, so that a call that fails (the one
    # most worth following) can still be traced: the host answers no trace id then.
    trace_arg = (
        {"traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"} if show_trace else {}
    )
    started = time.perf_counter()
    try:
        result = host_request(
            data_dir,
            lattice,
            "call",
            actor=actor,
            operation=operation,
            payload=body,
            timeout_ms=int(timeout_s * 1000),
            **trace_arg,
        )
    except ControlError:
        if show_trace:
            failed_id = trace_arg["traceparent"].split("-")[1]
            with contextlib.suppress(MeshError):
                failed = host_request(data_dir, lattice, "trace", trace_id=failed_id)
                from meshhost.cli.tracetree import print_traces

                if as_json:
                    emit_json({"trace_id": failed_id, "trace": failed})
                else:
                    print_traces(failed)
        raise
    elapsed_ms = (time.perf_counter() - started) * 1000
    answer: bytes = result["payload"]
    decoded: Any = answer
    if as_msgpack:
        try:
            decoded = Reader(DecodeError).unpack(answer, _ANSWER_LIMITS, "the answer")
        except DecodeError as exc:
            raise click.ClickException(f"not msgpack: {exc}") from None
    trace_id = result.get("trace_id", "")
    spans = host_request(data_dir, lattice, "trace", trace_id=trace_id) if show_trace else None
    if as_json:
        emit_json(
            {
                "host": result["host"],
                "ms": round(elapsed_ms, 2),
                "payload": decoded,
                "trace_id": trace_id,
                **({"trace": spans} if spans is not None else {}),
            }
        )
        return
    if as_msgpack:
        click.echo(json.dumps(decoded, default=lambda b: b.decode("utf-8", "replace")))
    else:
        sys.stdout.buffer.write(answer)
        if sys.stdout.isatty():
            sys.stdout.write("\n")
    stderr.print(
        f"[dim]answered by {short_id(result['host'])} in {elapsed_ms:.1f} ms (trace {trace_id})[/]"
    )
    if spans is not None:
        from meshhost.cli.tracetree import print_traces

        print_traces(spans)


@main.command()
@click.option(
    "--format",
    "event_format",
    type=click.Choice(["json", "cloudevents"]),
    default="json",
    show_default=True,
    help="json: meshhost's own event maps; cloudevents: CloudEvents 1.0 JSON.",
)
@host_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Accepted as by every read command: events are JSON lines already.",
)
@fails_cleanly
def events(data_dir: Path | None, lattice: str, event_format: str, as_json: bool) -> None:
    """Follow host, actor and link events as JSON lines until interrupted (exit 130).

    --format cloudevents prints each as a CloudEvent 1.0 (JSON), typed as
    wasmCloud names its lattice events (com.wasmcloud.lattice.actor_started...).
    """
    import trio  # only `events` streams; the other commands make one blocking request

    client = host_client(data_dir, lattice)

    async def follow() -> None:
        source = ""
        if event_format == "cloudevents":
            from meshhost.monitor.cloudevents import to_cloudevent

            rows = await client.request("hosts")
            source = next((r["id"] for r in rows if r.get("local")), "")
        async for event in client.stream("events"):
            if event_format == "cloudevents":
                event = to_cloudevent(event, source=source, event_id=str(uuid.uuid4()))
            click.echo(json.dumps(event, sort_keys=True, default=str))

    try:
        trio.run(follow)
    except KeyboardInterrupt:
        exit_by_signal(signal.SIGINT)
    raise LocalProtocolError("the host stopped (its control socket closed)")


@main.group("host")
def host_group() -> None:
    """Manage a host process."""


@host_group.command("stop")
@click.argument("host", required=False)
@host_options
@fails_cleanly
def host_stop(host: str | None, data_dir: Path | None, lattice: str) -> None:
    """Stop HOST gracefully (default: the local host): leave, drain calls, exit."""
    host_request(data_dir, lattice, "host_stop", host=host)
    stdout.print("host stopping", highlight=False)
