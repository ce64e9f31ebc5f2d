"""Run a lab scenario on real ``meshhost up`` processes in network namespaces.

The run, bounded as a whole by ``timeout_s`` (an interval timer: wherever the
lab is, it stops and cleans up):

1. a hub with a bridge, one namespace per host (:mod:`~meshhost.lab.real.netns`);
   host ``i`` runs ``meshhost up --json --no-mdns`` with the scenario's profile,
   seeded with the first hosts' addresses; optional loss (nftables);
2. once every host sees every host alive: kvcounter starts on ``h01`` and gets
   its key-value link, and the workload begins (one ``meshhost call`` every
   ``calls_every_s``, from each host in turn, deadline ``call_deadline_s``);
3. after ``settle_s`` the minority is cut; during the cut each side writes a
   config entry (the directory must carry both after the heal);
4. after ``cut_s`` the cut is removed; the run waits (at most ``horizon_s``)
   until every host sees every host alive and holds the same links and config;
5. a last call reads the counter; every process is stopped and every
   namespace removed -- also on an error, the time limit, Ctrl-C or SIGTERM.

Membership events come from each host's own ``--json`` output (the lines
``meshhost up`` prints for joined/alive/suspect/dead, with the wall time);
the cut's and the heal's times are taken when the last ``ip`` command of each
has returned.  :func:`run_real` returns the rows and the history; the caller
(:mod:`~meshhost.lab.real.lab`) writes them.  The run's folder keeps
``logs/`` (each host's output and status file), ``data/`` and ``pids.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshhost.errors import LabError, LabTimeout
from meshhost.lab.real.netns import Hub, Namespace, missing_tools, nft_available, pdeathsig
from meshhost.lab.real.observe import Seen, observations
from meshhost.lab.real.spec import LabScenario

__all__ = ["RealRun", "run_real"]

PORT = 7946
FORM_S = 90.0
"""How long 10+ Python hosts may take to start and form on a loaded machine."""
CLI_MARGIN_S = 15.0
"""Added to a CLI call's deadline for the subprocess: Python starts slowly under load."""
POLL_S = 0.25
SEEDS = 3
MEMBER_EVENTS = {"joined", "alive", "suspect", "dead", "left"}

Say = Callable[[str], None]


_STOPPED: list[BaseException] = []
"""What a signal asked for (Ctrl-C, SIGTERM, the time limit).  The handlers also
raise it, but an exception raised by a handler can be swallowed (one arriving
while ``subprocess`` forks is only printed, by an at-fork hook): every wait of
the run goes through :func:`_sleep`, which raises it again."""


def _check() -> None:
    if _STOPPED:
        raise _STOPPED[0]


def _sleep(seconds: float) -> None:
    """``time.sleep`` that ends at once (raising) when a signal has stopped the run."""
    end = time.monotonic() + seconds
    while True:
        _check()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHHOST_")}
    env.update(extra)
    return env


@dataclass
class Host:
    name: str
    ns: Namespace
    address: str
    data_dir: Path
    status_file: Path
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    host_id: str = ""

    def status(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None
        return data

    def alive_ids(self) -> set[str]:
        status = self.status()
        if status is None:
            return set()
        return {m["id"] for m in status["members"] if m["state"] == "alive"}


@dataclass
class RealRun:
    """What a finished real run produced (also written under ``OUT/real``)."""

    observations: list[dict[str, Any]]
    history: list[dict[str, Any]]
    checks: dict[str, Any]
    formed_s: float
    notes: list[str] = field(default_factory=list)


def cli(host: Host, *args: str, timeout_s: float) -> dict[str, Any]:
    """``meshhost ARGS --data-dir`` of ``host``: {rc, out, err, hung} (never raises)."""
    argv = [sys.executable, "-m", "meshhost", *args, "--data-dir", str(host.data_dir)]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=_clean_env(COLUMNS="200"),
            preexec_fn=pdeathsig,
        )
    except subprocess.TimeoutExpired:
        return {"rc": None, "out": "", "err": "", "hung": True}
    return {"rc": done.returncode, "out": done.stdout, "err": done.stderr, "hung": False}


def _http_request(path: Path) -> str:
    import msgpack

    request = {
        "method": "GET",
        "path": "/",
        "queryString": "",
        "header": {"host": ["lab"]},
        "body": b"",
    }
    path.write_bytes(msgpack.packb(request, use_bin_type=True))
    return f"@{path}"


def _count(out: str) -> int | None:
    """The counter in kvcounter's answer (``call --json``), None if unreadable."""
    from meshhost.errors import DecodeError
    from meshhost.wire import Limits, Reader

    try:
        payload = bytes.fromhex(json.loads(out)["payload"])
        answer = Reader(DecodeError).unpack(payload, Limits(max_bytes=len(payload)), "answer")
        if answer.get("statusCode") != 200:
            return None
        return int(json.loads(answer["body"])["count"])
    except (DecodeError, ValueError, KeyError, TypeError, AttributeError):
        return None


