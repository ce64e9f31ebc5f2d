"""``meshhost demo``: a three-host lattice on loopback that serves an actor and heals itself.

Offline and with no configuration: it makes a fresh lattice secret (with an
admin key, as `lattice new` does, so roles are enforced; it shows an unsigned
change refused and signs its own changes with that key) in a
temporary directory, starts three ``meshhost up`` processes on 127.0.0.1
(static seeds, no mDNS, the ``local`` timing profile) and waits until every
host sees the other two.  Then it builds and signs the example actor
``kvcounter`` (key-value + HTTP server), links it to key-value storage and
to an HTTP listener (every host tries to listen; on one machine one gets the
port), starts an instance on the host holding the port and one on another,
sends HTTP requests and calls it from every host.  It ``kill -9``'s the host
holding the port and shows calls keep being answered by the other instance,
another host takes the port over, and the others declare the dead one dead;
it restarts that host on the same data dir and port, and shows the lattice
whole again with the host's key-value data intact.
Everything it starts, it stops, also on Ctrl-C, SIGTERM or SIGHUP (it then
exits 128 + the signal's number: 130 after Ctrl-C).  If it
fails, it keeps the hosts' logs and says where.  Each step prints the CLI
command that does the same by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import msgpack
import trio

from meshhost import examples
from meshhost.cli import main
from meshhost.cli.hostclient import sign_entries
from meshhost.cli.output import exit_by_signal, stdout
from meshhost.control.api import MAX_MESSAGE_BYTES, ControlClient
from meshhost.control.authz import required_role
from meshhost.datadir import CONTROL_SOCKET, admin_key_path, write_private
from meshhost.errors import ControlError, DecodeError, ErrorCode, LocalProtocolError, MeshError
from meshhost.identity import nkeys, short_id
from meshhost.identity.keyring import encode_secret, generate_secret
from meshhost.identity.operators import ADMIN_LINE, NONCE_BYTES, sign_request
from meshhost.wire import Limits, Reader

HOSTS = 3
LATTICE = "demo"
CALL_TIMEOUT_MS = 3000
HTTP_TIMEOUT_S = 3.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = int(tcp.getsockname()[1])
        udp.bind(("127.0.0.1", port))  # the host needs the same number for both
        return port


class DemoHost:
    def __init__(
        self,
        index: int,
        root: Path,
        secret_file: Path,
        port: int,
        seeds: list[int],
        admin: nkeys.KeyPair | None = None,
    ):
        self.admin = admin
        """The lattice's admin key: signs the ops that need a role, as the CLI does."""
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
        """The host's status file; None while it starts. Raises if the host exited."""
        self.check_running()
        if self.proc is None:
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

    def check_running(self) -> None:
        """Raise LocalProtocolError naming the cause if this host's process has exited."""
        if self.proc is None or self.proc.poll() is None:
            return
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        last = lines[-1].strip() if lines else "no output"
        raise LocalProtocolError(
            f"{self.name} exited with code {self.proc.returncode}; its log ends: {last}"
        )

    def control(self, op: str, *, signed: bool = True, **args: Any) -> Any:
        """One control request to this host over its socket (as the CLI sends it), signed
        with the admin key when the op needs a role (``signed=False``: as a secret holder
        without an operator key would send it)."""
        self.check_running()
        client = ControlClient(self.data_dir / CONTROL_SOCKET)
        admin = self.admin if signed else None
        if admin is not None:
            client.sign = lambda op, args: (
                None
                if required_role(op) is None
                else sign_request(
                    admin,
                    LATTICE,
                    op,
                    args,
                    ts_ms=int(time.time() * 1000),
                    nonce=os.urandom(NONCE_BYTES),
                )
            )
            client.sign_entries = lambda entries: sign_entries(admin, LATTICE, entries)
        return trio.run(lambda: client.request(op, **args))

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


def _wait_http(what: str, port: int, timeout_s: float) -> tuple[float, str]:
    """Wait until ``GET /`` is answered; (seconds waited, that answer).

    The answer is returned, not thrown away: every GET increments the counter.
    """
    answers: list[str] = []

    def served() -> bool:
        answer = _http_get(port)
        if answer is not None:
            answers.append(answer)
        return answer is not None

    took = _wait(what, served, timeout_s)
    return took, answers[-1]


