"""The README's first command: `meshhost demo` forms, breaks and heals a lattice."""

import subprocess
import sys


def test_demo_forms_detects_a_killed_host_and_heals() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "meshhost", "demo"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "lattice formed" in out
    assert "every survivor declared host-3 dead" in out
    assert "host-3 is back: 3 hosts alive" in out
