"""Simulated and real observations side by side: ``compare.csv`` and ``compare.png|svg``.

Either side is an ``observations.csv`` (or a folder holding one): a
``meshhost lab run``'s ``sim/`` and ``real/`` folders, or a ``meshhost sim``
sweep's output with the same metric columns (``examples/lab/partition_per_host.py``
is that scenario).  Rows are grouped by (metric, host), or pooled as one
group ``all`` when a side has no ``host`` column; the CSV gives each
group's count, median and range per side and the gap (real median minus
simulated median).  The plot
has one panel per metric: per host a box of the simulated values and the
real values as points beside it.  An empty cell (not observed) is left out.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshhost.errors import LabError

__all__ = ["compare", "read_observations", "write_rows"]


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """A CSV with the union of the rows' keys as columns, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


def read_observations(path: Path) -> list[dict[str, str]]:
    """Rows of an observations CSV (``path`` or ``path/observations.csv``)."""
    target = path / "observations.csv" if path.is_dir() else path
    try:
        with target.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise LabError(f"cannot read observations {target}: {exc.strerror or exc}") from None
    if not rows:
        raise LabError(f"{target} has no observation rows")
    return rows


ALL = "all"
"""The one group when a side has no ``host`` column (e.g. a sweep's pooled rows)."""


def _values(rows: Sequence[dict[str, str]], metric: str, host: str) -> list[float]:
    out = []
    for row in rows:
        if host != ALL and row.get("host") != host:
            continue
        try:
            value = float(row.get(metric) or "nan")
        except ValueError:
            continue
        if math.isfinite(value):
            out.append(value)
    return out


def _summary(values: list[float], prefix: str) -> dict[str, Any]:
    if not values:
        return {
            f"{prefix}_n": 0,
            f"{prefix}_median": None,
            f"{prefix}_min": None,
            f"{prefix}_max": None,
        }
    return {
        f"{prefix}_n": len(values),
        f"{prefix}_median": round(statistics.median(values), 3),
        f"{prefix}_min": round(min(values), 3),
        f"{prefix}_max": round(max(values), 3),
    }


def compare(
    sim: Path, real: Path, out: Path, metrics: Sequence[str], title: str = ""
) -> list[dict[str, Any]]:
    """Write ``out/compare.csv`` and ``out/compare.png|svg``; returns the CSV's rows."""
    sim_rows, real_rows = read_observations(sim), read_observations(real)
    for name, rows in (("simulated", sim_rows), ("real", real_rows)):
        absent = [m for m in metrics if m not in rows[0]]
        if absent:
            raise LabError(
                f"the {name} observations have no column {', '.join(absent)} "
                f"(they have: {', '.join(rows[0])})"
            )
    if "host" in sim_rows[0] and "host" in real_rows[0]:
        hosts = sorted({r["host"] for r in sim_rows} | {r["host"] for r in real_rows})
    else:
        hosts = [ALL]
    side = {r.get("host", ALL): r.get("side", "") for r in [*sim_rows, *real_rows]}
    table = []
    for metric in metrics:
        for host in hosts:
            s, r = _values(sim_rows, metric, host), _values(real_rows, metric, host)
            row = {
                "metric": metric,
                "host": host,
                "side": side.get(host, ""),
                **_summary(s, "sim"),
                **_summary(r, "real"),
            }
            row["gap_s"] = round(row["real_median"] - row["sim_median"], 3) if s and r else None
            table.append(row)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "compare.csv", table)
    _plot(sim_rows, real_rows, hosts, metrics, out, title)
    return table


def _plot(
    sim_rows: Sequence[dict[str, str]],
    real_rows: Sequence[dict[str, str]],
    hosts: list[str],
    metrics: Sequence[str],
    out: Path,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(metrics),
        1,
        figsize=(max(6.0, 0.7 * len(hosts) + 2), 2.6 * len(metrics)),
        squeeze=False,
        sharex=True,
    )
    positions = range(len(hosts))
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        sims = [_values(sim_rows, metric, h) for h in hosts]
        shown = [(p - 0.18, v) for p, v in zip(positions, sims, strict=True) if v]
        if shown:
            ax.boxplot(
                [v for _, v in shown],
                positions=[p for p, _ in shown],
                widths=0.3,
                patch_artist=True,
                boxprops={"facecolor": "#9ecae1"},
                medianprops={"color": "#08519c"},
                flierprops={"markersize": 3},
            )
        for p, host in zip(positions, hosts, strict=True):
            reals = _values(real_rows, metric, host)
            ax.scatter(
                [p + 0.18] * len(reals),
                reals,
                color="#d62728",
                s=18,
                zorder=3,
                label="real" if p == 0 else None,
            )
        ax.set_ylabel(f"{metric}")
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xticks(list(positions), hosts)
    axes[-1, 0].set_xlabel("host (box: simulated seeds, red dots: real run)")
    fig.suptitle(title or "simulated vs real, per host")
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=110)
    fig.savefig(out / "compare.svg")
    plt.close(fig)
