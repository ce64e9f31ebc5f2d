"""The README's first command: `meshhost demo` serves an actor, breaks and heals a lattice."""

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
    assert "HTTP served on http://127.0.0.1:" in out
    assert out.count("GET / -> 200 count=") >= 4
    for caller in ("host-1", "host-2", "host-3"):
        assert f"✓ from {caller}: count=" in out
    assert "✗ from" not in out
    assert "every survivor declared host-1 dead" in out
    assert "host-1 is back: 3 hosts alive" in out
    lines = out.splitlines()
    after = lines[next(i for i, line in enumerate(lines) if "survived the kill" in line) + 1]
    assert after.strip().startswith("✓ from host-1: count="), after
