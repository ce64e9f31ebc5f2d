"""Real ``meshhost up`` processes in a private network namespace, driven by the CLI.

A :class:`ProcLattice` makes a network namespace with only ``lo`` (``unshare
-n``, held open by a ``sleep``), starts hosts inside it with ``nsenter``
(mDNS on a private service type, profile ``local``, each its own data dir and
status file), and runs ``python -m meshhost ...`` CLI commands against a
host's control socket (a file in its data dir, so the CLI itself needs no
namespace).  Every wait is a bounded poll that fails with what it waited for,
every host's view and the tail of its log.  On exit every process is killed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

from meshhost import examples
from meshhost.identity.keyring import encode_secret
from meshhost.testing import poll_until
from tests.systools import require_netns

WAIT_S = 25.0
"""Default bound of a polling wait (formation, detection, propagation)."""
POLL_S = 0.1
CLI_MARGIN_S = 10.0
"""Added to a CLI call's own deadline for its subprocess timeout: Python and
meshhost start in ~0.7 s on a quiet machine, several seconds on a loaded one."""
NETNS_READY_S = 10.0


def build_modules(out_dir: Path) -> dict[str, tuple[Path, str]]:
    """The shipped examples and :func:`sleeper`, signed: name -> (path, actor id)."""
    built = {name: examples.build(name, out_dir) for name in ("echo", "kvcounter")}
    built["sleeper"] = build_sleeper(out_dir)
    return built


SLEEP_SUBJECT = "sleeper.never"
SLEEP_MS = 3500
"""How long a ``Sleep`` call waits: long enough to be seen in flight in a status file
(rewritten every second), short enough for the host's drain on a graceful stop (5 s)."""

_SLEEPER_WAT = """
;; sleeper: "Sleep" waits SLEEP_MS without using CPU, by sending Messaging.Request
;; to a subject nobody answers (it subscribes to it itself, so the request is not
;; refused as having no responders); it ignores the timeout and answers "slept".
;; Any other operation (the subscription's deliveries) answers an empty success.
(module
  (import "wasmbus" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wasmbus" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wasmbus" "__host_call"
    (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Sleep")
  (data (i32.const 32) "default")
  (data (i32.const 48) "wasmcloud:messaging")
  (data (i32.const 80) "Messaging.Request")
  (data (i32.const 192) "slept")
  (data (i32.const 256) "REQUEST")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (if (i32.gt_u (i32.add (local.get $op_len) (local.get $msg_len)) (i32.const 60000))
      (then unreachable))
    (call $guest_request (i32.const 1024) (i32.add (i32.const 1024) (local.get $op_len)))
    (if (i32.and (i32.eq (local.get $op_len) (i32.const 5))
                 (i32.and (i32.eq (i32.load (i32.const 1024)) (i32.load (i32.const 16)))
                          (i32.eq (i32.load8_u (i32.const 1028)) (i32.load8_u (i32.const 20)))))
      (then
        (drop (call $host_call (i32.const 32) (i32.const 7) (i32.const 48) (i32.const 19)
                               (i32.const 80) (i32.const 17) (i32.const 256) (i32.const LEN)))
        (call $guest_response (i32.const 192) (i32.const 5))
        (return (i32.const 1))))
    (call $guest_response (i32.const 0) (i32.const 0))
    (i32.const 1))
)
"""


