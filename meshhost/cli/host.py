"""``meshhost up``: run a host (``meshhost lattice new`` is in :mod:`meshhost.cli.secret`).

``up`` needs nothing but the lattice secret: from ``--secret-file``, the
``MESHHOST_LATTICE_SECRET`` environment variable, or ``lattice.secret`` in the
data dir.  It prints membership changes as they happen (``--json``: one JSON
object per line), keeps ``--status-file`` up to date, and on SIGINT/SIGTERM
announces a graceful leave before exiting (a second signal exits at once):
exit code 130 after SIGINT (Ctrl-C), 0 after SIGTERM (a service manager's
ordinary stop).
SIGHUP re-reads the secret file (first line primary, the others accepted):
that is how a running lattice rotates its secret, see proto/spec/keyring.md.
How events are shown is :mod:`meshhost.cli.upview`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import trio
from rich.markup import escape

from meshhost import config as config_mod
from meshhost.cli import main, upview
from meshhost.cli.logs import LEVELS, HostTag, Verbosity, logging_to
from meshhost.cli.output import exit_by_signal, fails_cleanly, json_option, lattice_name_option
from meshhost.cli.workers import MAX_PROCESSES, Workers, WorkerSettings, seed_address, worker_argv
from meshhost.datadir import replace_atomically
from meshhost.discovery import DEFAULT_SERVICE_TYPE
from meshhost.discovery.mdns import check_service_type
from meshhost.errors import ConfigError, KeyringError, LatticeSecretError, MeshError
from meshhost.identity.keyring import read_secret_file

if TYPE_CHECKING:
    from meshhost.host import Host
from meshhost.transport.listener import raise_open_file_limit

SECRET_ENV = "MESHHOST_LATTICE_SECRET"
STATUS_REFRESH_S = 1.0
"""The status file is rewritten after every event and at least this often."""


@main.command()
@click.option(
    "--lattice",
    envvar="MESHHOST_LATTICE",
    help="Lattice name (default: default).",
    callback=lattice_name_option,
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File with the lattice secret (default: ${SECRET_ENV}, then DATA_DIR/lattice.secret).",
)
@click.option("--seed", "seeds", multiple=True, help="Static peer host:port (repeatable).")
@click.option("--label", "labels", multiple=True, help="Host label key=value (repeatable).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Host key and state (default: $XDG_DATA_HOME/meshhost/LATTICE).",
)
@click.option(
    "--profile",
    type=click.Choice(list(config_mod.PROFILES)),
    help="Timing profile: lan (default), local (one machine), wan, sim (lan's numbers, "
    "as the simulator models them).",
)
@click.option("--port", type=click.IntRange(0, 65535), help="UDP and TCP port (0: any free).")
@click.option("--bind", help="Address to bind (default 0.0.0.0).")
@click.option("--advertise", help="Address peers reach this host at (default: detected).")
@click.option("--no-mdns", is_flag=True, help="Do not announce or browse with mDNS.")
@click.option(
    "--actor-calls",
    type=click.Choice(["linked", "open"]),
    help="Actor-to-actor calls: linked (default: need a link) or open (wasmCloud 0.x).",
)
@click.option(
    "--mdns-service-type",
    default=DEFAULT_SERVICE_TYPE,
    show_default=True,
    help="DNS-SD service type (a private one keeps test lattices apart).",
)
@click.option(
    "--mdns-interface",
    "mdns_interfaces",
    multiple=True,
    help="IPv4 address of an interface for mDNS (repeatable; default: all, or loopback).",
)
@click.option(
    "--allowed-issuer",
    "allowed_issuers",
    multiple=True,
    help="Run only actors signed by this issuer account A… (repeatable; default: any "
    "issuer; `meshhost issuer add` sets a lattice-wide list).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file (settings as in HostConfig: lattice, port, labels, ...).",
)
@click.option(
    "--status-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep a JSON snapshot of membership in this file.",
)
@click.option(
    "--metrics",
    "metrics_address",
    metavar="ADDR",
    help="Serve /metrics, /healthz and /readyz on ADDR: a port (on 127.0.0.1) "
    "or IPv4:PORT (0.0.0.0:9090 for every interface).",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Only warnings, errors and the events that need a person."
)
@click.option(
    "-v", "--verbose", count=True, help="-v: the host's info lines and internal events; -vv: debug."
)
@click.option(
    "--log-level",
    type=click.Choice(list(LEVELS)),
    help="One level for the host's and the actors' log lines "
    "(default: warning for the host, info for actors).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines on stderr: text (default) or json, one object per line (default with --json).",
)
@click.option(
    "--dashboard",
    "dashboard_address",
    metavar="ADDR",
    help="Serve the live web dashboard on ADDR: a port (on 127.0.0.1) or IPv4:PORT.",
)
@click.option(
    "--otlp",
    "otlp_url",
    metavar="URL",
    help="Also send this host's spans to an OpenTelemetry collector (OTLP/HTTP, e.g. "
    "http://127.0.0.1:4318); needs pip install 'meshhost[otel]'.",
)
@click.option(
    "--processes",
    type=click.IntRange(1, MAX_PROCESSES),
    default=1,
    show_default=True,
    help="Host processes to run, each a lattice member with its own key and data dir "
    "(DATA_DIR/workers/K), so that every core serves: set it to the core count.",
)
@json_option
@fails_cleanly
def up(
    quiet: bool,
    verbose: int,
    log_level: str | None,
    log_format: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Run a host: find peers, join the lattice, report who is alive.

    Ctrl-C (SIGINT) or SIGTERM leaves the lattice gracefully; the exit code is
    then 130 after SIGINT, 0 after SIGTERM. Events go to stdout, log lines to
    stderr, each line starting with this host's short id.
    """
    if sum((quiet, verbose > 0, log_level is not None)) > 1:
        raise click.UsageError("give only one of -q, -v and --log-level")
    verbosity = Verbosity.from_flags(quiet, verbose, log_level)
    with logging_to(verbosity, log_format or ("json" if as_json else "text")) as tag:
        upview.VIEW.verbosity, upview.VIEW.prefix, upview.VIEW.host_id = verbosity, "", ""
        log_args = (("-q",) if quiet else ()) + ("-v",) * verbose
        log_args += ("--log-level", log_level) if log_level is not None else ()
        log_args += (
            ("--log-format", log_format)
            if log_format is not None
            else (("--log-format", "json") if as_json else ())
        )  # workers log as the primary does
        try:
            _up(tag, as_json=as_json, log_args=log_args, **options)
        finally:
            upview.VIEW.verbosity, upview.VIEW.prefix, upview.VIEW.host_id = (
                Verbosity(host_level=0),
                "",
                "",
            )


