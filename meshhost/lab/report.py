"""A sweep's outputs: raw observations, summary, plots and a Markdown report.

``OUT/observations.csv`` and ``.jsonl``: one row per observation, columns
``scenario``, the parameters, ``seed``, ``obs`` (its index within the run),
then the observed fields (empty / null: not observed).  ``summary.csv`` and
``summary.json``: :func:`meshhost.lab.stats.summarise`.  ``plots/``:
:mod:`meshhost.lab.plots`.  ``report.md`` links them all and lists failing
seeds with their replay commands.  Every file is a pure function of the
finished cells, so a resumed sweep writes the same bytes as an
uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meshhost.errors import ScenarioError
from meshhost.lab.scenario import SUMMARY_FIELDS, Scenario
from meshhost.lab.stats import metric_names, summarise
from meshhost.lab.sweep import SweepResult

__all__ = ["markdown_summary", "observation_rows", "write_outputs"]


def observation_rows(scenario: Scenario, result: SweepResult) -> list[dict[str, Any]]:
    rows = []
    for cell in result.cells:
        for i, obs in enumerate(cell.observations):
            rows.append(
                {"scenario": scenario.name, **cell.params, "seed": cell.seed, "obs": i, **obs}
            )
    return rows


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in fields})
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return v


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if abs(v) >= 1000:
            return f"{v:.0f}"
        return f"{v:.3g}" if v and abs(v) < 0.01 else f"{v:.2f}"
    return str(v)


def markdown_summary(rows: Sequence[Mapping[str, Any]], params: Sequence[str]) -> str:
    """The summary as a Markdown table: parameters, metric, counts, mean and median
    with their 95 % intervals, p99, max."""
    headers = [
        *params,
        "metric",
        "count",
        "missing",
        "mean [95 % CI]",
        "median [95 % CI]",
        "p99",
        "max",
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        cells = [json.dumps(r[p]) if isinstance(r.get(p), list) else str(r.get(p)) for p in params]
        if r.get("mean") is None:
            stats = ["-", "-", "-", "-"]
        else:
            stats = [
                f"{_num(r['mean'])} [{_num(r['mean_lo'])}, {_num(r['mean_hi'])}]",
                f"{_num(r['median'])} [{_num(r['median_lo'])}, {_num(r['median_hi'])}]",
                _num(r["p99"]),
                _num(r["max"]),
            ]
        lines.append(
            "| "
            + " | ".join([*cells, r["metric"], str(r["count"]), str(r["missing"]), *stats])
            + " |"
        )
    return "\n".join(lines)


def write_outputs(
    scenario: Scenario,
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    result: SweepResult,
    out: Path,
    *,
    plots: bool = True,
) -> dict[str, Any]:
    """Write every output file; returns the summary rows and the report's path."""
    from meshhost.lab.plots import choose_x, plot_summary

    params = list(grid)
    rows = observation_rows(scenario, result)
    observed = [obs for cell in result.cells for obs in cell.observations]
    metrics = scenario.metrics or metric_names(observed)
    observed_fields = dict.fromkeys(k for obs in observed for k in obs)
    unknown = [m for m in metrics if observed and m not in observed_fields]
    if unknown:  # a typo (--metrics detect for detect_s) gave rows of nothing
        raise ScenarioError(
            f"metrics {', '.join(map(repr, unknown))}: no observation has such a field "
            f"(fields: {', '.join(observed_fields)}); the finished cells are kept, so the same "
            "command with the names corrected reruns nothing"
        )
    fields = ["scenario", *params, "seed", "obs", *observed_fields]
    (out / "observations.csv").write_text(_csv(rows, fields))
    (out / "observations.jsonl").write_text(
        "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows)
    )
    summary = summarise(((c.params, c.seed, c.observations) for c in result.cells), metrics)
    (out / "summary.csv").write_text(_csv(summary, [*params, *SUMMARY_FIELDS]))
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    x = choose_x(grid, scenario.x)
    pngs = plot_summary(summary, grid, x, out / "plots", scenario.title) if plots else []
    lines = [
        f"# {scenario.title}",
        "",
        f"Scenario `{scenario.path}`; seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} per cell); "
        f"{len(result.cells)} of {len(seeds) * _cells(grid)} runs finished, "
        f"{len(result.failures)} failed.",
        "",
        "Grid: "
        + (
            "; ".join(f"`{k}` = {', '.join(map(str, v))}" for k, v in grid.items())
            or "no parameters"
        )
        + ".",
        "",
        "Raw data: [observations.csv](observations.csv), [observations.jsonl](observations.jsonl); "
        "summary: [summary.csv](summary.csv), [summary.json](summary.json).",
        "",
        "## Summary",
        "",
        "Mean and median with bootstrap 95 % confidence intervals "
        "(resampling seeds); `missing`: observations with no value (e.g. never "
        "within the horizon), left out of the statistics.",
        "",
        markdown_summary(summary, params),
        "",
    ]
    if pngs:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}](plots/{p.name}) ([svg](plots/{p.stem}.svg))" for p in pngs]
        lines.append("")
    if result.failures:
        lines += ["## Failing seeds", ""]
        for f in result.failures:
            lines += [
                f"- seed {f['seed']}, {f['params']}: `{f['error']}`",
                f"  replay: `{f['replay']}`",
            ]
        lines.append("")
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return {"summary": summary, "report": report, "plots": pngs}


def _cells(grid: Mapping[str, Sequence[Any]]) -> int:
    n = 1
    for values in grid.values():
        n *= len(values)
    return n
