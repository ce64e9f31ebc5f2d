"""The ``meshhost`` command line. Each area adds its commands from its own module.

The modules are imported only when one of their commands runs (or ``--help``
lists them all): ``meshhost hosts`` must not pay for wasmtime, zeroconf,
trio or yaml, which only ``up``, ``demo`` and ``apply`` use.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
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


COMMAND_MODULES: dict[str, str | tuple[str, ...]] = {
    "hosts": "lattice",
    "inventory": "lattice",
    "start": "lattice",
    "stop": "lattice",
    "scale": "lattice",
    "link": "directory",
    "config": "directory",
    "call": "lattice",
    "events": "lattice",
    "host": "lattice",
    "keys": "keys",
    "claims": "claims",
    "up": "host",
    "lattice": ("secret", "rotate"),  # rotate adds `lattice rotate` and `lattice keyring`
    "demo": "demo",
    "apply": "apps",
    "app": "apps",
    "metrics": "monitor",
    "trace": "trace",
    "top": "top",
    "operator": "operators",
    "issuer": "operators",
    "revoke": "operators",
    "sim": "sim",
    "lab": "lab",
}
"""Command name -> the module(s) of meshhost.cli that register it.  A command missing
here still works (every module is then loaded); tests/cli/test_cli_imports.py
says which entry to add."""
MODULES = tuple(
    sorted(
        path.stem
        for path in Path(__file__).parent.glob("*.py")
        if path.stem not in ("__init__", "__main__", "output")
    )
)
"""Every module of meshhost.cli but this one and ``output``: each may register commands."""


class _LazyGroup(_Main):
    """Imports a command's module when the command is looked up, not at start-up."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if isinstance(module, tuple):
            # a group whose subcommands come from several modules: each is
            # loaded even when the group itself was registered already
            for name in module:
                importlib.import_module(f"meshhost.cli.{name}")
        elif cmd_name not in self.commands:
            # An unknown name loads everything: a command missing from the
            # map is still found (only slower), and click's "no such
            # command" hint sees every name.
            for name in (module,) if module else MODULES:
                importlib.import_module(f"meshhost.cli.{name}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_all()
        return super().list_commands(ctx)


def load_all() -> None:
    """Import every command module (for ``--help`` and for tests that inspect ``main``)."""
    for name in MODULES:
        importlib.import_module(f"meshhost.cli.{name}")


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meshhost", message="%(prog)s %(version)s")
def main() -> None:
    """meshhost: run WebAssembly actors on a lattice of hosts with no broker."""


@main.command()
@json_option
def version(as_json: bool) -> None:
    """Print the meshhost version and the protocol versions it speaks."""
    from importlib.metadata import version as package_version

    from meshhost.transport.handshake import PROTOCOL_VERSION

    wasmtime_version = package_version("wasmtime")
    info = {"meshhost": __version__, "protocol": PROTOCOL_VERSION, "wasmtime": wasmtime_version}
    if as_json:
        emit_json(info)
    else:
        stdout.print(
            f"meshhost {__version__} (protocol {PROTOCOL_VERSION}, wasmtime {wasmtime_version})"
        )


__all__ = ["main"]
