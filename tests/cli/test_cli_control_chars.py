"""Names from other people cannot drive the operator's terminal.

An actor's name comes from its signer's claims, a label or a link value from
whoever set it; an escape sequence in one (clear the screen, retitle the
window) went to the terminal as it was, in `start`, `inventory`, `top`, ...
"""

from __future__ import annotations

import io

import pytest
from rich.table import Table

from meshhost.cli.output import PlainTable, safe_console_class, stdout

NAME = "esc\x1b[2J\x1b]0;pwned\x07\x9b31mZ"


def test_plain_and_rich_output_show_control_characters_as_symbols(
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = PlainTable("ACTOR", "NAME")
    table.add_row("M" + "A" * 55, NAME)
    stdout.print(table)
    stdout.print(f"started {NAME}", markup=False, highlight=False)
    rich_table = Table("NAME")
    rich_table.add_row(NAME)
    stdout.print(rich_table)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert out.count("esc␛[2J") == 3


def test_the_live_consoles_text_is_cleaned_but_its_own_styles_pass() -> None:
    out = io.StringIO()
    console = safe_console_class()(file=out, force_terminal=True, color_system="standard")
    console.print(f"[bold]{NAME}[/]")
    text = out.getvalue()
    assert "\x1b[1m" in text  # rich's own bold
    assert "\x1b[2J" not in text and "\x1b]0;" not in text and "esc␛" in text
