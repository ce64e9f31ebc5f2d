"""The one check for what a test needs from the machine: system tools and root.

A test that needs a tool the machine lacks (or root, to make network
namespaces) is *skipped* on a developer's machine, with a reason naming the
tool and how to get it, so the README's test command passes on a fresh
machine.  Under ``CI=true`` the same case *fails* instead: CI installs every
tool (``.ci/run``) and runs as root, so there a missing tool is a broken CI
setup, never a reason to run less.

Every test that needs a tool or root calls :func:`require_tools` or
:func:`require_netns` (``from tests.systools import require_tools``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest

PACKAGES = {
    "ip": "iproute2",
    "ss": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "curl": "curl",
    "nft": "nftables",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
}
"""Tool -> the Debian package that has it (named in the skip reason)."""


def in_ci() -> bool:
    """True where missing tools must fail rather than skip (``CI`` set to true/1/yes)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def has_tool(tool: str) -> bool:
    """True when ``tool`` is on PATH: for a test that runs either way and checks
    what each way must do (use :func:`require_tools` when it needs the tool)."""
    return shutil.which(tool) is not None


def is_root() -> bool:
    """True when the tests run as root (uid 0)."""
    return os.geteuid() == 0


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason`` on a developer's machine; fail with it under ``CI=true``."""
    if in_ci():
        pytest.fail(
            f"{reason} (CI=true: a missing tool fails here instead of skipping)", pytrace=False
        )
    pytest.skip(reason)


def require_tools(*tools: str, root: bool = False, why: str) -> None:
    """Skip (fail in CI) unless every tool is on PATH and, if ``root``, we are root.

    ``why`` says what the test does with them, e.g. "to make network namespaces".
    """
    if root and os.geteuid() != 0:
        unavailable(
            f"needs root {why} (running as uid {os.geteuid()}): "
            "run the tests as root, e.g. under sudo"
        )
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = sorted({PACKAGES.get(tool, tool) for tool in missing})
        names = ", ".join(f"`{tool}`" for tool in missing)
        unavailable(f"needs {names} {why}: install it with `apt-get install {' '.join(packages)}`")


def require_netns(*more_tools: str) -> None:
    """Root, util-linux and iproute2 (plus ``more_tools``), and a namespace can be made."""
    require_tools(
        "unshare", "nsenter", "ip", "ss", *more_tools, root=True, why="to make network namespaces"
    )
    probe = subprocess.run(
        ["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        unavailable(
            f"cannot create a network namespace with `unshare -n` "
            f"(uid {os.getuid()}): {probe.stderr.strip()}; this needs root "
            "and a kernel that allows network namespaces"
        )
