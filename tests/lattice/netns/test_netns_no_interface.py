"""`meshhost up` where no interface has an address says so and exits, instead of running deaf.

A new network namespace has only ``lo``, down, so no IPv4 address at all.
The host used to invent ``127.0.0.1``: with mDNS it failed with "mDNS could
not start on ['127.0.0.1']: No such device; run with --no-mdns", and with
--no-mdns it ran advertising an address nobody could reach.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from meshhost.identity.keyring import encode_secret
from tests.lattice.netns.bridge_lattice import require_bridge_tools
from tests.lattice.processes.proc_lattice import clean_env

pytestmark = [pytest.mark.netns]


@pytest.mark.parametrize("discovery", [[], ["--no-mdns"]], ids=["mdns", "no-mdns"])
def test_up_without_any_usable_interface_fails_with_one_clear_error(
    tmp_path: Path, discovery: list[str]
) -> None:
    require_bridge_tools()
    argv = [
        "unshare",
        "-n",
        sys.executable,
        "-m",
        "meshhost",
        "up",
        "--data-dir",
        str(tmp_path / "host"),
        "--mdns-service-type",
        f"_mh-{secrets.token_hex(3)}._udp.local.",
        *discovery,
    ]
    env = clean_env(MESHHOST_LATTICE_SECRET=encode_secret(bytes(32)))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError("`meshhost up` kept running without any usable interface") from None
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: no usable network interface"), done.stderr
    assert "ip link set lo up" in done.stderr
    assert done.stdout == "", done.stdout  # never announced itself as started
