"""The README's first command: `meshhost demo` serves an actor, breaks and heals a lattice."""

import re
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
    # Its secret names an admin (as `lattice new` makes it): an unsigned change is refused,
    # and every change the demo makes is signed by that admin key.
    assert (
        "✓ roles enforced: a change not signed by an operator key is refused "
        "('config_put' needs role admin)" in out
    )
    assert "HTTP served on http://127.0.0.1:" in out
    assert out.count("GET / -> 200 count=") >= 4
    # The GET that found HTTP served is the one shown: no request goes unseen.
    gets = re.findall(r"^    GET / -> 200 count=(\d+)$", out, re.MULTILINE)
    assert gets[:3] == ["1", "2", "3"], out
    for caller in ("host-1", "host-2", "host-3"):
        assert f"✓ from {caller}: count=" in out
    assert "✗ from" not in out
    victim = re.search(r"kill -9 (host-\d) ", out).group(1)
    assert f"every survivor declared {victim} dead" in out
    assert f"{victim} is back: 3 hosts alive" in out
    takeover = r"HTTP answered again [\d.]+ s after the kill, from host-\d: GET / -> 200"
    assert re.search(takeover, out), out
    lines = out.splitlines()
    after = lines[next(i for i, line in enumerate(lines) if "survived the kill" in line) + 1]
    assert after.strip().startswith(f"✓ from {victim}: count="), after
