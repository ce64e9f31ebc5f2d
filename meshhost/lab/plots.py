"""One plot per metric: the mean and its 95 % interval against a parameter.

x is the scenario's ``X`` parameter (default: the first one with several
numeric values); every combination of the other varying parameters is its
own line.  Axis labels carry the unit a name's suffix gives (``_s``:
seconds).  Without such a parameter, each grid cell is a point on a
categorical axis.  matplotlib runs headless (Agg) and the SVGs carry no date
and fixed ids, so the same results give the same files.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["axis_label", "choose_x", "plot_summary", "slug"]


def choose_x(grid: Mapping[str, Sequence[Any]], preferred: str | None) -> str | None:
    if preferred is not None and preferred in grid:
        return preferred
    for name, values in grid.items():
        if len(values) > 1 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            return name
    return None


def slug(metric: str) -> str:
    """A file name for ``metric``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in metric) or "metric"


UNITS = {"_s": "s", "_ms": "ms", "_percent": "%", "_bytes": "bytes"}
"""Name suffixes the scenarios use for units: ``detect_s`` is in seconds."""


def axis_label(name: str) -> str:
    """``name`` with its unit, read from its suffix: ``heal_s`` -> ``heal_s (s)``."""
    for suffix, unit in UNITS.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{name} ({unit})"
    return name


def _label(params: Mapping[str, Any], names: Sequence[str]) -> str:
    return ", ".join(f"{k}={params[k]}" for k in names) or "all"


def plot_summary(
    rows: Sequence[Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]],
    x: str | None,
    out: Path,
    title: str,
) -> list[Path]:
    """Write ``out/<metric>.png`` and ``.svg`` for each metric; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    varying = [k for k, v in grid.items() if len(v) > 1]
    others = [k for k in varying if k != x]
    written = []
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    for metric in metrics:
        mine = [r for r in rows if r["metric"] == metric and r.get("mean") is not None]
        if not mine:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        if x is not None:
            lines: dict[str, list[Mapping[str, Any]]] = {}
            for r in mine:
                lines.setdefault(_label(r, others), []).append(r)
            for label, pts in lines.items():
                pts = sorted(pts, key=lambda r: r[x])
                xs = [r[x] for r in pts]
                ys = [r["mean"] for r in pts]
                err = [
                    [r["mean"] - r["mean_lo"] for r in pts],
                    [r["mean_hi"] - r["mean"] for r in pts],
                ]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
            ax.set_xlabel(axis_label(x))
            if len(lines) > 1:
                ax.legend(fontsize="small")
        else:
            labels = [_label(r, varying) for r in mine]
            ys = [r["mean"] for r in mine]
            err = [
                [r["mean"] - r["mean_lo"] for r in mine],
                [r["mean_hi"] - r["mean"] for r in mine],
            ]
            ax.errorbar(range(len(mine)), ys, yerr=err, fmt="o", capsize=3)
            ax.set_xticks(range(len(mine)), labels, rotation=30, ha="right", fontsize="small")
        ax.set_ylabel(f"{axis_label(metric)}: mean, 95 % CI")
        # A long title (a scenario's first docstring line) ran off the figure: wrap it.
        ax.set_title(textwrap.fill(title, 70), fontsize="medium")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        png = out / f"{slug(metric)}.png"
        fig.savefig(png, dpi=100, metadata={"Software": None})
        # Settings given per save, not set globally: a plot made earlier in
        # the same process (the gallery's) must not change this SVG's bytes:
        # fixed ids, glyphs drawn as paths.
        with matplotlib.rc_context({"svg.hashsalt": "meshhost-lab", "svg.fonttype": "path"}):
            fig.savefig(out / f"{slug(metric)}.svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
        written.append(png)
    return written