def _up(
    tag: HostTag,
    lattice: str | None,
    secret_file: Path | None,
    seeds: tuple[str, ...],
    labels: tuple[str, ...],
    data_dir: Path | None,
    profile: str | None,
    port: int | None,
    bind: str | None,
    advertise: str | None,
    no_mdns: bool,
    actor_calls: str | None,
    mdns_service_type: str,
    mdns_interfaces: tuple[str, ...],
    allowed_issuers: tuple[str, ...],
    config_file: Path | None,
    status_file: Path | None,
    metrics_address: str | None,
    dashboard_address: str | None,
    otlp_url: str | None,
    processes: int,
    log_args: tuple[str, ...],
    as_json: bool,
) -> None:
    """``up`` once logging is set up (the options as ``up`` documents them)."""
    for item in labels:
        if "=" not in item or not item.partition("=")[0].strip():
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--label")
    for address in mdns_interfaces:
        config_mod.check_ipv4(address, "mDNS interface (--mdns-interface)")
    if status_file is not None and not status_file.parent.is_dir():
        raise click.BadParameter(
            f"directory {status_file.parent} does not exist", param_hint="--status-file"
        )
    overrides: dict[str, Any] = {
        "profile": profile,
        "lattice": lattice,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "port": port,
        "bind": bind,
        "seeds": seeds or None,
        "labels": labels or None,
        "mdns": False if no_mdns else None,
        "actor_calls": actor_calls,
        "allowed_issuers": allowed_issuers or None,
    }
    # Our secret variable is not a config setting; keep it out of config.load.
    environ = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    cfg = config_mod.load(config_file, overrides=overrides, environ=environ)
    metrics_at = None
    if metrics_address is not None:
        from meshhost.monitor.http import parse_listen_address

        try:
            metrics_at = parse_listen_address(metrics_address)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--metrics") from None
    dashboard_at = None
    if dashboard_address is not None:
        from meshhost.monitor.http import parse_listen_address

        try:
            dashboard_at = parse_listen_address(dashboard_address, what="dashboard")
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--dashboard") from None
    traces_url = None
    if otlp_url is not None:
        from meshhost.monitor.otlp import otlp_traces_url, require_otel

        try:
            traces_url = otlp_traces_url(otlp_url)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--otlp") from None
        require_otel()
    secret_text = os.environ.get(SECRET_ENV, "").strip() or None
    from meshhost.host import (  # heavy (wasmtime, hypercorn): only for `up`
        JOIN_PATIENCE_S,
        Host,
        HostOptions,
    )

    from_env = secret_text if secret_file is None else None
    try:
        host = Host.open(
            cfg,
            secret_file=secret_file,
            secret_text=from_env,
            options=HostOptions(
                mdns_service_type=mdns_service_type,
                mdns_interfaces=list(mdns_interfaces) or None,
                advertise_host=advertise,
                metrics_address=metrics_at,
                join_patience_s=JOIN_PATIENCE_S,
                dashboard_address=dashboard_at,
                otlp_url=traces_url,
            ),
        )
    except LatticeSecretError as exc:
        if from_env is None:
            raise
        raise type(exc)(f"${SECRET_ENV}, {exc}") from None
    tag.host_id = upview.VIEW.host_id = host.host_id
    upview.VIEW.prefix = tag.short
    secret_path = host.secret_path  # None: from the environment, nothing to reload
    check_service_type(mdns_service_type)
    workers = None
    if processes > 1:
        workers = WorkerSettings(
            lattice=host.config.lattice,
            profile=host.config.profile,
            seeds=seeds,
            labels=labels,
            bind=bind,
            advertise=advertise,
            no_mdns=no_mdns,
            actor_calls=actor_calls,
            mdns_service_type=mdns_service_type,
            mdns_interfaces=mdns_interfaces,
            allowed_issuers=allowed_issuers,
            config_file=config_file.absolute() if config_file is not None else None,
            secret_file=secret_path,
            otlp_url=otlp_url,
            log_args=log_args,
        )
    # A soft limit of 1024 open files (a common default) would run out before
    # max_connections; the transport keeps its cap within whatever we get.
    raise_open_file_limit()
    try:
        stopped_by = trio.run(_run, host, status_file, as_json, secret_path, (workers, processes))
    except BaseExceptionGroup as group:
        # A MeshError from inside the nursery (port taken, mDNS failed) is a
        # one-line error for the person, not a traceback.
        problem = _first_mesh_error(group)
        if problem is None:
            raise
        raise problem from None
    if stopped_by == signal.SIGINT:
        exit_by_signal(stopped_by)


