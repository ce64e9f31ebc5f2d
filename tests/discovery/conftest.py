"""Run a command inside a fresh network namespace with loopback up.

mDNS tests must never touch a real network: they re-execute a helper script
under ``unshare -n`` (a namespace with only ``lo``), bring ``lo`` up, and read
the helper's JSON report from stdout.  Without ``unshare`` (or without the
right to use it) the test is skipped, or fails under ``CI=true``
(``systools.require_netns``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.systools import require_netns


@pytest.fixture
def run_in_netns() -> Callable[..., Any]:
    """``run_in_netns(script, *args, timeout_s=...) -> parsed JSON stdout``."""
    require_netns()

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