class _Lab:
    def __init__(self, scenario: LabScenario, out: Path, say: Say, run_number: int) -> None:
        self.s = scenario
        self.run_number = run_number
        self.out = out
        self.say = say
        self.hub = Hub()
        self.hosts: dict[str, Host] = {}
        self.secret = ""
        self.lattice = f"lab-{secrets.token_hex(3)}"
        self.history: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stop_workload = threading.Event()
        self.worker: threading.Thread | None = None
        self.t0 = time.time()
        self.phase = "formed"

    # -- bookkeeping -------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.history.append(entry)

    def write_pids(self) -> None:
        """Every process this run holds, for whoever checks the cleanup."""
        pids = {
            "lab": os.getpid(),
            "namespaces": self.hub.pids(),
            "hosts": [h.popen.pid for h in self.hosts.values() if h.popen],
        }
        (self.out / "pids.json").write_text(json.dumps(pids))

    # -- hosts -----------------------------------------------------------------

    def start_hosts(self) -> float:
        from meshhost.identity.keyring import encode_secret

        self.secret = encode_secret(os.urandom(32))
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.hub.open()
        names = self.s.host_names()
        for name in names:
            ns = self.hub.attach(name)
            self.hosts[name] = Host(
                name,
                ns,
                self.hub.addresses[name],
                self.out / "data" / name,
                logs / f"{name}.status.json",
                logs / f"{name}.log",
            )
        self.write_pids()
        if self.s.loss_percent:
            if nft_available():
                self.hub.set_loss(self.s.loss_percent)
            else:
                self.say(
                    f"loss_percent={self.s.loss_percent:g} skipped: `nft` is not installed "
                    "(apt-get install nftables); the run goes on without loss"
                )
        seeds = [self.hub.addresses[n] for n in names[:SEEDS]]
        started = time.monotonic()
        for host in self.hosts.values():
            argv = [
                *host.ns.enter,
                sys.executable,
                "-m",
                "meshhost",
                "up",
                "--json",
                "--lattice",
                self.lattice,
                "--profile",
                self.s.profile,
                "--data-dir",
                str(host.data_dir),
                "--status-file",
                str(host.status_file),
                "--port",
                str(PORT),
                "--advertise",
                host.address,
                "--no-mdns",
            ]
            for seed in seeds:
                if seed != host.address:
                    argv += ["--seed", f"{seed}:{PORT}"]
            with host.log.open("ab") as log:
                host.popen = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=log,
                    preexec_fn=pdeathsig,
                    env=_clean_env(MESHHOST_LATTICE_SECRET=self.secret),
                )
        self.write_pids()
        self.wait(
            lambda: all(h.status() for h in self.hosts.values()),
            FORM_S,
            "every host wrote its status file",
        )
        for host in self.hosts.values():
            status = host.status()
            assert status is not None
            host.host_id = str(status["host_id"])
        ids = {h.host_id for h in self.hosts.values()}
        self.wait(
            lambda: all(h.alive_ids() == ids for h in self.hosts.values()),
            FORM_S,
            f"all {len(ids)} hosts see each other alive",
        )
        return time.monotonic() - started

    def wait(self, predicate: Callable[[], bool], bound_s: float, what: str) -> float | None:
        """Poll; seconds it took, LabError naming ``what`` after ``bound_s``."""
        start = time.monotonic()
        while time.monotonic() - start < bound_s:
            for host in self.hosts.values():
                if host.popen is not None and host.popen.poll() is not None:
                    raise LabError(
                        f"host {host.name} exited ({host.popen.returncode}) while "
                        f"waiting until {what}; its log: {host.log}"
                    )
            if predicate():
                return time.monotonic() - start
            _sleep(POLL_S)
        raise LabError(
            f"timed out after {bound_s:g} s waiting until {what} (logs in {self.out / 'logs'})"
        )

    def stop_hosts(self) -> None:
        for host in self.hosts.values():
            if host.popen is not None and host.popen.poll() is None:
                host.popen.send_signal(signal.SIGKILL)
        for host in self.hosts.values():
            if host.popen is not None:
                host.popen.wait()

    # -- workload ---------------------------------------------------------------

    def deploy(self) -> str:
        from meshhost import examples

        path, actor = examples.build("kvcounter", self.out / "modules")
        first = self.hosts[self.s.host_names()[0]]
        for args in (("start", str(path)), ("link", "put", actor, "wasmcloud:keyvalue")):
            done = cli(first, *args, timeout_s=10 + CLI_MARGIN_S)
            if done["rc"] != 0:
                raise LabError(
                    f"`meshhost {' '.join(args)}` on {first.name} failed: {done['err'].strip()}"
                )
        self.record(
            {
                "op": "link_put",
                "host": first.name,
                "phase": self.phase,
                "time": round(time.time() - self.t0, 3),
                "actor": actor,
                "contract": "wasmcloud:keyvalue",
                "link_name": "default",
                "outcome": "ok",
            }
        )
        linked = [(actor, "wasmcloud:keyvalue", "default")]
        self.wait(
            lambda: all(v == linked for v in self.each(self.links).values()),
            FORM_S,
            "every host holds kvcounter's link",
        )
        return actor

    def links(self, host: Host) -> list[tuple[str, str, str]] | None:
        done = cli(host, "link", "list", "--json", timeout_s=CLI_MARGIN_S)
        if done["rc"] != 0:
            return None
        try:
            rows = json.loads(done["out"])
            return sorted((x["actor"], x["contract"], x["link_name"]) for x in rows)
        except (ValueError, KeyError, TypeError):
            return None

    def invoke(self, host: Host, actor: str, payload: str) -> dict[str, Any]:
        deadline = self.s.call_deadline_s
        start = time.time()
        done = cli(
            host,
            "call",
            actor,
            "HttpServer.HandleRequest",
            payload,
            "--timeout",
            str(deadline),
            "--json",
            timeout_s=deadline + CLI_MARGIN_S,
        )
        end = time.time()
        if done["hung"]:
            outcome = "hung"
        elif done["rc"] == 0:
            outcome = "ok"
        elif (
            done["rc"] == 1 and done["err"].startswith("error: ") and "Traceback" not in done["err"]
        ):
            outcome = "fail"
        else:
            outcome = "crash"
        entry = {
            "op": "call",
            "host": host.name,
            "phase": self.phase,
            "start": round(start - self.t0, 3),
            "end": round(end - self.t0, 3),
            "deadline_s": deadline,
            "margin_s": CLI_MARGIN_S,
            "outcome": outcome,
            "count": _count(done["out"]) if outcome == "ok" else None,
            "error": done["err"].strip()[:300] or None,
        }
        self.record(entry)
        return entry

    def start_workload(self, actor: str) -> None:
        if not self.s.calls_every_s:
            return
        payload = _http_request(self.out / "request.msgpack")
        names = self.s.host_names()

        def loop() -> None:
            i = 0
            while not self.stop_workload.is_set():
                self.invoke(self.hosts[names[i % len(names)]], actor, payload)
                i += 1
                self.stop_workload.wait(self.s.calls_every_s)

        self.worker = threading.Thread(target=loop, name="lab-workload", daemon=True)
        self.worker.start()

    def end_workload(self) -> None:
        self.stop_workload.set()
        if self.worker is not None:
            self.worker.join(self.s.call_deadline_s + CLI_MARGIN_S + 5)

    # -- directory ---------------------------------------------------------------

    def config_put(self, host: Host, key: str, value: str) -> None:
        done = cli(host, "config", "put", key, value, timeout_s=10 + CLI_MARGIN_S)
        self.record(
            {
                "op": "config_put",
                "host": host.name,
                "phase": self.phase,
                "time": round(time.time() - self.t0, 3),
                "key": key,
                "value": value,
                "outcome": "ok" if done["rc"] == 0 else "fail",
                "error": done["err"].strip()[:300] or None,
            }
        )

    def config_get(self, host: Host, key: str) -> str | None:
        done = cli(host, "config", "get", key, "--json", timeout_s=CLI_MARGIN_S)
        if done["rc"] != 0:
            return None
        try:
            value = json.loads(done["out"])
        except ValueError:
            return None
        if isinstance(value, dict):
            value = value.get("value")
        return None if value is None else str(value)

    def directory(self) -> dict[str, dict[str, Any]]:
        """Each host's links and the values of the keys written during the run."""
        keys = sorted({e["key"] for e in self.history if e["op"] == "config_put"})
        return self.each(
            lambda host: {
                "links": self.links(host),
                "config": {k: self.config_get(host, k) for k in keys},
            }
        )

    def each(self, read: Callable[[Host], Any]) -> dict[str, Any]:
        """``read`` of every host, a few at once: each read is a CLI process (~1 s)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(read, self.hosts.values()))
        return dict(zip(self.hosts, results, strict=True))

    # -- the run -------------------------------------------------------------------

    def run(self) -> RealRun:
        notes = []
        formed_s = self.start_hosts()
        self.say(f"{self.s.hosts} hosts formed one lattice in {formed_s:.1f} s")
        actor = self.deploy()
        self.start_workload(actor)
        _sleep(self.s.settle_s)
        minority = self.s.minority_names()
        majority = [n for n in self.s.host_names() if n not in minority]
        self.hub.cut(minority, self.s.one_way)
        cut_at = time.time()
        self.phase = "cut"
        self.say(
            f"cut {', '.join(minority)} from the other {len(majority)} hosts"
            f"{' (one-way)' if self.s.one_way else ''} for {self.s.cut_s:g} s"
        )
        self.config_put(self.hosts[majority[0]], "lab.majority", f"written-during-cut-{cut_at:.0f}")
        self.config_put(self.hosts[minority[0]], "lab.minority", f"written-during-cut-{cut_at:.0f}")
        _sleep(max(0.0, cut_at + self.s.cut_s - time.time()))
        self.hub.heal(minority, self.s.one_way)
        heal_at = time.time()
        self.phase = "healed"
        self.say("cut removed")
        ids = {h.host_id for h in self.hosts.values()}
        try:
            took = self.wait(
                lambda: all(h.alive_ids() == ids for h in self.hosts.values()),
                self.s.horizon_s,
                "every host sees every host alive again",
            )
            self.say(f"one view again {took:.1f} s after the heal")
        except LabError as exc:
            notes.append(str(exc))
            self.say(str(exc))
        self.end_workload()
        self.phase = "final"
        self.invoke(self.hosts[majority[0]], actor, _http_request(self.out / "request.msgpack"))
        dir_deadline = time.monotonic() + self.s.horizon_s
        views = self.directory()
        while (
            time.monotonic() < dir_deadline
            and len({json.dumps(v, sort_keys=True) for v in views.values()}) > 1
        ):
            _sleep(1.0)
            views = self.directory()
        self.record({"op": "directory", "phase": "final", "views": views})
        self.say(f"directory read on every host {time.time() - heal_at:.1f} s after the heal")
        end_at = time.time()
        seen = self.read_events()
        base = {"scenario": self.s.name, "mode": "real", "seed": self.run_number, **self.s.params()}
        if self.s.loss_percent and not self.hub.loss_percent:
            base["loss_percent"] = 0.0
        rows = observations(seen, self.s.host_names(), minority, cut_at, heal_at, end_at, base)
        return RealRun(rows, self.history, {}, formed_s, notes)

    def read_events(self) -> list[Seen]:
        """Membership events from every host's ``--json`` output."""
        by_id = {h.host_id: h.name for h in self.hosts.values()}
        seen = []
        for host in self.hosts.values():
            for line in host.log.read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") in MEMBER_EVENTS and record.get("id") in by_id:
                    seen.append(
                        Seen(float(record["time"]), host.name, record["event"], by_id[record["id"]])
                    )
        return seen

    def close(self) -> None:
        self.stop_workload.set()
        try:
            self.stop_hosts()
        finally:
            self.hub.close()


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise LabTimeout in this (main) thread after ``seconds``; SIGTERM acts as Ctrl-C."""

    def stop(exc: BaseException) -> None:
        if not _STOPPED:
            _STOPPED.append(exc)
        raise _STOPPED[0]

    def expire(signum: int, frame: object) -> None:
        stop(LabTimeout(f"the lab run outlived its time limit of {seconds:g} s (--timeout)"))

    def interrupt(signum: int, frame: object) -> None:
        stop(KeyboardInterrupt())

    _STOPPED.clear()
    old_alarm = signal.signal(signal.SIGALRM, expire)
    old_term = signal.signal(signal.SIGTERM, interrupt)
    old_int = signal.getsignal(signal.SIGINT)
    if old_int is signal.default_int_handler:  # not when started with Ctrl-C ignored
        signal.signal(signal.SIGINT, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_alarm)
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
        _STOPPED.clear()


def run_real(
    scenario: LabScenario, out: Path, *, timeout_s: float, say: Say, run_number: int = 1
) -> RealRun:
    """Run ``scenario`` on real hosts; everything is cleaned up however this ends.

    ``run_number`` is the ``seed`` column of its rows (real runs are numbered 1..)."""
    why = missing_tools()
    if why:
        raise LabError(why)
    out.mkdir(parents=True, exist_ok=True)
    lab = _Lab(scenario, out, say, run_number)
    lab.write_pids()  # first of all: it marks the folder as a lab run's (see lab._clear)
    with _time_limit(timeout_s):
        try:
            run = lab.run()
            _check()  # a signal whose exception was swallowed at the very end
            return run
        finally:
            # Ctrl-C or the time limit inside the cleanup must not leave it half done.
            signal.setitimer(signal.ITIMER_REAL, 0)
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                lab.close()
                lab.write_pids()
            finally:
                signal.signal(signal.SIGINT, old)
