"""``meshhost trace``: a call's spans from every host, as a tree.

The local host gathers them over the lattice (control op ``trace``); no
collector is involved.  ``meshhost call --trace`` prints the same tree for
the call it made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from meshhost.cli import main
from meshhost.cli.hostclient import host_options, host_request
from meshhost.cli.output import emit_json, fails_cleanly, json_option
from meshhost.cli.tracetree import print_traces
from meshhost.errors import LocalProtocolError
from meshhost.monitor.tracing import MAX_LAST

__all__ = ["print_traces", "trace"]


@main.command()
@click.argument("trace_id", required=False)
@click.option(
    "--last", type=click.IntRange(1, MAX_LAST), help="Show the N most recent traces instead of one."
)
@host_options
@json_option
@fails_cleanly
def trace(
    trace_id: str | None, last: int | None, data_dir: Path | None, lattice: str, as_json: bool
) -> None:
    """Show a trace's spans from every host in the lattice as a tree.

    TRACE_ID is the 32 hex digits `meshhost call --json` prints as trace_id
    (or an incoming HTTP request's traceparent carried); --last N shows the
    N most recent traces instead.
    """
    if (trace_id is None) == (last is None):
        raise LocalProtocolError("give a TRACE_ID or --last N (one of them)")
    args: dict[str, Any] = {"trace_id": trace_id} if trace_id else {"last": last}
    result = host_request(data_dir, lattice, "trace", **args)
    if as_json:
        emit_json(result)
    else:
        print_traces(result)
