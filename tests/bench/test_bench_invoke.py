"""Smoke test of bench/invoke.py: it runs end to end and prints every figure.

Values are not checked (shared machines are noisy); the benchmark itself
prints how it compares with its targets.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "invoke.py"
TIMEOUT_S = 60
NUMBER = r"[\d,]+(?:\.\d+)?"


def run_quick(env: dict[str, str] | None = None, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *extra],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def assert_lines(out: str, *patterns: str) -> None:
    for pattern in patterns:
        assert re.search(pattern, out, re.MULTILINE), f"no line matching {pattern!r} in:\n{out}"


COMMON = (
    r"^  pid \d+ \(this\): host A .* the caller",
    r"^  pid \d+: host B .* runs the echo actor",
    r"^  pid \d+: raw trio TCP echo server",
    r"^CPUs: (throughput rounds pinned|every round pinned|not pinned)",
    rf"^latency raw trio TCP echo(\s+{NUMBER}){{4}}\s+{NUMBER}x\s+{NUMBER}x$",
    rf"^latency Noise session echo \(A -> B, no actor\)(\s+{NUMBER}){{4}}\s+{NUMBER}x\s+{NUMBER}x$",
    rf"^latency meshhost invocation A -> B \(echo actor\)(\s+{NUMBER}){{4}}\s+{NUMBER}x"
    rf"\s+{NUMBER}x$",
    rf"^throughput raw trio \(32 tasks.*\s{NUMBER} calls/s$",
    rf"^throughput Noise session echo A -> B \(32 tasks\)\s+{NUMBER} calls/s$",
    rf"^throughput raw trio \(window of 32.*\s{NUMBER} calls/s$",
    rf"^throughput meshhost A -> B \(32 tasks\)\s+{NUMBER} calls/s$",
    rf"^  p50 meshhost / raw trio at 100 B <= 1\.8x\s+{NUMBER}x  (yes|NO)$",
    rf"^  p50 meshhost / raw trio at 10240 B <= 2\.0x\s+{NUMBER}x  (yes|NO)$",
    rf"^cpu mesh +sequential 100 B +caller +{NUMBER} +host B +{NUMBER}$",
    rf"^cpu mesh +sequential 10 KiB +caller +{NUMBER} +host B +{NUMBER}$",
    rf"^cpu mesh +32 outstanding 100 B +caller +{NUMBER} +host B +{NUMBER}$",
    rf"^cpu raw +sequential 100 B +caller +{NUMBER} +echo server +{NUMBER}$",
    rf"^cpu session +sequential 100 B +caller +{NUMBER} +host B +{NUMBER}$",
    rf"^  p50 meshhost / Noise session echo at 100 B\s+{NUMBER}x  \(no target\)$",
)


@pytest.mark.slow
def test_quick_run_prints_every_figure_including_nats() -> None:
    out = run_quick()
    if "NATS comparison skipped" in out:  # nats-server or nats-py (the bench extra) missing
        assert_lines(
            out, *COMMON, r"^NATS comparison skipped: (nats-server|nats-py) is not installed"
        )
        return
    assert_lines(
        out,
        *COMMON,
        r"^  pid \d+ nats-server.*pid \d+ nats-py responder",
        rf"^latency nats-server \+ nats-py \(echo actor\)(\s+{NUMBER}){{4}}\s+{NUMBER}x"
        rf"\s+{NUMBER}x$",
        rf"^throughput nats-server \+ nats-py \(32 tasks\)\s+{NUMBER} calls/s$",
        rf"^  p50 NATS / meshhost at 100 B >= 2\.0x\s+{NUMBER}x  (yes|NO)$",
        rf"^  p50 NATS / meshhost at 10240 B >= 2\.0x\s+{NUMBER}x  (yes|NO)$",
        rf"^  throughput meshhost / NATS >= 2\.0x\s+{NUMBER}x  (yes|NO)$",
        rf"^cpu nats +sequential 100 B +caller +{NUMBER} +nats-server +{NUMBER} +responder"
        rf" +{NUMBER}$",
    )


@pytest.mark.slow
def test_without_nats_server_the_rest_is_still_measured(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no nats-server on this PATH
    out = run_quick(env)
    assert_lines(
        out,
        *COMMON,
        r"^NATS comparison skipped: (nats-server|nats-py) is not installed",
        r"^  NATS targets: skipped",
    )
    assert "latency nats-server" not in out
    assert "throughput nats-server" not in out
    assert "cpu nats" not in out


@pytest.mark.slow
def test_metrics_cost_mode_prints_p50_with_metrics_and_tracing_off_and_on() -> None:
    out = run_quick(None, "--metrics-cost")
    assert_lines(
        out,
        r"^monitoring cost \(metrics \+ tracing\): sequential 100 B calls, 2 shuffled rounds"
        r" x 50 calls",
        r"both off\s+both on\s+on / off",
        rf"^  invocation A -> B \(echo on B\)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}x  (yes|NO)$",
        rf"^  invocation A -> A \(echo on A\)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}x  (yes|NO)$",
    )
