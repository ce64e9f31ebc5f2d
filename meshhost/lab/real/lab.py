"""``meshhost lab run``: the simulated seeds, the real run, the checks and the comparison.

Writes under ``OUT``: ``sim/observations.csv|jsonl`` (``sim_seeds`` seeds),
``real/observations.csv|jsonl`` (every real run), ``real/run-K/`` (run K's
``history.jsonl``, ``checks.json``, ``logs/``, ``pids.json``), and
``compare.csv`` + ``compare.png|svg``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from meshhost.errors import LabError
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


def _clear(folder: Path) -> None:
    """Remove an earlier lab run's folder: its hosts' data dirs (keys, key-value data,
    directory) and logs must not leak into this run.  Anything else is left alone."""
    import shutil

    if not folder.exists():
        return
    if not (folder / "pids.json").exists():
        raise LabError(
            f"{folder} exists and is not an earlier lab run's folder: choose another --out"
        )
    shutil.rmtree(folder)


def run_lab(
    scenario: LabScenario,
    out: Path,
    *,
    timeout_s: float,
    sim_seeds: int,
    say: Callable[[str], None],
    runs: int = 1,
) -> dict[str, Any]:
    """Run everything; returns {checks, compare rows, notes}.  LabError on a failed run.

    ``runs`` real runs, one after the other, each under its own ``timeout_s``;
    run K keeps its history, checks and logs in ``OUT/real/run-K/`` and its
    rows are ``seed`` K of ``OUT/real/observations.csv``."""
    sim_rows = [row for seed in range(sim_seeds) for row in simulate(scenario, seed)]
    write_observations(out / "sim", sim_rows)
    say(f"simulated {sim_seeds} seeds of {scenario.name}")
    rows: list[dict[str, Any]] = []
    per_run: list[dict[str, Any]] = []
    notes: list[str] = []
    formed: list[float] = []
    for number in range(1, runs + 1):
        folder = out / "real" / f"run-{number}"
        _clear(folder)
        if runs > 1:
            say(f"real run {number} of {runs}")
        real = run_real(scenario, folder, timeout_s=timeout_s, say=say, run_number=number)
        rows += real.observations
        with (folder / "history.jsonl").open("w") as f:
            for entry in real.history:
                f.write(json.dumps(entry, sort_keys=True) + "\n")
        checks = check_all(real.history)
        (folder / "checks.json").write_text(json.dumps(checks, indent=2, sort_keys=True))
        per_run.append(checks)
        notes += [f"run {number}: {note}" for note in real.notes]
        formed.append(real.formed_s)
        write_observations(out / "real", rows)  # after each run: a later failure keeps these
    table = compare(out / "sim", out / "real", out, METRICS, scenario.title) if sim_rows else []
    return {
        "checks": {"ok": all(c["ok"] for c in per_run), "runs": per_run},
        "compare": table,
        "notes": notes,
        "formed_s": formed,
    }
