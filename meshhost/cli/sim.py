"""``meshhost sim``: sweep a simulator scenario over a grid x seeds, replay one seed.

``meshhost sim run SCENARIO`` runs every (parameters, seed) cell in parallel
(a process per core, or ``--dask ADDRESS``), resumes an interrupted sweep
(finished cells are on disk and skipped), and writes CSV / JSON Lines, a
summary with bootstrap 95 % intervals, plots and ``report.md`` (see
:mod:`meshhost.lab`).  A failing seed is printed with the ``meshhost sim
replay`` command that reruns it alone.  numpy, matplotlib and distributed
are imported only here, inside the commands.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from meshhost.cli import main
from meshhost.cli.output import exit_by_signal, fail, fails_cleanly


@main.group()
def sim() -> None:
    """Run simulator scenarios: parameter sweeps with statistics, plots and replay."""


def _params(values: tuple[str, ...]) -> dict[str, list[Any]]:
    from meshhost.lab.scenario import parse_param

    grid: dict[str, list[Any]] = {}
    for text in values:
        name, vals = parse_param(text)
        grid[name] = vals
    return grid


_PARAM_HELP = "NAME=V1,V2,... replaces that parameter's values (repeatable; JSON values)."


@sim.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option(
    "--seeds", type=click.IntRange(min=1), help="Seeds per cell (default: the scenario's SEEDS)."
)
@click.option(
    "--seed-base", type=click.IntRange(min=0), default=1, show_default=True, help="First seed."
)
@click.option("--param", "params", multiple=True, metavar="NAME=VALUES", help=_PARAM_HELP)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: sim-results/<scenario name>).",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), help="Worker processes (default: every core)."
)
@click.option("--dask", metavar="ADDRESS", help="Run on this Dask scheduler (needs meshhost[lab]).")
@click.option("--metrics", metavar="A,B", help="Summarise and plot only these fields.")
@click.option("--fresh", is_flag=True, help="Delete the output folder's earlier results first.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG/SVG plots.")
@fails_cleanly
def run_cmd(
    scenario: str,
    seeds: int | None,
    seed_base: int,
    params: tuple[str, ...],
    out: Path | None,
    jobs: int | None,
    dask: str | None,
    metrics: str | None,
    fresh: bool,
    no_plots: bool,
) -> None:
    """Sweep SCENARIO (.py or .yaml) over its grid x seeds; resumes where it stopped."""
    try:
        import matplotlib  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as exc:
        fail(
            f"meshhost sim run needs the lab extra ({exc.name} is missing): "
            "pip install 'meshhost[lab]'"
        )
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from meshhost.lab.report import write_outputs
    from meshhost.lab.scenario import load_scenario
    from meshhost.lab.sweep import run_sweep

    scen = load_scenario(scenario)
    if metrics:
        import dataclasses

        scen = dataclasses.replace(scen, metrics=[m.strip() for m in metrics.split(",")])
    grid = scen.with_grid(_params(params))
    seed_list = list(range(seed_base, seed_base + (seeds or scen.seeds)))
    out = out or Path("sim-results") / scen.name
    if fresh:
        for sub in ("cells", "failed"):
            shutil.rmtree(out / sub, ignore_errors=True)
    err = Console(stderr=True, highlight=False)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(scen.name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            result = run_sweep(
                scen,
                grid,
                seed_list,
                out,
                jobs=jobs,
                dask=dask,
                progress=progress,
                on_failure=lambda line: err.print(line, markup=False, soft_wrap=True),
            )
        except KeyboardInterrupt:
            bar.stop()
            err.print(
                f"interrupted: finished cells are kept in {out}/cells; "
                "run the same command again to resume",
                markup=False,
                soft_wrap=True,
            )
            exit_by_signal(2)
    written = write_outputs(scen, grid, seed_list, result, out, plots=not no_plots)
    click.echo(
        f"{result.ran} cells run, {result.skipped} already done, "
        f"{len(result.failures)} failed; report: {written['report']}"
    )
    if result.failures:
        sys.exit(1)


@sim.command("replay")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--seed", type=click.IntRange(min=0), required=True, help="The seed to rerun.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="One value per parameter, as the failure printed it (repeatable).",
)
@fails_cleanly
def replay_cmd(scenario: str, seed: int, params: tuple[str, ...]) -> None:
    """Rerun one seed of SCENARIO in this process: observations as JSON lines,
    or the failure with its traceback (exit 1)."""
    from meshhost.lab.scenario import load_scenario, normalise_observations

    scen = load_scenario(scenario)
    given = _params(params)
    chosen: dict[str, Any] = {}
    for name, values in scen.with_grid(given).items():
        if len(values) != 1:
            fail(
                f"--param {name}: give one value (the scenario sweeps "
                f"{', '.join(map(str, values))})"
            )
        chosen[name] = values[0]
    try:
        observations = normalise_observations(scen.run(seed, **chosen), f"{scenario} seed {seed}")
    except Exception:
        import traceback

        traceback.print_exc()
        print(f"SEED={seed}", file=sys.stderr)
        sys.exit(1)
    for obs in observations:
        click.echo(json.dumps(obs))
