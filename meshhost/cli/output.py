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

from meshhost.errors import MeshError

F = TypeVar("F", bound=Callable[..., Any])


def silence_stdout() -> None:
    """Point stdout at /dev/null: its reader went away (``meshhost up | grep x``, Ctrl-C)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


_UNPRINTABLE = {
    **{c: 0x2400 + c for c in range(32) if c not in (9, 10)},
    127: 0x2421,
    **{c: 0xFFFD for c in range(0x80, 0xA0)},
}


def printable(text: str) -> str:
    """``text`` with control characters (but tab and newline) shown as symbols (ESC as ␛).

    Names come from other people (claims, labels, link values): an escape
    sequence in one would otherwise clear the operator's screen, retitle the
    window or garble ``top``.
    """
    return text.translate(_UNPRINTABLE)


def safe_console_class() -> type[Any]:
    """rich's ``Console`` that writes every text through :func:`printable` (rich keeps
    ESC and most other control characters); its own styles and cursor moves pass."""
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        def _render_buffer(self, buffer: Any) -> str:
            return super()._render_buffer(
                segment if segment.control else Segment(printable(segment.text), segment.style)
                for segment in buffer
            )

    return SafeConsole


class _LazyConsole:
    """A rich ``Console`` made on first use: importing rich costs ~30 ms, and the
    read commands (``hosts``, ``inventory``, ``link list``) print only plain
    text and :class:`PlainTable`, which go straight to the stream.

    When nobody reads any more (``meshhost up | head``), printing stops
    quietly: rich would raise SystemExit, and a running host would then die
    mid-shutdown instead of leaving gracefully.
    """

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Any = None
        self.quiet = False

    def _rich(self) -> Any:
        if self._console is None:
            outer = self

            class QuietWhenUnread(safe_console_class()):  # type: ignore[misc]
                def on_broken_pipe(self) -> None:
                    self.quiet = outer.quiet = True
                    silence_stdout()

            self._console = QuietWhenUnread(stderr=self._stderr, soft_wrap=True, quiet=self.quiet)
        return self._console

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """rich's ``Console.print``; a PlainTable, or text with markup and highlighting
        off, is written as it is without loading rich."""
        text = None
        if len(objects) == 1 and isinstance(objects[0], PlainTable) and not kwargs:
            text = str(objects[0])
            if max(map(len, text.splitlines()), default=0) > self._width():
                text = None  # too wide: rich folds the columns that may fold
        elif (
            len(objects) == 1
            and isinstance(objects[0], str)
            and kwargs.get("markup") is False
            and kwargs.get("highlight") is False
            and set(kwargs) <= {"markup", "highlight"}
        ):
            text = objects[0]
        if text is None:
            self._rich().print(*objects, **kwargs)
            return
        if self.quiet:
            return
        stream = sys.stderr if self._stderr else sys.stdout
        try:
            stream.write(f"{printable(text)}\n")
            stream.flush()
        except BrokenPipeError:
            self.quiet = True
            if not self._stderr:
                silence_stdout()

    def _width(self) -> int:
        """The width rich would use: the terminal's, else $COLUMNS, else 80."""
        if self._console is not None:
            return int(self._console.width)
        stream = sys.stderr if self._stderr else sys.stdout
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit():
            return int(columns)
        try:
            return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 80
        except (OSError, ValueError, AttributeError):
            return 80

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rich(), name)


stdout = _LazyConsole()
stderr = _LazyConsole(stderr=True)

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


def lattice_name_option(ctx: Any, param: Any, value: str | None) -> str | None:
    """click callback of every ``--lattice`` option: a safe name or a usage error saying
    what is allowed (the name becomes a directory under the per-user data dir)."""
    import click

    from meshhost.datadir import check_lattice_name
    from meshhost.errors import InvalidLatticeName

    if value is None:
        return None
    try:
        return check_lattice_name(value, "lattice name")
    except InvalidLatticeName as exc:
        raise click.BadParameter(str(exc)) from None


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
    from rich.markup import escape

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
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {what} file {str(path)!r}: {exc.strerror}. "
                f"Pass a file holding the {what}, or set {env_var}."
            ) from None
        # a lattice secret file carries `# admin O…` lines below the secret
        lines = [
            ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")
        ]
        return lines[0] if lines else ""
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return from_env
    raise click.UsageError(f"no {what} given: pass a file holding it, or set {env_var}")


class PlainTable:
    """Columns of text under an optional title, without rules or boxes.

    Cells are shown exactly as given, never read as markup (they hold peer-
    and user-chosen text: labels, actor names from claims, link values); a
    cell may span several lines.  Column options are rich ``Table``'s
    (``overflow="fold"``, ``no_wrap``, ``style``).

    :class:`_LazyConsole` writes a table that fits the terminal as plain text,
    columns two spaces apart, without loading rich (~30 ms: the read commands
    stay fast); a wider one is laid out by rich (``__rich__``) in the same
    style, folding the columns that allow it so ids stay whole.
    """

    def __init__(
        self, *headers: str, title: str | None = None, show_header: bool = True, **_ignored: Any
    ) -> None:
        self.title = title
        self.show_header = show_header
        self.columns: list[tuple[str, dict[str, Any]]] = [(h.upper(), {}) for h in headers]
        self.rows: list[list[str]] = []

    def add_column(self, header: str = "", **options: Any) -> None:
        """Add a column; headers are upper case in every table (``HOST``, ``STATE``)."""
        self.columns.append((header.upper(), options))

    def add_row(self, *cells: Any) -> None:
        self.rows.append([str(cell) for cell in cells])

    def __str__(self) -> str:
        rows = ([[h for h, _ in self.columns]] if self.show_header else []) + self.rows
        ncols = max((len(r) for r in rows), default=0)
        split = [[(r[i] if i < len(r) else "").split("\n") for i in range(ncols)] for r in rows]
        widths = [
            max((len(line) for row in split for line in row[i]), default=0) for i in range(ncols)
        ]
        lines = [] if self.title is None else [self.title]
        for row in split:
            for k in range(max((len(cell) for cell in row), default=1)):
                parts = [
                    (cell[k] if k < len(cell) else "").ljust(widths[i])
                    for i, cell in enumerate(row)
                ]
                lines.append("  ".join(parts).rstrip())
        return "\n".join(lines)

    def __rich__(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=None if self.title is None else Text(self.title),
            show_header=self.show_header,
            box=None,
            pad_edge=False,
            padding=(0, 1),
            title_justify="left",
            header_style="",
        )
        for header, options in self.columns:
            table.add_column(header, **options)
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))
        return table
