"""Ctrl-C at any early moment of `up` or during `call`: no traceback, exit 130.

Real processes get a real SIGINT at several moments: while the CLI is still
importing, while the host opens its data directory and binds, just after it
started, and (for `call`) while the request waits for its answer.  The
moments count from when the entry point, meshhost.__main__.run, starts
importing the CLI (a launcher marks it): before that no code of ours runs
(the interpreter's own start, ~20 ms, much more on a loaded machine), so a
SIGINT then is Python's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

from meshhost.control import api
from meshhost.identity.keyring import encode_secret

EARLY_S = (0.05, 0.1, 0.2, 0.35, 0.6, 1.0)
"""Seconds after Python started: during imports, config, opening the host, serving."""
EXIT_TIMEOUT_S = 30.0
LAUNCH = """\
import sys
import meshhost.__main__

marker = sys.argv.pop(1)
sys.argv[0] = "meshhost"


class MarkWhenTheCliLoads:
    def find_spec(self, name, path=None, target=None):
        if name == "meshhost.cli":
            sys.meta_path.remove(self)
            open(marker, "w").close()
        return None


sys.meta_path.insert(0, MarkWhenTheCliLoads())
meshhost.__main__.run()
"""
"""``meshhost ARGV`` (as the installed ``meshhost`` script runs it) that creates the
file named before ARGV when the entry point starts importing the CLI, inside its
Ctrl-C guard.  Not runpy: run_module would re-execute the already imported
meshhost.__main__, warn about it (importing linecache, tokenize, compiling a
regex) and only then enter the guard, so a SIGINT a few ms after a marker made
earlier landed, under load, in Python's own code with a traceback."""


def launch(argv: list[str], env: dict[str, str], marker: Path) -> subprocess.Popen[str]:
    """Start ``meshhost ARGV``; return once its Python has started."""
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(marker), *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    return proc


def interrupted(
    argv: list[str], after_s: float, env: dict[str, str], marker: Path
) -> tuple[int, str]:
    """Run ``meshhost ARGV``, SIGINT it ``after_s`` after it started: (exit code, stderr)."""
    proc = launch(argv, env, marker)
    try:
        time.sleep(after_s)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
        return proc.returncode, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_early_in_up_exits_130_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHHOST_")}
    env["MESHHOST_LATTICE_SECRET"] = encode_secret(bytes(range(32)))
    for i, after_s in enumerate(EARLY_S):
        code, err = interrupted(
            [
                "up",
                "--no-mdns",
                "--profile",
                "local",
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(tmp_path / f"d{i}"),
            ],
            after_s,
            env,
            tmp_path / "started",
        )
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (after_s, err)
        assert code == 130, (after_s, code, err)


class SlowHost:
    """A control socket whose `call` never answers (an actor that takes its time)."""

    def __init__(self) -> None:
        self.calls = 0

    async def dispatch(self, op: str, args: Mapping[str, Any]) -> Any:
        self.calls += 1
        await trio.sleep_forever()


@pytest.fixture
def slow_host(tmp_path: Path) -> Iterator[tuple[SlowHost, Path]]:
    fake = SlowHost()
    ready = threading.Event()
    token: list[trio.lowlevel.TrioToken] = []
    cancel = trio.CancelScope()

    async def run() -> None:
        token.append(trio.lowlevel.current_trio_token())
        with cancel:
            async with trio.open_nursery() as nursery:
                await nursery.start(api.serve_unix, tmp_path / "control.sock", fake.dispatch, {})
                ready.set()

    thread = threading.Thread(target=trio.run, args=(run,), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield fake, tmp_path
    trio.from_thread.run_sync(cancel.cancel, trio_token=token[0])
    thread.join(10)


def test_ctrl_c_during_call_exits_130_without_aborted(slow_host: tuple[SlowHost, Path]) -> None:
    fake, data_dir = slow_host
    argv = ["call", "Mecho", "Echo", "hi", "--data-dir", str(data_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHHOST_")}
    for after_s in EARLY_S[:2]:  # still importing
        code, err = interrupted(argv, after_s, env, data_dir / "started")
        assert "Traceback" not in err and "Aborted" not in err, (after_s, err)
        assert code == 130, (after_s, code, err)
    # Waiting for the answer: the request has reached the host.
    proc = launch(argv, env, data_dir / "started")
    try:
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        while fake.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.calls == 1
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Aborted" not in err and "Traceback" not in err, err
    assert proc.returncode == 130
