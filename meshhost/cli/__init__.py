"""The ``meshhost`` command line. Each area adds its commands from its own module."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from meshhost import __version__
from meshhost.cli.output import emit_json, json_option, stdout


@contextlib.contextmanager
def _ctrl_c_exits_130() -> Iterator[None]:
    """Ctrl-C ends the command with exit 130 and no output of its own (not click's
    "Aborted!" and exit 1).  trio.run may raise the KeyboardInterrupt inside an
    exception group."""
    try:
        yield
    except KeyboardInterrupt:
        sys.exit(130)  # 128 + SIGINT, as meshhost.cli.output.exit_by_signal
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is None:
            raise
        sys.exit(130)


class _Main(click.Group):
    """The ``meshhost`` group: a Ctrl-C while parsing or running a command exits 130."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _ctrl_c_exits_130():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _ctrl_c_exits_130():
            return super().invoke(ctx)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meshhost", message="%(prog)s %(version)s")
def main() -> None:
    """meshhost: run WebAssembly actors on a lattice of hosts with no broker."""


@main.command()
@json_option
def version(as_json: bool) -> None:
    """Print the meshhost version and the protocol versions it speaks."""
    from importlib.metadata import version as package_version

    wasmtime_version = package_version("wasmtime")
    info = {"meshhost": __version__, "protocol": 1, "wasmtime": wasmtime_version}
    if as_json:
        emit_json(info)
    else:
        stdout.print(f"meshhost {__version__} (protocol 1, wasmtime {wasmtime_version})")


# Each module below registers its commands on `main`. Keep one import per line.
from meshhost.cli import keys  # noqa: E402,F401
from meshhost.cli import lattice  # noqa: E402,F401
from meshhost.cli import claims  # noqa: E402,F401
from meshhost.cli import host  # noqa: E402,F401
from meshhost.cli import demo  # noqa: E402,F401
from meshhost.cli import apps  # noqa: E402,F401
from meshhost.cli import monitor  # noqa: E402,F401
from meshhost.cli import trace  # noqa: E402,F401
from meshhost.cli import top  # noqa: E402,F401

__all__ = ["main"]
