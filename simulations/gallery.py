"""The gallery: published membership results reproduced in the simulator, one figure each.

Every entry of ``GALLERY`` is a scenario file in ``simulations/gallery/``
(an ordinary ``meshhost sim run`` scenario) that also names what it is
compared with:

``REFERENCE`` (``dict``: metric -> spec)
    ``value``: the published figure for a grid cell, ``value(row) ->
    float`` (``value(row, summary)`` with ``cross: True``, for a reference
    relative to other cells); ``label``: what it is; ``source``: where it
    comes from; optional ``stat`` (``mean`` or ``median``, compared),
    ``bound: "upper"`` (the reference is an "at most": ours passes when
    not above it), ``ylabel``, ``log_y``, ``y_from_zero``.
``CURVE`` (optional ``dict``)
    A curve drawn from the raw observations instead of the summary:
    ``x`` and ``y`` name observation fields (e.g. ``t`` and ``fraction``),
    ``reference(params, x) -> y`` is the published curve, ``label`` and
    ``source`` as above.
``RATIOS`` (optional ``cells -> rows``)
    Rows derived from all the runs at once (Lifeguard's ratio to plain
    SWIM, with its interval), written to ``<name>_ratio.csv``.

For each entry this runs the sweep (``build/gallery/<name>/<digest of
meshhost's sources>/``, resumable: a rerun with the same code only computes
what is missing) and writes into ``--out``
(``docs/gallery/``): ``<name>.png`` / ``.svg`` (ours, mean with bootstrap
95 % CI, and the reference drawn on the same axes, its source under the
plot), ``<name>.csv`` (per cell and metric: our mean and CI, the
reference, ratio = ours / reference) and for a curve ``<name>_curve.csv``.
``results.md`` collects every comparison in one table.  Seeds are fixed
(1 .. SEEDS), so the same code regenerates the same files.

    python simulations/gallery.py                 # everything
    python simulations/gallery.py --only kill9_detection --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meshhost.errors import ScenarioError
from meshhost.lab.scenario import load_job, load_scenario, parse_param
from meshhost.lab.stats import bootstrap_ci, summarise
from meshhost.lab.sweep import run_sweep

HERE = Path(__file__).resolve().parent
GALLERY = [
    "kill9_detection",
    "swim_first_detection",
    "swim_load",
    "serf_convergence",
    "lifeguard_false_positives",
]
TOLERANCE = 0.10
"""Within 10 % of the reference counts as reproduced."""


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                k: (
                    ""
                    if r.get(k) is None
                    else (round(r[k], 6) if isinstance(r[k], float) else r[k])
                )
                for k in fields
            }
        )
    return buf.getvalue()


def _label(params: Mapping[str, Any], names: Sequence[str]) -> str:
    return ", ".join(f"{k}={params[k]}" for k in names) or "ours"


def compare(summary: Sequence[Mapping[str, Any]], reference: Mapping[str, Any]) -> list[dict]:
    """Summary rows of the referenced metrics with ``reference`` and ``ratio`` added."""
    rows = []
    for r in summary:
        spec = reference.get(r["metric"])
        if spec is None:
            continue
        # "cross": the reference depends on other cells (e.g. 1/50 of plain SWIM's count)
        ref = float(spec["value"](r, summary) if spec.get("cross") else spec["value"](r))
        stat = spec.get("stat", "mean")
        ours = r.get(stat)
        ratio = ours / ref if ours is not None and ref else None
        if ours is None:
            within = None
        elif spec.get("bound") == "upper":  # a published "at most": ours must not exceed it
            within = ours <= ref * (1 + TOLERANCE)
        else:
            within = ratio is not None and abs(ratio - 1) <= TOLERANCE
        rows.append(
            {
                **r,
                "stat": stat,
                "ours": ours,
                "ours_lo": r.get(f"{stat}_lo"),
                "ours_hi": r.get(f"{stat}_hi"),
                "reference": ref,
                "ratio": ratio,
                "within_10pct": within,
            }
        )
    return rows


def curve_rows(cells: Sequence[Any], curve: Mapping[str, Any]) -> list[dict]:
    """Mean of ``curve['y']`` at each ``curve['x']`` per cell, CI over seeds, reference beside."""
    by: dict[str, dict[float, list[list[float]]]] = {}
    params_of: dict[str, dict] = {}
    for cell in cells:
        key = json.dumps(cell.params, sort_keys=True)
        params_of[key] = cell.params
        per_x: dict[float, list[float]] = {}
        for obs in cell.observations:
            if curve["x"] in obs and obs.get(curve["y"]) is not None:
                per_x.setdefault(obs[curve["x"]], []).append(float(obs[curve["y"]]))
        for x, ys in per_x.items():
            by.setdefault(key, {}).setdefault(x, []).append(ys)
    rows = []
    for key, xs in by.items():
        params = params_of[key]
        for x in sorted(xs):
            groups = xs[x]
            pooled = [v for g in groups for v in g]
            ci = bootstrap_ci(groups, seed=len(rows) + 1)["mean"]
            rows.append(
                {
                    **params,
                    curve["x"]: x,
                    "mean": sum(pooled) / len(pooled),
                    "mean_lo": ci[0],
                    "mean_hi": ci[1],
                    "seeds": len(groups),
                    "reference": float(curve["reference"](params, x)),
                }
            )
    return rows


def plot(
    name: str,
    title: str,
    module: Any,
    grid: Mapping[str, Sequence[Any]],
    x: str | None,
    compared: Sequence[Mapping[str, Any]],
    curve: Sequence[Mapping[str, Any]],
    out: Path,
) -> Path:
    """``out/<name>.png`` and ``.svg``: ours with 95 % CIs, the reference dashed, sources below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = getattr(module, "REFERENCE", {})
    spec_curve = getattr(module, "CURVE", None)
    panels: list[tuple[str, Any]] = [(m, reference[m]) for m in reference]
    if spec_curve:
        panels.append(("__curve__", spec_curve))
    varying = [k for k, v in grid.items() if len(v) > 1 and k != x]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    sources: list[str] = []
    for ax, (metric, spec) in zip(axes[0], panels, strict=True):
        colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
        if metric == "__curve__":
            lines_of: dict[str, list[Mapping[str, Any]]] = {}
            for r in curve:
                lines_of.setdefault(_label(r, [k for k in grid if len(grid[k]) > 1]), []).append(r)
            for label, pts in lines_of.items():
                c = next(colours)
                xs = [p[spec["x"]] for p in pts]
                ax.plot(xs, [p["mean"] for p in pts], color=c, label=f"ours {label}")
                ax.fill_between(
                    xs, [p["mean_lo"] for p in pts], [p["mean_hi"] for p in pts], color=c, alpha=0.2
                )
                ax.plot(
                    xs,
                    [p["reference"] for p in pts],
                    "--",
                    color=c,
                    label=f"{spec['label']} {label}",
                )
            ax.set_xlabel(spec.get("xlabel", spec["x"]))
            ax.set_ylabel(spec.get("ylabel", spec["y"]))
        else:
            mine = [r for r in compared if r["metric"] == metric and r.get("ours") is not None]
            numeric = x is not None and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in grid[x]
            )
            lines_of = {}
            for r in mine:
                lines_of.setdefault(_label(r, varying), []).append(r)
            for label, pts in lines_of.items():
                c = next(colours)
                if numeric:
                    pts = sorted(pts, key=lambda r: r[x])
                    xs: list[Any] = [r[x] for r in pts]
                elif x is not None:  # categories, in the grid's order, not joined by lines
                    pts = sorted(pts, key=lambda r: list(grid[x]).index(r[x]))
                    xs = [list(grid[x]).index(r[x]) for r in pts]
                    ax.set_xticks(range(len(grid[x])), [str(v) for v in grid[x]])
                else:
                    xs = list(range(len(pts)))
                err = [
                    [r["ours"] - r["ours_lo"] for r in pts],
                    [r["ours_hi"] - r["ours"] for r in pts],
                ]
                ax.errorbar(
                    xs,
                    [r["ours"] for r in pts],
                    yerr=err,
                    marker="o",
                    capsize=3,
                    color=c,
                    linestyle="-" if numeric or x is None else "none",
                    label=f"ours ({pts[0]['stat']}, 95 % CI)" + (f", {label}" if varying else ""),
                )
                ax.plot(
                    xs,
                    [r["reference"] for r in pts],
                    "--",
                    marker="x",
                    color=c,
                    label=f"{spec['label']}" + (f", {label}" if len(lines_of) > 1 else ""),
                )
            if x is not None:
                ax.set_xlabel(x)
                if (
                    numeric
                    and all(isinstance(v, int | float) and v > 0 for v in grid[x])
                    and max(grid[x]) / min(grid[x]) >= 20
                ):
                    ax.set_xscale("log")
            elif mine:
                ticks = [_label(r, varying) for r in mine]
                ax.set_xticks(range(len(mine)), ticks, rotation=25, ha="right", fontsize="x-small")
            ax.set_ylabel(spec.get("ylabel", metric))
            if spec.get("y_from_zero") and mine:
                top = max(max(r["ours_hi"] for r in mine), max(r["reference"] for r in mine))
                ax.set_ylim(0, top * 1.4)
            if spec.get("log_y"):
                ax.set_yscale("symlog", linthresh=1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
        sources.append(f"{spec['label']}: {spec['source']}")
    fig.suptitle(title, fontsize="medium", wrap=True)
    note = textwrap.fill(
        "Reference (dashed): " + "; ".join(dict.fromkeys(sources)), int(85 * len(panels))
    )
    fig.text(0.01, 0.01, note, fontsize="x-small")
    fig.tight_layout(rect=(0, 0.035 * (note.count("\n") + 1) + 0.01, 1, 1))
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    fig.savefig(png, dpi=80, metadata={"Software": None})
    # Per save, not global: other plots in the same process keep their own settings.
    # svg.fonttype none: text stays text, small and searchable.
    with matplotlib.rc_context({"svg.hashsalt": "meshhost-gallery", "svg.fonttype": "none"}):
        fig.savefig(out / f"{name}.svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return png


def code_digest() -> str:
    """A digest of meshhost's own sources: the lab keys finished runs by the scenario's
    code only, so runs made by an older simulator or core must not be reused."""
    import hashlib

    import meshhost

    h = hashlib.sha256()
    root = Path(meshhost.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def build(
    name: str,
    out: Path,
    work: Path,
    *,
    jobs: int | None,
    seeds: int | None = None,
    overrides: Mapping[str, list[Any]] | None = None,
    scenario_dir: Path = HERE / "gallery",
    log=print,
) -> list[dict]:
    """Run one gallery entry and write its files; returns its comparison rows."""
    scenario = load_scenario(scenario_dir / f"{name}.py")
    _, module = load_job(scenario.job)
    grid = scenario.with_grid(overrides or {})
    seed_list = list(range(1, (seeds or scenario.seeds) + 1))
    started = time.monotonic()
    result = run_sweep(
        scenario,
        grid,
        seed_list,
        work / name / code_digest(),
        jobs=jobs,
        on_failure=lambda line: log(line),
    )
    if result.failures:
        raise ScenarioError(f"{name}: {len(result.failures)} run(s) failed (replay lines above)")
    reference = getattr(module, "REFERENCE", {})
    summary = summarise(((c.params, c.seed, c.observations) for c in result.cells), list(reference))
    compared = compare(summary, reference)
    spec_curve = getattr(module, "CURVE", None)
    curve = curve_rows(result.cells, spec_curve) if spec_curve else []
    params = list(grid)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.csv").write_text(
        _csv(
            compared,
            [
                *params,
                "metric",
                "count",
                "n_seeds",
                "missing",
                "mean",
                "mean_lo",
                "mean_hi",
                "median",
                "median_lo",
                "median_hi",
                "stat",
                "reference",
                "ratio",
                "within_10pct",
            ],
        )
    )
    if curve:
        (out / f"{name}_curve.csv").write_text(
            _csv(
                curve,
                [*params, spec_curve["x"], "mean", "mean_lo", "mean_hi", "seeds", "reference"],
            )
        )
    ratios = getattr(module, "RATIOS", None)
    if ratios is not None:
        # A figure derived from the runs themselves (Lifeguard's "50x fewer").
        rows = ratios(result.cells)
        (out / f"{name}_ratio.csv").write_text(_csv(rows, list(rows[0]) if rows else []))
    x = scenario.x if scenario.x in grid else None
    plot(name, scenario.title, module, grid, x, compared, curve, out)
    log(
        f"{name}: {len(result.cells)} runs ({result.ran} new, {len(seed_list)} seeds per cell) "
        f"in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return [{"figure": name, **r} for r in compared]


def results_table(rows: Sequence[Mapping[str, Any]], names: Mapping[str, list[str]]) -> str:
    lines = [
        "| figure | cell | metric | reference | ours [95 % CI] | ratio | within 10 % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cell = ", ".join(f"{k}={r[k]}" for k in names.get(r["figure"], []))
        ok = {True: "yes", False: "no", None: "-"}[r["within_10pct"]]
        lines.append(
            f"| {r['figure']} | {cell} | {r['metric']} | {_fmt(r['reference'])} | "
            f"{r['stat']} {_fmt(r['ours'])} "
            f"[{_fmt(r['ours_lo'])}, {_fmt(r['ours_hi'])}] | "
            f"{_fmt(r['ratio'])} | {ok} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=GALLERY, help="this entry only (repeatable)")
    ap.add_argument("--out", type=Path, default=Path("docs/gallery"))
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("build/gallery"),
        help="where the sweeps keep their cells (resumable)",
    )
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    ap.add_argument(
        "--seeds", type=int, default=None, help="seeds per cell (default: the scenario's)"
    )
    ap.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="replace a parameter's values (with --only)",
    )
    args = ap.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        ap.error("--seeds must be >= 1")
    try:
        overrides = dict(parse_param(p) for p in args.param)
    except ScenarioError as exc:
        ap.error(str(exc))
    names = args.only or GALLERY
    rows: list[dict] = []
    grids: dict[str, list[str]] = {}
    for name in names:
        try:
            rows += build(
                name, args.out, args.work, jobs=args.jobs, seeds=args.seeds, overrides=overrides
            )
        except ScenarioError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        sc = load_scenario(HERE / "gallery" / f"{name}.py")
        grids[name] = [k for k, v in sc.with_grid(overrides).items() if len(v) > 1]
    if not args.only:
        (args.out / "results.md").write_text(
            "# Gallery results (generated by `python simulations/gallery.py`)\n\n"
            + results_table(rows, grids)
            + "\n"
        )
    print(results_table(rows, grids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
