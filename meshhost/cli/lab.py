"""``meshhost lab``: a partition scenario on real hosts in network namespaces, beside the simulator.

``lab run SCENARIO`` needs root and iproute2 (it makes network namespaces);
``lab compare SIM REAL`` only reads CSVs and draws.  Everything heavy is
imported inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from meshhost.cli import main
from meshhost.cli.output import emit_json, fails_cleanly, json_option, stdout

__all__ = ["lab_group"]


def _say(message: str) -> None:
    # Progress goes to stderr, so --json output stays one document on stdout.
    click.echo(message, err=True)


@main.group("lab")
def lab_group() -> None:
    """Run a partition scenario on real hosts and compare it with the simulator."""


@lab_group.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("lab-out"),
    show_default=True,
    help="Folder for observations, history, checks and plots.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(10, 3600),
    default=300.0,
    show_default=True,
    help="Hard limit in seconds of each real run, cleanup included.",
)
@click.option(
    "--sim-seeds",
    type=click.IntRange(0, 1000),
    default=None,
    help="Simulated seeds to compare with (default: the scenario's sim_seeds).",
)
@click.option(
    "--runs",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Real runs, one after the other (each under --timeout).",
)
@json_option
@fails_cleanly
def lab_run(
    scenario: Path, out: Path, timeout_s: float, sim_seeds: int | None, runs: int, as_json: bool
) -> None:
    """Run SCENARIO (YAML) on real `meshhost up` hosts, one network namespace each.

    Needs root, iproute2 and util-linux.  Every namespace and process is removed
    on exit, on error, on Ctrl-C and at --timeout.  Exits 1 if a check fails.
    """
    from meshhost.lab.real.lab import run_lab
    from meshhost.lab.real.spec import load_lab_scenario

    spec = load_lab_scenario(scenario)
    result = run_lab(
        spec,
        out,
        timeout_s=timeout_s,
        sim_seeds=spec.sim_seeds if sim_seeds is None else sim_seeds,
        say=_say,
        runs=runs,
    )
    checks = result["checks"]
    if as_json:
        emit_json({"out": str(out), **result})
    else:
        formed = ", ".join(f"{s:.1f}" for s in result["formed_s"])
        stdout.print(
            f"{spec.title}: {spec.hosts} real hosts, {runs} run(s), formed in {formed} s",
            highlight=False,
            markup=False,
        )
        for row in result["compare"]:
            if row["metric"] in ("detect_s", "heal_s"):
                stdout.print(
                    f"  {row['metric']:10} {row['host']} ({row['side']}): "
                    f"sim median {row['sim_median']}, real {row['real_median']}",
                    highlight=False,
                    markup=False,
                )
        for number, run_checks in enumerate(checks["runs"], 1):
            for name in ("invocations", "counter", "directory"):
                verdict = run_checks[name]
                stdout.print(
                    f"  run {number} check {name}: {'ok' if verdict['ok'] else 'FAILED'}",
                    highlight=False,
                    markup=False,
                )
                for line in verdict["violations"]:
                    stdout.print(f"    {line}", highlight=False, markup=False)
        for note in result["notes"]:
            stdout.print(f"  note: {note}", highlight=False, markup=False)
        stdout.print(
            f"written to {out}/ (compare.png, compare.csv, real/, sim/)",
            highlight=False,
            markup=False,
        )
    if not checks["ok"]:
        sys.exit(1)


@lab_group.command("compare")
@click.argument("sim", type=click.Path(exists=True, path_type=Path))
@click.argument("real", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for compare.csv and compare.png|svg.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="Observation column to compare (repeatable; default: the lab's timings).",
)
@click.option("--title", default="", help="Title of the plot.")
@json_option
@fails_cleanly
def lab_compare(
    sim: Path, real: Path, out: Path, metrics: tuple[str, ...], title: str, as_json: bool
) -> None:
    """Plot SIM's and REAL's observations side by side per host; write compare.csv.

    SIM and REAL are observations.csv files or folders holding one (a lab run's
    sim/ and real/, or a `meshhost sim` output with the same columns).
    """
    from meshhost.lab.real.compare import compare
    from meshhost.lab.real.observe import METRICS

    table = compare(sim, real, out, list(metrics) or list(METRICS), title)
    if as_json:
        emit_json(table)
    else:
        stdout.print(
            f"{len(table)} rows in {out / 'compare.csv'}; plot {out / 'compare.png'}",
            highlight=False,
            markup=False,
        )