def build_sleeper(out_dir: Path) -> tuple[Path, str]:
    """A signed actor (claims: wasmcloud:messaging) whose ``Sleep`` takes SLEEP_MS."""
    from meshhost.identity import nkeys
    from meshhost.identity.claims import sign_module
    from meshhost.runtime import wat_to_wasm

    request = msgpack.packb(
        {"subject": SLEEP_SUBJECT, "body": b"", "timeoutMs": SLEEP_MS}, use_bin_type=True
    )
    text = _SLEEPER_WAT.replace('"REQUEST"', '"' + "".join(f"\\{b:02x}" for b in request) + '"')
    text = text.replace("(i32.const LEN)", f"(i32.const {len(request)})")
    issuer = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)
    module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    signed = sign_module(
        wat_to_wasm(text),
        issuer=issuer,
        subject=module,
        name="sleeper",
        caps=("wasmcloud:messaging",),
        rev=1,
        ver="0.1.0",
        now=time.time(),
    )
    path = out_dir / "sleeper.wasm"
    path.write_bytes(signed)
    return path, module.public_key


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without MESHHOST_* settings (a developer's own must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHHOST_")}
    env.update(extra)
    return env


@dataclass
class CliResult:
    """One finished ``meshhost`` CLI command."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float

    def describe(self) -> str:
        return (
            f"`meshhost {' '.join(self.argv)}` exited {self.returncode} after "
            f"{self.elapsed_s:.2f} s\nstdout: {self.stdout[-2000:]}\n"
            f"stderr: {self.stderr[-2000:]}"
        )

    def ok(self) -> CliResult:
        assert self.returncode == 0, self.describe()
        assert "Traceback" not in self.stderr, self.describe()
        return self

    def json(self) -> Any:
        self.ok()
        return json.loads(self.stdout)

    def failed_cleanly(self) -> str:
        """Assert exit code 1 with one ``error:`` message and no traceback; return it."""
        assert self.returncode == 1, self.describe()
        assert "Traceback" not in self.stderr, self.describe()
        assert self.stderr.startswith("error: "), self.describe()
        return self.stderr.strip()


def run_cli(
    args: list[str],
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> CliResult:
    """``python -m meshhost ARGS``; a command that outlives ``timeout_s`` fails the test."""
    argv = [sys.executable, "-m", "meshhost", *args]
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=timeout_s,
            env=env or clean_env(COLUMNS="200"),
            input=stdin,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"`meshhost {' '.join(args)}` hung: no exit within {timeout_s} s\n"
            f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}"
        ) from None
    return CliResult(
        list(args),
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
        time.monotonic() - started,
    )


def parallel(*thunks: Callable[[], Any]) -> list[Any]:
    """Run blocking thunks (CLI commands) at once; their results in order."""
    with ThreadPoolExecutor(max_workers=len(thunks)) as pool:
        futures = [pool.submit(thunk) for thunk in thunks]
        return [f.result() for f in futures]


class Netns:
    """A network namespace with only ``lo`` up, held open by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", "ip link set lo up && echo ready && exec sleep 86400"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.holder.stdout is not None
        ready, _, _ = select.select([self.holder.stdout], [], [], NETNS_READY_S)
        line = self.holder.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.close()
            pytest.fail(f"the network namespace did not come up within {NETNS_READY_S} s")

    @property
    def enter(self) -> list[str]:
        """Prefix that runs a command inside the namespace (nsenter execs it: same pid)."""
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net"]

    def run(self, argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [*self.enter, *argv], capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{argv} in the namespace: no exit within {timeout_s} s") from None

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


_HTTP_GET = """
import json, sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode("utf-8", "replace")}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode("utf-8", "replace")}))
except Exception as e:
    print(json.dumps({"status": None, "error": f"{type(e).__name__}: {e}"}))
"""


class HostProc:
    """One ``meshhost up`` process (restartable on the same data dir)."""

    def __init__(
        self,
        lattice: ProcLattice,
        name: str,
        secret: str,
        lattice_name: str,
        extra_args: tuple[str, ...] = (),
        json_output: bool = True,
        netns: Netns | None = None,
        profile: str | None = "local",
    ) -> None:
        self.lattice = lattice
        self.netns = netns
        """The namespace it runs in; None: the lattice's own."""
        self.profile = profile
        """``--profile``; None: the default profile (lan)."""
        self.name = name
        self.data_dir = lattice.root / name
        self.status_file = lattice.root / f"{name}.status.json"
        self.log = lattice.root / f"{name}.log"
        self.secret = secret
        self.lattice_name = lattice_name
        self.extra_args = extra_args
        self.json_output = json_output
        self.popen: subprocess.Popen[bytes] | None = None
        self._id: str | None = None
        self.program: tuple[str, ...] = ("-m", "meshhost")
        """What python runs (a test may run a modified host script instead)."""

    # -- process -------------------------------------------------------------

    def start(self) -> HostProc:
        netns = self.netns or self.lattice.netns
        assert netns is not None
        self.status_file.unlink(missing_ok=True)
        argv = [
            *netns.enter, sys.executable, *self.program, "up",
            "--lattice", self.lattice_name,
            *(["--profile", self.profile] if self.profile else []),
            "--data-dir", str(self.data_dir),
            "--mdns-service-type", self.lattice.service_type,
            "--status-file", str(self.status_file),
        ]  # fmt: skip
        argv += ["--json"] if self.json_output else []
        argv += self.extra_args
        with self.log.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                argv, stdout=log, stderr=log, env=clean_env(MESHHOST_LATTICE_SECRET=self.secret)
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def kill9(self) -> None:
        if self.running:
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def wait_exit(self, timeout_s: float) -> int:
        assert self.popen is not None
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {timeout_s} s\n{self.log_tail()}"
            ) from None

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (graceful leave); returns the exit code."""
        assert self.popen is not None
        if self.running:
            self.popen.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout_s)

    def log_tail(self, chars: int = 2500) -> str:
        try:
            return f"--- log of {self.name}:\n" + self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return f"--- {self.name} has no log"

    # -- what it says ----------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        """The status file of the running process (None while starting or when dead)."""
        if not self.running:
            return None
        try:
            data: dict[str, Any] = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None
        return data

    @property
    def host_id(self) -> str:
        if self._id is None:
            status = self.status()
            assert status is not None, f"{self.name} has not written its status yet"
            self._id = str(status["host_id"])
        return self._id

    def view(self) -> dict[str, str]:
        """Host id -> membership state as this host sees it (itself included)."""
        status = self.status()
        if status is None:
            return {}
        return {m["id"]: m["state"] for m in status["members"]}

    def alive_ids(self) -> set[str]:
        return {i for i, s in self.view().items() if s == "alive"}

    def stat(self, name: str) -> int:
        status = self.status()
        return 0 if status is None else int(status["stats"].get(name, 0))

    # -- CLI ------------------------------------------------------------------

    def cli(
        self, *args: str, timeout_s: float = 10.0 + CLI_MARGIN_S, stdin: bytes | None = None
    ) -> CliResult:
        """``meshhost ARGS --data-dir <this host's data dir>``."""
        return run_cli([*args, "--data-dir", str(self.data_dir)], timeout_s=timeout_s, stdin=stdin)

    def links(self) -> list[tuple[str, str, str]]:
        """``link list --json`` as (actor, contract, link name) rows."""
        return [
            (x["actor"], x["contract"], x["link_name"])
            for x in self.cli("link", "list", "--json").json()
        ]

    def call(
        self,
        actor: str,
        operation: str,
        payload: str = "",
        *,
        deadline_s: float = 10.0,
        as_json: bool = True,
    ) -> CliResult:
        """``meshhost call --timeout deadline_s [--json]``, bounded by deadline + margin."""
        args = ["call", actor, operation, payload, "--timeout", str(deadline_s)]
        return self.cli(
            *args, *(["--json"] if as_json else []), timeout_s=deadline_s + CLI_MARGIN_S
        )


class ProcLattice:
    """Hosts in one private namespace with one mDNS service type; see the module doc."""

    def __init__(self, root: Path, lattice_name: str = "default") -> None:
        self.root = root
        self.lattice_name = lattice_name
        self.secret = encode_secret(os.urandom(32))
        self.service_type = f"_mh-{secrets.token_hex(3)}._udp.local."
        self.netns: Netns | None = None
        self.hosts: list[HostProc] = []
        self.timings: list[tuple[str, float]] = []
        """(what, seconds) of every wait, for ``pytest -s`` and failure reports."""
        self._t0 = time.monotonic()

    def __enter__(self) -> ProcLattice:
        self.netns = Netns()
        return self

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts:
            if host.running and host.popen is not None:
                host.popen.send_signal(signal.SIGKILL)
        for host in self.hosts:
            if host.popen is not None:
                host.popen.wait()
        if self.netns is not None:
            self.netns.close()

    def add(
        self,
        name: str,
        *,
        secret: str | None = None,
        start: bool = True,
        extra_args: tuple[str, ...] = (),
        json_output: bool = True,
        netns: Netns | None = None,
        profile: str | None = "local",
    ) -> HostProc:
        """A host (started unless ``start=False``); ``extra_args`` go to `meshhost up`;
        ``json_output=False`` runs it as a person would, printing for a terminal;
        ``netns`` is the namespace to run in (default: the lattice's own) and
        ``profile=None`` leaves the default timing profile."""
        host = HostProc(
            self,
            name,
            secret or self.secret,
            self.lattice_name,
            extra_args,
            json_output,
            netns,
            profile,
        )
        self.hosts.append(host)
        if start:
            host.start()
        return host

    def start_hosts(self, *names: str) -> tuple[list[HostProc], float]:
        """Start hosts and wait until each sees all of them alive; (hosts, seconds it took)."""
        started = time.monotonic()
        hosts = [self.add(name) for name in names]
        self.wait_for(lambda: all(h.status() for h in hosts), "every host wrote its status")
        ids = {h.host_id for h in hosts}
        self.wait_for(
            lambda: all(h.alive_ids() == ids for h in hosts),
            f"each of {', '.join(names)} sees all of them alive",
        )
        return hosts, time.monotonic() - started

    def wait_for(
        self, predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S
    ) -> float:
        """Poll ``predicate``; seconds it took, or fail saying what and showing every host."""
        took = poll_until(predicate, what, timeout_s, interval_s=POLL_S, describe=self.diagnostics)
        self.timings.append((what, took))
        return took

    def diagnostics(self) -> str:
        parts = [f"waits so far: {self.report_timings()}"]
        for host in self.hosts:
            view = {k[:8]: v for k, v in host.view().items()}
            parts.append(f"{host.name} (running={host.running}) sees {view}")
        parts += [host.log_tail() for host in self.hosts]
        return "\n".join(parts)

    def report_timings(self) -> str:
        waits = "; ".join(f"{what}: {took:.2f} s" for what, took in self.timings)
        return f"{waits} (test ran {time.monotonic() - self._t0:.1f} s)"

    # -- inside the namespace ----------------------------------------------------

    def http_get(
        self, url: str, timeout_s: float = 3.0, netns: Netns | None = None
    ) -> dict[str, Any]:
        """GET ``url`` from inside ``netns`` (default: the lattice's own namespace):
        {status, body} or {status: None, error}."""
        netns = netns or self.netns
        assert netns is not None
        done = netns.run(
            [sys.executable, "-c", _HTTP_GET, url, str(timeout_s)],
            timeout_s=timeout_s + CLI_MARGIN_S,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def tcp_listener_pid(self, port: int) -> int | None:
        """The pid of the process listening on TCP ``port`` in the namespace, if any."""
        assert self.netns is not None
        done = self.netns.run(["ss", "-Htlnp", f"sport = :{port}"], timeout_s=10)
        found = re.search(r"pid=(\d+)", done.stdout)
        return int(found.group(1)) if found else None


def http_request_payload(path: Path, host_header: str = "cli") -> str:
    """Write a msgpack wasmcloud:httpserver HttpRequest to ``path``; ``@path`` for `call`."""
    request = {
        "method": "GET",
        "path": "/",
        "queryString": "",
        "header": {"host": [host_header]},
        "body": b"",
    }
    path.write_bytes(msgpack.packb(request, use_bin_type=True))
    return f"@{path}"


def kv_count(result: CliResult) -> int:
    """The counter in the HttpResponse of a ``call --json`` to kvcounter."""
    answer = msgpack.unpackb(bytes.fromhex(result.json()["payload"]), raw=False)
    assert answer["statusCode"] == 200, answer
    return int(json.loads(answer["body"])["count"])


@pytest.fixture(name="lattice")
def lattice_fixture(tmp_path: Path) -> Iterator[ProcLattice]:
    """A private network namespace for `meshhost up` processes; every one is killed after.

    A fixture for the conftest of each folder that uses it (import it there)."""
    require_netns()
    with ProcLattice(tmp_path) as lat:
        yield lat
        print(f"\nwaits: {lat.report_timings()}")