def _http_get(port: int) -> str | None:
    """The kvcounter's answer to ``GET /`` on 127.0.0.1:port, or None if not served."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=HTTP_TIMEOUT_S) as rsp:
            answer = json.loads(rsp.read())
    except (OSError, ValueError):
        return None
    return f"200 count={answer['count']}" if isinstance(answer, dict) else None


def _request_bytes(caller: str) -> bytes:
    """A wasmcloud:httpserver HttpRequest, as ``meshhost call`` sends it."""
    packed: bytes = msgpack.packb(
        {
            "method": "GET",
            "path": "/",
            "queryString": "",
            "header": {"host": [caller]},
            "body": b"",
        },
        use_bin_type=True,
    )
    return packed


_ANSWER_LIMITS = Limits(max_bytes=MAX_MESSAGE_BYTES)


def _call_from(host: DemoHost, actor: str, names: dict[str, str]) -> str:
    """Call the actor from ``host``; a line saying who answered, or why it failed."""
    started = time.monotonic()
    try:
        result = host.control(
            "call",
            actor=actor,
            operation="HttpServer.HandleRequest",
            payload=_request_bytes(host.name),
            timeout_ms=CALL_TIMEOUT_MS,
        )
    except (ControlError, LocalProtocolError) as exc:
        return f"[red]✗[/] from {host.name}: {exc}"
    ms = (time.monotonic() - started) * 1000
    try:
        answer = Reader(DecodeError).unpack(result["payload"], _ANSWER_LIMITS, "the answer")
        count = json.loads(answer["body"])["count"]
    except (DecodeError, ValueError, KeyError, TypeError) as exc:
        return f"[red]✗[/] from {host.name}: the kvcounter's answer is unreadable ({exc})"
    where = names.get(result["host"], short_id(result["host"]))
    return f"[green]✓[/] from {host.name}: count={count}, run by {where} ({ms:.0f} ms)"


def _free_tcp_port() -> int:
    with socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        return int(tcp.getsockname()[1])


def _say(text: str) -> None:
    stdout.print(text, highlight=False)


def _cmd(text: str) -> None:
    stdout.print(f"    [dim]$ {text}[/]", highlight=False)


@main.command()
@click.option("--keep", is_flag=True, help="Keep the demo's data dirs and logs.")
def demo(keep: bool) -> None:
    """Run three hosts on loopback with an HTTP actor, kill one, and watch the lattice heal."""
    root = Path(tempfile.mkdtemp(prefix="meshhost-demo-"))
    secret_file = root / "lattice.secret"
    # As `meshhost lattice new` does: the secret file names an admin key and its seed
    # lies beside it (0600), so roles are enforced and the demo's changes are signed by it
    # (so are the CLI commands it shows, run by hand with --data-dir of a demo host).
    admin = nkeys.generate(nkeys.Prefix.OPERATOR, os.urandom)
    write_private(
        secret_file,
        f"{encode_secret(generate_secret(os.urandom))}\n{ADMIN_LINE}{admin.public_key}\n",
    )
    write_private(admin_key_path(secret_file), admin.encoded_seed + "\n")
    ports = [_free_port() for _ in range(HOSTS)]
    hosts = [DemoHost(i, root, secret_file, ports[i], ports[:i], admin) for i in range(HOSTS)]
    stdout.print(f"[bold]meshhost demo[/]: lattice {LATTICE!r}, {HOSTS} hosts on 127.0.0.1")
    _say(f"[dim]state and logs in {root} ({'kept' if keep else 'removed'} at the end)[/]")
    keep_root = keep
    stopped_by: list[int] = []
    try:
        with _stop_on_termination(stopped_by):
            _run_demo(hosts, root)
    except KeyboardInterrupt:
        exit_by_signal(stopped_by[0] if stopped_by else signal.SIGINT)  # after the cleanup below
    except (MeshError, click.ClickException) as exc:
        keep_root = True  # the hosts' logs say what went wrong
        why = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        raise click.ClickException(f"{why} (the hosts' logs are kept in {root})") from None
    finally:
        for host in hosts:
            host.stop()
        if not keep_root:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _stop_on_termination(stopped_by: list[int]) -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo as Ctrl-C does, so its hosts are stopped, not orphaned.
    The signal is appended to ``stopped_by`` (for the exit code)."""

    def as_ctrl_c(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, signal.SIG_IGN):
            raise KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)  # inside trio.run: trio delivers it safely

    previous = {sig: signal.signal(sig, as_ctrl_c) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_demo(hosts: list[DemoHost], root: Path) -> None:
    for host in hosts:
        host.start()

    def formed() -> bool:
        views = [h.alive_view() for h in hosts]
        return all(len(v) == HOSTS for v in views) and len({frozenset(v) for v in views}) == 1

    took = _wait("hosts are finding each other", formed, 30)
    stdout.print(f"[green]✓[/] lattice formed in {took:.1f} s:")
    for host in hosts:
        _say(f"    {host.name}  {host.host_id()}  port {host.port}")
    names = {h.host_id(): h.name for h in hosts}
    _show_roles(hosts[0])
    _run_actor(hosts, root, names)


def _show_roles(host: DemoHost) -> None:
    """Show that the lattice enforces roles: an unsigned change is refused."""
    try:
        host.control("config_put", signed=False, key="demo", value="x")
    except ControlError as exc:
        if exc.code != ErrorCode.DENIED:
            raise
        _say(
            f"[green]✓[/] roles enforced: a change not signed by an operator key is refused "
            f"({str(exc).split(':')[0]})"
        )
    else:
        raise LocalProtocolError("the demo lattice took an unsigned change: roles are not enforced")
    if host.admin is not None:
        _say(
            f"    [dim]admin key {host.admin.public_key[:12]}… (its seed beside the secret "
            "file) signs the demo's changes[/]"
        )


def _http_holder(hosts: list[DemoHost]) -> DemoHost | None:
    """The host whose HTTP server holds the link's port (on one machine only one can)."""
    for host in hosts:
        try:
            if host.control("inventory").get("http"):
                return host
        except (ControlError, LocalProtocolError):
            continue
    return None


def _run_actor(hosts: list[DemoHost], root: Path, names: dict[str, str]) -> None:
    module, actor = examples.build("kvcounter", root / "actors")
    _say(f"[bold]kvcounter[/] actor {actor[:12]}… signed for key-value and HTTP server")
    http_port = _free_tcp_port()
    third = hosts[2]
    third.control(
        "link_put",
        actor=actor,
        contract="wasmcloud:keyvalue",
        link_name="default",
        provider="",
        values={},
    )
    third.control(
        "link_put",
        actor=actor,
        contract="wasmcloud:httpserver",
        link_name="default",
        provider="",
        values={"ADDRESS": f"127.0.0.1:{http_port}"},
    )
    _cmd(f"meshhost link put {actor[:8]}… wasmcloud:keyvalue   (made on host-3)")
    _cmd(
        f"meshhost link put {actor[:8]}… wasmcloud:httpserver --value ADDRESS=127.0.0.1:{http_port}"
    )
    _wait(
        "the links reach every host",
        lambda: (
            all(len(h.control("link_list")) == 2 for h in hosts) and _http_holder(hosts) is not None
        ),
        30,
    )
    holder = _http_holder(hosts)
    assert holder is not None
    other = next(h for h in hosts if h is not holder)
    _say(
        f"[green]✓[/] links on every host; {holder.name} holds port {http_port} "
        "(on one machine only one host can listen there)"
    )
    for host in (holder, other):
        hosts[0].control("start", module=module.read_bytes(), count=1, host=host.host_id())
    _cmd(f"meshhost start {module.name} --host {holder.name}; … --host {other.name}")
    _say(f"[green]✓[/] one instance on {holder.name}, one on {other.name}")
    took, first = _wait_http("HTTP is served", http_port, 30)
    _say(f"[green]✓[/] HTTP served on http://127.0.0.1:{http_port}/ after {took:.1f} s")
    _say(f"    GET / -> {first}")
    for _ in range(2):
        _say(f"    GET / -> {_http_get(http_port)}")
    _say("Calls from every host (each host keeps its own key-value data, so counts are per host):")
    _cmd(f"meshhost call {actor[:8]}… HttpServer.HandleRequest @request.msgpack")
    for host in hosts:
        _say("    " + _call_from(host, actor, names))

    victim, survivors = holder, [h for h in hosts if h is not holder]
    victim_id = victim.host_id()
    _say(
        f"[yellow]✗[/] kill -9 {victim.name} ({short_id(victim_id)}): it runs an instance and "
        "serves HTTP"
    )
    victim.stop(signal.SIGKILL)
    killed = time.monotonic()
    _say(f"Calls right after the kill (answered by {other.name}, the other instance):")
    for host in survivors:
        _say("    " + _call_from(host, actor, names))
    _, answer = _wait_http("another host takes over the HTTP port", http_port, 30)
    new_holder = _http_holder(survivors)
    _say(
        f"[green]✓[/] HTTP answered again {time.monotonic() - killed:.1f} s after the kill, "
        f"from {new_holder.name if new_holder else 'a survivor'}: GET / -> {answer}"
    )
    took = _wait(
        f"survivors declare {victim.name} dead",
        lambda: all(h.state_of(victim_id) == "dead" for h in survivors),
        60,
    )
    _say(
        f"[green]✓[/] every survivor declared {victim.name} dead "
        f"{time.monotonic() - killed:.1f} s after the kill"
    )
    for host in survivors:
        _say("    " + _call_from(host, actor, names))

    stdout.print(f"[cyan]↻[/] restarting {victim.name} on the same data dir and port")
    victim.start()
    all_ids = set(names)
    took = _wait(
        "the lattice is healing", lambda: all(h.alive_view() == all_ids for h in hosts), 60
    )
    _say(f"[green]✓[/] {victim.name} is back: {HOSTS} hosts alive after {took:.1f} s")
    victim.control("start", module=module.read_bytes(), count=1)
    _say(f"    {victim.name} runs its instance again; its key-value data survived the kill:")
    _say("    " + _call_from(victim, actor, names))
    _say(
        "Next: run `meshhost up` on several machines of one LAN with the same "
        "--secret-file; they find each other by mDNS. `meshhost --help` lists the commands."
    )
