"""``meshhost lab run``: the simulated seeds, the real run, the checks and the comparison.

Writes under ``OUT``: ``sim/observations.csv|jsonl`` (``sim_seeds`` seeds),
``real/observations.csv|jsonl``, ``real/history.jsonl``, ``real/checks.json``,
``real/logs/``, and ``compare.csv`` + ``compare.png|svg``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from meshhost.lab.real.checks import check_all
from meshhost.lab.real.compare import compare, write_rows
from meshhost.lab.real.observe import METRICS
from meshhost.lab.real.runner import run_real
from meshhost.lab.real.simrun import simulate
from meshhost.lab.real.spec import LabScenario

__all__ = ["run_lab", "write_observations"]


def write_observations(folder: Path, rows: Sequence[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_rows(folder / "observations.csv", rows)
    with (folder / "observations.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")


def run_lab(scenario: LabScenario, out: Path, *, timeout_s: float, sim_seeds: int,
            say: Callable[[str], None]) -> dict[str, Any]:
    """Run everything; returns {checks, compare rows, notes}.  LabError on a failed run."""
    sim_rows = [row for seed in range(sim_seeds) for row in simulate(scenario, seed)]
    write_observations(out / "sim", sim_rows)
    say(f"simulated {sim_seeds} seeds of {scenario.name}")
    real = run_real(scenario, out / "real", timeout_s=timeout_s, say=say)
    write_observations(out / "real", real.observations)
    with (out / "real" / "history.jsonl").open("w") as f:
        for entry in real.history:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
    checks = check_all(real.history)
    (out / "real" / "checks.json").write_text(json.dumps(checks, indent=2, sort_keys=True))
    table = compare(out / "sim", out / "real", out, METRICS, scenario.title) if sim_rows else []
    return {"checks": checks, "compare": table, "notes": real.notes, "formed_s": real.formed_s}
