"""`meshhost demo` stops what it started however it ends, and says why when it fails."""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshhost.cli import main
from meshhost.cli.demo import DemoHost


def test_sigterm_stops_the_demo_hosts_and_removes_its_dir() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshhost", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the demo and its hosts share this process group
    )
    assert proc.stdout is not None
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "lattice formed" in line:
                break
        proc.send_signal(signal.SIGTERM)  # a closed terminal, `timeout`, a service manager
        lines += proc.stdout.readlines()
        assert proc.wait(30) == 128 + signal.SIGTERM
        root = re.search(r"state and logs in (\S+)", "".join(lines))
        assert root is not None, lines
        assert not Path(root.group(1)).exists()
        with pytest.raises(ProcessLookupError):  # no host of the demo outlives it
            os.killpg(proc.pid, 0)
        assert "Traceback" not in "".join(lines)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_demo_with_128_plus_its_number(
    monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    stopped: list[str] = []

    def interrupted(hosts: list[DemoHost], root: Path) -> None:
        signal.raise_signal(signum)  # Ctrl-C, or a closed terminal, or `timeout`

    monkeypatch.setattr("meshhost.cli.demo._run_demo", interrupted)
    monkeypatch.setattr(DemoHost, "stop", lambda self: stopped.append(self.name))
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 128 + signum, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback, no "Aborted!"
    assert "Aborted" not in result.output
    assert len(stopped) == 3  # every host was stopped first


def test_a_host_that_exits_ends_the_demo_with_its_last_log_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def start_and_fail(self: DemoHost) -> None:
        self.log.write_text("error: cannot bind UDP 127.0.0.1:7946: Address already in use\n")
        self.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
        self.proc.wait()

    monkeypatch.setattr(DemoHost, "start", start_and_fail)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # no traceback
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: host-1 exited with code 1; its log ends: error: cannot bind")
    kept = re.search(r"logs are kept in (\S+)\)$", error)
    assert kept is not None, error
    assert (Path(kept.group(1)) / "host-1.log").exists()
    shutil.rmtree(kept.group(1))
