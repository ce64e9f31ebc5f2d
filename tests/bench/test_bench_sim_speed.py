"""Smoke test of bench/sim_speed.py (the simulator's speed and memory benchmark).

Wall-clock figures are not checked (shared machines are noisy); what the run
must do regardless of speed is: run events, check the invariants on them and
end with every host sharing one view. The speed figure itself was a test
(test_simulator_speed_figure_is_printed) and is now only the benchmark's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "sim_speed.py"


def test_sim_speed_runs_events_checks_invariants_and_ends_converged() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--hosts", "30", "--virtual", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = re.search(
        r"3 s virtual: (\d+) events, (\d+) datagrams, (\d+) invariant checks", proc.stdout
    )
    assert counts is not None, proc.stdout
    events, datagrams, checks = map(int, counts.groups())
    assert events > 0 and datagrams > 0 and checks > 0, proc.stdout
    assert "hosts not sharing the one view at the end: 0" in proc.stdout, proc.stdout
    assert re.search(r"events/s\); view check", proc.stderr), proc.stderr
