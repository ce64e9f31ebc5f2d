"""Integration scenario, run inside a fresh network namespace (see test_lattice_netns.py).

Five ``meshhost up`` processes share a lattice secret and nothing else (each
its own data dir, port 0, mDNS on a private service type, profile local); a
sixth has another secret.  Steps, each a bounded polling loop:

1. all five see five alive members;
2. one is ``kill -9``'d; the four others mark it dead;
3. it restarts on the same data dir (same host key, new port); all five see
   five alive again;
4. one is stopped with SIGTERM; the others mark it left (leave intent);
5. throughout, the sixth is never seen and sees no one.

Prints one JSON report on stdout (timings in seconds, final views, counters).
Every process is stopped on the way out, whatever happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from meshhost.identity.keyring import encode_secret
from meshhost.testing import poll_until

STEP_TIMEOUT_S = 25.0
# Six Python processes importing wasmtime at once: ~1 s on an idle machine, 21 s
# measured at load 29 on 2 cores (the step only waits as long as it takes).
START_TIMEOUT_S = 90.0
"""Per step; a LOCAL-profile crash is declared dead in well under 10 s."""
POLL_S = 0.1


class Proc:
    def __init__(self, name: str, root: Path, secret: str, service_type: str) -> None:
        self.name = name
        self.data_dir = root / name
        self.status_file = root / f"{name}.status.json"
        self.log = root / f"{name}.log"
        self.secret = secret
        self.service_type = service_type
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.status_file.unlink(missing_ok=True)
        env = dict(os.environ, MESHHOST_LATTICE_SECRET=self.secret)
        argv = [
            sys.executable, "-m", "meshhost", "up",
            "--profile", "local",
            "--data-dir", str(self.data_dir),
            "--mdns-service-type", self.service_type,
            "--status-file", str(self.status_file),
            "--json",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(argv, env=env, stdout=log, stderr=log)

    def status(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None

    def host_id(self) -> str | None:
        st = self.status()
        return None if st is None else st["host_id"]

    def view(self) -> dict[str, str]:
        st = self.status()
        return {} if st is None else {m["id"]: m["state"] for m in st["members"]}

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def wait_for(predicate, what: str, timeout_s: float = STEP_TIMEOUT_S) -> float:
    return round(poll_until(predicate, what, timeout_s, interval_s=POLL_S), 2)


def main() -> None:
    service_type = sys.argv[1]
    secret = encode_secret(os.urandom(32))
    other_secret = encode_secret(os.urandom(32))
    report: dict[str, Any] = {"ok": False}
    with tempfile.TemporaryDirectory(prefix="meshhost-netns-") as tmp:
        root = Path(tmp)
        hosts = [Proc(f"h{i}", root, secret, service_type) for i in range(5)]
        stranger = Proc("stranger", root, other_secret, service_type)
        everyone = [*hosts, stranger]
        try:
            for p in everyone:
                p.start()
            report["started_s"] = wait_for(
                lambda: all(p.host_id() for p in everyone),
                "every host wrote its status",
                START_TIMEOUT_S,
            )
            ids = {p.host_id() for p in hosts}

            def alive_everywhere(group: list[Proc], expected: set) -> bool:
                for p in group:
                    view = p.view()
                    if {i for i, s in view.items() if s == "alive"} != expected:
                        return False
                return True

            report["formed_s"] = wait_for(
                lambda: alive_everywhere(hosts, ids), "all five see five alive"
            )
            victim, survivors = hosts[4], hosts[:4]
            victim_id = victim.host_id()
            victim.kill9()
            report["dead_s"] = wait_for(
                lambda: all(p.view().get(victim_id) == "dead" for p in survivors),
                "the four survivors mark the killed host dead",
            )
            victim.start()
            report["rejoined_s"] = wait_for(
                lambda: victim.host_id() == victim_id and alive_everywhere(hosts, ids),
                "the restarted host is alive in every view",
            )
            # A graceful stop (SIGTERM) is a leave intent: the others see "left".
            leaver, stayers = hosts[0], hosts[1:]
            leaver_id = leaver.host_id()
            leaver.stop()
            report["leaver_exit_code"] = leaver.popen.returncode if leaver.popen else None
            report["left_s"] = wait_for(
                lambda: all(p.view().get(leaver_id) == "left" for p in stayers),
                "the others mark the stopped host left",
            )
            stranger_id = stranger.host_id()
            report["stranger_seen_by"] = [p.name for p in hosts if stranger_id in p.view()]
            report["stranger_sees"] = sorted(set(stranger.view()) - {stranger_id})
            report["seal_rejected"] = {
                p.name: p.status()["stats"].get("seal.bad_auth", 0) for p in hosts
            }
            report["mdns_other_lattice"] = {
                p.name: p.status()["stats"].get("mdns.other_lattice", 0) for p in everyone
            }
            report["ok"] = True
        except AssertionError as exc:  # poll_until timed out
            report["error"] = str(exc)
            report["views"] = {p.name: p.view() for p in everyone}
        finally:
            for p in everyone:
                p.stop()
            if not report["ok"]:
                report["logs"] = {
                    p.name: p.log.read_text(errors="replace")[-3000:]
                    for p in everyone
                    if p.log.exists()
                }
            report["exit_codes"] = {p.name: p.popen.returncode for p in everyone if p.popen}
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
