"""Shared CLI plumbing: JSON or rich output, secrets from files, error exits.

Exit codes: 0 success, 1 the operation failed (a MeshError, or a path that
cannot be read or written; printed as one line), 2 bad usage (click's own),
128 + the signal's number when a signal ended a command: 130 after Ctrl-C
(SIGINT), as shells report it (`meshhost up` stopped by SIGTERM has done its
job and exits 0).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from meshhost.errors import MeshError

F = TypeVar("F", bound=Callable[..., Any])



def silence_stdout() -> None:
    """Point stdout at /dev/null: its reader went away (``meshhost up | grep x``, Ctrl-C)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class _QuietWhenUnread(Console):
    """Stops printing when nobody reads any more (rich would raise SystemExit: a running
    host would then die mid-shutdown instead of leaving gracefully)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence_stdout()


stdout = _QuietWhenUnread(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (bytes as hex)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def exit_by_signal(signum: int) -> NoReturn:
    """Exit as a command ended by signal ``signum`` does: 128 + its number (SIGINT: 130)."""
    sys.exit(128 + signum)


def fails_cleanly(func: F) -> F:
    """Turn a MeshError, or an OSError on a path, into one red line on stderr and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MeshError as exc:
            _fail(str(exc))
        except OSError as exc:
            if exc.filename is None:
                raise  # not about a path: keep the traceback, it is a bug to report
            _fail(f"{exc.filename}: {exc.strerror}")

    return wrapper  # type: ignore[return-value]


def fail(message: str) -> NoReturn:
    """Print ``message`` as one red ``error:`` line on stderr and exit 1."""
    _fail(message)


def _fail(message: str) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    sys.exit(1)


def read_secret(value: str | None, env_var: str, what: str) -> str:
    """Read a secret from ``@file``, a file path, or an environment variable.

    Secrets are never taken literally from the command line (they would end up
    in shell history and ``ps``).
    """
    if value:
        path = Path(value[1:] if value.startswith("@") else value)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {what} file {str(path)!r}: {exc.strerror}. "
                f"Pass a file holding the {what}, or set {env_var}."
            ) from None
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return from_env
    raise click.UsageError(f"no {what} given: pass a file holding it, or set {env_var}")


class PlainTable(Table):
    """A rich ``Table`` whose text cells and title are shown as they are, never as markup.

    Cells hold peer- and user-chosen text (labels, actor names from claims,
    link values): ``[/x]`` in one must print, not crash the CLI.
    """

    def __init__(self, *headers: Any, title: str | None = None, **kwargs: Any) -> None:
        super().__init__(*headers, title=Text(title) if title is not None else None, **kwargs)

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(Text(r) if isinstance(r, str) else r for r in renderables), **kwargs)
