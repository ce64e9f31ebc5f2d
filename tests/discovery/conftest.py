"""Run a command inside a fresh network namespace with loopback up.

mDNS tests must never touch a real network: they re-execute a helper script
under ``unshare -n`` (a namespace with only ``lo``), bring ``lo`` up, and read
the helper's JSON report from stdout.  Without ``unshare`` (or without the
right to use it) the test fails and says so: CI runs as root and ``.ci/run``
installs util-linux and iproute2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest


def _require_netns() -> None:
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"this test needs {' and '.join(missing)} (util-linux, iproute2) to make a "
            "private network namespace; install them (.ci/run does)"
        )
    probe = subprocess.run(
        ["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.fail(
            "cannot create a network namespace with `unshare -n` "
            f"(uid {os.getuid()}): {probe.stderr.strip()}; run the suite as root"
        )


@pytest.fixture
def run_in_netns() -> Callable[..., Any]:
    """``run_in_netns(script, *args, timeout_s=...) -> parsed JSON stdout``."""
    _require_netns()

    def run(script: str, *args: str, timeout_s: float) -> Any:
        inner = 'ip link set lo up && exec "$@"'
        argv = ["unshare", "-n", "sh", "-c", inner, "sh", sys.executable, script, *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"{os.path.basename(script)} did not finish within {timeout_s} s\n"
                f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}"
            )
        if done.returncode != 0:
            pytest.fail(
                f"{os.path.basename(script)} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}"
            )
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run