def _first_mesh_error(group: BaseExceptionGroup[BaseException]) -> MeshError | None:
    for exc in group.exceptions:
        if isinstance(exc, MeshError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_mesh_error(exc)
            if found is not None:
                return found
    return None


async def _run(
    host: Host,
    status_file: Path | None,
    as_json: bool,
    secret_path: Path | None,
    workers: tuple[WorkerSettings | None, int] = (None, 1),
) -> int | None:
    """Serve until a signal stops the host; return that signal (None: the host stopped).

    ``workers``: the settings and count of ``--processes`` (this host included).
    """
    events = host.subscribe()
    stopped_by: list[int] = []
    async with trio.open_nursery() as nursery:
        addr = await nursery.start(host.serve)
        running = None
        settings, processes = workers
        if settings is not None:
            argvs = [
                worker_argv(settings, host.data_dir, k, seed_address(addr))
                for k in range(1, processes)
            ]
            running = Workers(
                argvs,
                lambda k, started: upview.say(
                    as_json,
                    {
                        "event": "worker",
                        "worker": k,
                        "id": started.get("id", ""),
                        "addr": started.get("addr", ""),
                        "pid": started["pid"],
                    },
                    f"[bold]worker {k}[/] {started.get('id', '')} on {started.get('addr', '')} "
                    f"(pid {started['pid']})",
                ),
            )
        # Signals are caught from here on, before anyone is told we started.
        await nursery.start(
            _watch_signals, host, nursery, as_json, secret_path, stopped_by, running
        )
        if status_file is not None:
            await _write_status(host, status_file)  # exists by the time "started" is printed
        started = {"event": "started", "id": host.host_id, "addr": f"{addr[0]}:{addr[1]}"}
        metrics = ""
        if host.metrics_addr is not None:
            started["metrics"] = f"http://{host.metrics_addr[0]}:{host.metrics_addr[1]}/metrics"
            metrics = f"; metrics on {started['metrics']}"
        if host.dashboard_addr is not None:
            started["dashboard"] = f"http://{host.dashboard_addr[0]}:{host.dashboard_addr[1]}/"
            metrics += f"; dashboard on {started['dashboard']}"
        upview.say(
            as_json,
            started,
            f"[bold]host[/] {host.host_id} on {addr[0]}:{addr[1]} "
            f"(lattice {escape(host.config.lattice)}, profile {host.config.profile}){metrics}",
        )
        for warning in security_warnings(host):
            logging.getLogger("meshhost.security").warning(warning)
        if running is not None:
            await nursery.start(running.run)
        await _print_events(host, events, status_file, as_json)
        # The host stopped (shutdown after a signal): stop the signal watcher too.
        nursery.cancel_scope.cancel()
    upview.say(as_json, {"event": "stopped", "id": host.host_id}, "[bold]stopped[/]")
    return stopped_by[0] if stopped_by else None


def security_warnings(host: Host) -> list[str]:
    """What a person starting a serving host should know about its lattice's security."""
    warnings = []
    state = host.security.state()
    if state.open:
        warnings.append(
            "this lattice has no admin key: any holder of the secret may start, stop and "
            "link actors; a secret from `meshhost lattice new` names one (`# admin O…`)"
        )
    if not host.config.allowed_issuers and not state.issuers:
        warnings.append(
            "the issuer allow-list is empty: actors signed by any issuer will run; restrict "
            "it with `meshhost up --allowed-issuer A…` or `meshhost issuer add A…`"
        )
    for what, addr, flag in (
        ("/metrics, /healthz and /readyz", host.metrics_addr, "--metrics"),
        ("the dashboard", host.dashboard_addr, "--dashboard"),
    ):
        if addr is not None and not _is_loopback(addr[0]):
            # Neither listener asks who is reading: metrics and the dashboard name
            # every host, actor, link and call rate of the lattice.
            warnings.append(
                f"{what} on {addr[0]}:{addr[1]} answer anyone who can reach that address, "
                f"without authentication, and show the whole lattice; give {flag} a port "
                "alone (127.0.0.1) and put an authenticating proxy in front for remote access"
            )
    return warnings


def _is_loopback(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


async def _watch_signals(
    host: Host,
    nursery: trio.Nursery,
    as_json: bool,
    secret_path: Path | None,
    stopped_by: list[int],
    workers: Workers | None = None,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """SIGHUP reloads the secrets; SIGINT/SIGTERM (appended to ``stopped_by``) shut down,
    stopping the ``workers`` too (each leaves beside this host)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        task_status.started()
        async for signum in signals:
            if signum == signal.SIGHUP:
                _reload_secrets(host, secret_path, as_json)
                if workers is not None:
                    workers.send_signal(signal.SIGHUP)  # they read the same secret file
                continue
            stopped_by.append(signum)
            name = signal.Signals(signum).name
            upview.say(as_json, {"event": "leaving", "signal": name}, f"[bold]{name}[/]: leaving")
            if workers is not None:
                workers.stop()
            break
        else:  # pragma: no cover - the receiver never ends on its own
            return

        async def second_signal_exits_at_once() -> None:
            async for _ in signals:
                nursery.cancel_scope.cancel()
                return

        async with trio.open_nursery() as inner:
            inner.start_soon(second_signal_exits_at_once)
            await host.shutdown()
            inner.cancel_scope.cancel()


def _reload_secrets(host: Host, secret_path: Path | None, as_json: bool) -> None:
    """SIGHUP: re-read the secret file (first line primary) for a key rotation."""
    try:
        if secret_path is None:
            raise KeyringError(
                f"the lattice secret came from ${SECRET_ENV}; use --secret-file to rotate it"
            )
        try:
            secrets = read_secret_file(secret_path)
        except FileNotFoundError:
            raise KeyringError(f"{secret_path} does not exist") from None
        host.reload_secrets(secrets)
    except MeshError as exc:
        upview.say(
            as_json,
            {"event": "reload_failed", "error": str(exc)},
            f"[red]reload failed:[/] {escape(str(exc))}",
        )
        return
    upview.say(
        as_json,
        {"event": "secrets_reloaded", "keys": len(host.keyring.secrets)},
        f"[bold]lattice secrets reloaded[/] ({len(host.keyring.secrets)} accepted)",
    )


async def _print_events(
    host: Host,
    events: trio.MemoryReceiveChannel[object],
    status_file: Path | None,
    as_json: bool,
) -> None:
    failed = None
    if status_file is not None:
        failed = await _refresh_status(host, status_file, as_json, failed)
    while True:
        event = None
        with trio.move_on_after(STATUS_REFRESH_S):
            try:
                event = await events.receive()
            except trio.EndOfChannel:
                return  # the host has stopped
        if event is not None:
            upview.report(event, as_json)
        if status_file is not None:
            failed = await _refresh_status(host, status_file, as_json, failed)


async def _write_status(host: Host, path: Path) -> None:
    """Raises ConfigError naming the file when it cannot be written.

    The snapshot is taken here; the file is written (and fsync'd) on a
    thread, never on the event loop.
    """
    data = json.dumps(host.status(), sort_keys=True).encode()
    try:
        await trio.to_thread.run_sync(replace_atomically, path, [data])
    except OSError as exc:
        raise ConfigError(f"cannot write status file {path}: {exc.strerror or exc}") from None


async def _refresh_status(host: Host, path: Path, as_json: bool, failed: str | None) -> str | None:
    """Rewrite the status file while running; a failure (disk full) is said once, not fatal.

    Returns the failure in force (None when the write worked).
    """
    try:
        await _write_status(host, path)
    except ConfigError as exc:
        if str(exc) != failed:
            upview.say(
                as_json,
                {"event": "status_failed", "error": str(exc)},
                f"[red]status file not updated:[/] {escape(str(exc))}",
            )
        return str(exc)
    return None
