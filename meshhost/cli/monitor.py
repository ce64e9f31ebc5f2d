"""``meshhost metrics`` and ``meshhost top``: any host's figures, from any host.

Both ask the local host (control socket) for the control op ``metrics``,
which it forwards to the named host over the lattice: no collector, no
extra server.  ``metrics`` prints one host's Prometheus families as a table
(``--json``: the whole snapshot, see :mod:`meshhost.monitor.snapshot`);
``top`` polls every live host each second and redraws a live view.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from meshhost.cli import main
from meshhost.cli.hostclient import host_options, host_request
from meshhost.cli.output import PlainTable, emit_json, fails_cleanly, json_option, stdout

HIDDEN_LABELS = frozenset({"host", "lattice"})


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in HIDDEN_LABELS)


def _shown(sample: dict[str, Any]) -> bool:
    # Histogram buckets are for Prometheus; the table shows their count and sum.
    return not sample["name"].endswith("_bucket")


@main.command()
@click.option("--host", "host", metavar="HOST", help="Host id or unique prefix (default: local).")
@click.option("--filter", "name_filter", metavar="TEXT", help="Only metrics whose name has TEXT.")
@host_options
@json_option
@fails_cleanly
def metrics(
    host: str | None, name_filter: str | None, data_dir: Path | None, lattice: str, as_json: bool
) -> None:
    """Print the metrics of HOST (the figures its /metrics serves), from any host."""
    snap = host_request(data_dir, lattice, "metrics", host=host)
    if name_filter:
        snap["metrics"] = [f for f in snap["metrics"] if name_filter in f["name"]]
    if as_json:
        emit_json(snap)
        return
    ready = snap["ready"]
    state = "ready" if ready["ready"] else f"not ready ({ready['reason']})"
    table = PlainTable(
        title=f"host {snap['host']} (lattice {snap['lattice']}): {state}, "
        f"health score {snap['health']['score']}"
    )
    for column in ("metric", "labels", "value"):
        table.add_column(column)
    for family in snap["metrics"]:
        for sample in family["samples"]:
            if _shown(sample):
                table.add_row(sample["name"], _labels(sample["labels"]), _value(sample["value"]))
    stdout.print(table)


def format_seconds(seconds: float) -> str:
    """0.000153 -> '153 µs', 0.0123 -> '12.3 ms', 2.5 -> '2.50 s'."""
    if seconds <= 0 or math.isnan(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"
