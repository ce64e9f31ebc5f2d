"""`meshhost top` on a pseudo-terminal: it shows the hosts and an actor's call rate; q quits.

The view is read from a pty as a person over SSH would see it (escape
sequences stripped); keys are written to the same pty.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import ProcLattice, clean_env
from tests.monitor.monitor_helpers import control_calls, start_monitored

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][A-Z0-9]|[=>])")
WAIT_S = 30.0


def _own_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty (stdin),
    so the terminal's interrupt key (Ctrl-C) sends it SIGINT as in a real terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyTop:
    """``meshhost top`` with a 160x50 pseudo-terminal as stdin, stdout and stderr."""

    def __init__(self, data_dir: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshhost", "top", "--data-dir", str(data_dir)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            preexec_fn=_own_terminal,
            env=clean_env(TERM="xterm-256color"),
        )
        os.close(slave)
        self.seen = ""

    def read_until(self, predicate, what: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += ANSI.sub("", os.read(self.master, 65536).decode(errors="replace"))
                except OSError:  # the child closed the terminal
                    break
                self.seen = self.seen[-200_000:]
                if predicate(self.seen):
                    return self.seen
        raise AssertionError(f"top never showed {what}; it showed:\n{self.seen[-4000:]}")

    def press(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout_s: float = 15.0) -> int:
        """Its exit code; its output is drained meanwhile (a full pty would block it)."""
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.seen += ANSI.sub("", os.read(self.master, 65536).decode(errors="replace"))
                except OSError:
                    pass
        code = self.proc.poll()
        if code is None:
            state = open(f"/proc/{self.proc.pid}/status").read().split("\n")[2]
            canon = bool(termios.tcgetattr(self.master)[3] & termios.ICANON)
            raise AssertionError(
                f"top did not exit within {timeout_s} s ({state}, "
                f"canonical={canon}):\n{self.seen[-300:]}"
            )
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session and group
            self.proc.wait()
        os.close(self.master)


def test_top_shows_hosts_and_call_rates_and_quits_on_q_and_ctrl_c(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    a, b = start_monitored(lattice, "a", "b")
    echo_path, echo_id = modules["echo"]
    a.cli("start", str(echo_path)).ok()
    lattice.wait_for(
        lambda: control_calls(b, echo_id, "Echo", b"x", 1) == [a.host_id],
        "b can call the echo on a",
    )
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            control_calls(b, echo_id, "Echo", b"x", 20)

    caller = threading.Thread(target=traffic, daemon=True)
    caller.start()
    top = PtyTop(b.data_dir)
    try:
        rate = re.compile(r"echo\W+1\W+1\W+(\d+\.\d)")
        screen = top.read_until(
            lambda text: (
                a.host_id[:12] in text
                and b.host_id[:12] in text
                and any(float(x) > 0 for x in rate.findall(text))
                and "actor_started" in text
            ),
            "both hosts, a non-zero call rate of echo and its start among recent events",
        )
        assert "recent events" in screen
        top.press(b"q")
        assert top.wait() == 0, top.seen[-2000:]
    finally:
        top.close()
    # Ctrl-C (the terminal's interrupt key) quits with 130 and leaves the terminal sane.
    top = PtyTop(b.data_dir)
    try:
        top.read_until(lambda text: "hosts" in text and b.host_id[:12] in text, "its first frame")
        top.press(b"\x03")
        assert top.wait() == 130, top.seen[-2000:]
    finally:
        stop.set()
        top.close()
    caller.join(timeout=20)


def test_live_top_without_a_host_is_one_error_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "meshhost", "top", "--data-dir", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: no meshhost host is running"), result.stderr
