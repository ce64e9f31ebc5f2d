"""`--help` explains every command and every option."""

from collections.abc import Iterator

import click
from click.testing import CliRunner

from meshhost import __version__
from meshhost.cli import load_all, main


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield " ".join((*path, name)), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_and_option_has_help_text() -> None:
    load_all()
    commands = list(_commands(main))
    assert {"up", "lattice new", "link del", "app diff", "demo"} <= {name for name, _ in commands}
    missing = [
        f"meshhost {name} {'/'.join(param.opts)}"
        for name, command in commands
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    missing += [f"meshhost {name}" for name, command in commands if not command.help]
    assert missing == []


def test_version_flag_works_like_the_version_command() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"meshhost {__version__}\n"
