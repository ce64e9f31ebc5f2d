"""``meshhost link`` and ``meshhost config``: the lattice-wide entries a person writes by hand.

Links (which provider serves an actor's capability, with what values) and
config values live in the directory of every host; these commands put, read
and delete them through the local host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from meshhost.cli import main
from meshhost.cli.hostclient import host_options, host_request
from meshhost.cli.output import PlainTable, emit_json, fails_cleanly, json_option, stdout


@main.group()
def link() -> None:
    """Link definitions: grant an actor a capability with its config."""


@link.command("put")
@click.argument("actor")
@click.argument("contract")
@click.option("--name", "link_name", default="default", show_default=True, help="Link name.")
@click.option("--provider", default="", help="Provider id (default: the built-in provider).")
@click.option("--value", "values", multiple=True, help="Link config entry KEY=VALUE.")
@host_options
@json_option
@fails_cleanly
def link_put(
    actor: str,
    contract: str,
    link_name: str,
    provider: str,
    values: tuple[str, ...],
    data_dir: Path | None,
    lattice: str,
    as_json: bool,
) -> None:
    """Link ACTOR to capability CONTRACT (e.g. wasmcloud:keyvalue), or to another actor:
    CONTRACT is then its call alias (e.g. wasmcloud/echo) or M… key."""
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--value")
        pairs[key] = value
    result = host_request(
        data_dir,
        lattice,
        "link_put",
        actor=actor,
        contract=contract,
        link_name=link_name,
        provider=provider,
        values=pairs,
    )
    if as_json:
        emit_json(result)
    else:
        stdout.print(f"linked {actor} to {contract} ({link_name})", highlight=False, markup=False)


@link.command("del")
@click.argument("actor")
@click.argument("contract")
@click.option("--name", "link_name", default="default", show_default=True, help="Link name.")
@host_options
@fails_cleanly
def link_del(
    actor: str, contract: str, link_name: str, data_dir: Path | None, lattice: str
) -> None:
    """Remove the link of ACTOR to CONTRACT."""
    host_request(data_dir, lattice, "link_del", actor=actor, contract=contract, link_name=link_name)
    stdout.print(f"unlinked {actor} from {contract} ({link_name})", highlight=False, markup=False)


@link.command("list")
@host_options
@json_option
@fails_cleanly
def link_list(data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """List every link definition in the lattice."""
    links = host_request(data_dir, lattice, "link_list")
    if as_json:
        emit_json(links)
        return
    stdout.print(links_table(links))


def links_table(links: list[dict[str, Any]]) -> PlainTable:
    """The ``link list`` table. Ids and contracts are never cut: an id folds onto more
    lines (it must stay whole to be copied into ``link del``), a contract keeps its
    line, and the values column takes what width is left."""
    table = PlainTable(title=f"{len(links)} links")
    table.add_column("ACTOR", overflow="fold")
    table.add_column("CONTRACT", no_wrap=True)
    table.add_column("NAME", no_wrap=True)
    table.add_column("PROVIDER", overflow="fold")
    table.add_column("VALUES", overflow="fold")
    for item in links:
        values = ", ".join(f"{k}={v}" for k, v in sorted(item["values"].items()))
        table.add_row(
            item["actor"], item["contract"], item["link_name"], item.get("provider", ""), values
        )
    return table


@main.group()
def config() -> None:
    """Lattice-wide configuration entries."""


@config.command("put")
@click.argument("key")
@click.argument("value")
@host_options
@fails_cleanly
def config_put(key: str, value: str, data_dir: Path | None, lattice: str) -> None:
    """Set KEY to VALUE for the whole lattice."""
    host_request(data_dir, lattice, "config_put", key=key, value=value)
    stdout.print(f"{key} set", highlight=False, markup=False)


@config.command("get")
@click.argument("key")
@host_options
@json_option
@fails_cleanly
def config_get(key: str, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Print the value of KEY."""
    value = host_request(data_dir, lattice, "config_get", key=key)
    if as_json:
        emit_json({"key": key, "value": value})
    else:
        click.echo(value)


@config.command("del")
@click.argument("key")
@host_options
@fails_cleanly
def config_del(key: str, data_dir: Path | None, lattice: str) -> None:
    """Delete KEY."""
    host_request(data_dir, lattice, "config_del", key=key)
    stdout.print(f"{key} deleted", highlight=False, markup=False)
