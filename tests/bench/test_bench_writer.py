"""Smoke test of bench/writer.py: it runs end to end and prints every figure.

Timings are not checked (shared machines are noisy); the fsync counts are
counts: no fsync may run on the trio thread, and B's acknowledged puts share
fsyncs at most one each.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "writer.py"
TIMEOUT_S = 90
PUTS = 20


def test_bench_writer_runs_and_no_fsync_is_on_the_trio_thread() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--puts", str(PUTS), "--rounds", "1", "--concurrency", "4"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {}
    for line in proc.stdout.splitlines()[1:]:
        name, *values = line.split()
        rows[name] = float(values[0])
    for name in ("merges", "merge_mean_us", "merge_max_ms", "gap_max_ms", "put_p50_ms"):
        assert name in rows, proc.stdout
    assert rows["a_fsync_trio"] == 0 and rows["b_fsync_trio"] == 0, proc.stdout
    assert 0 < rows["b_fsync_all"] <= PUTS, proc.stdout
    assert re.match(rf"^{PUTS} config puts on B", proc.stdout), proc.stdout
