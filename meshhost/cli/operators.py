"""``meshhost operator|issuer|revoke add|del|list``: the lattice-wide security state.

Each change is a statement signed by an admin operator key (the one the CLI
signs requests with: ``--operator-key``, ``$MESHHOST_OPERATOR_KEY``, or the
admin key ``lattice new`` stored beside the secret) and stored lattice-wide;
every host checks the signature and applies it (proto/spec/operators.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from meshhost.cli import main
from meshhost.cli.hostclient import Signer, host_options
from meshhost.cli.output import PlainTable, emit_json, fails_cleanly, json_option, stdout
from meshhost.control.api import request_blocking
from meshhost.datadir import CONTROL_SOCKET, default_data_dir
from meshhost.errors import LocalProtocolError
from meshhost.identity.operators import Role, StatementKind, sign_statement


def _socket(data_dir: Path | None, lattice: str) -> Path:
    return (data_dir if data_dir is not None else default_data_dir(lattice)) / CONTROL_SOCKET


def _put(
    data_dir: Path | None, lattice: str, kind: StatementKind, subject: str, value: str
) -> dict[str, Any]:
    path = _socket(data_dir, lattice)
    signer = Signer.for_host(path)
    if signer.open:
        raise LocalProtocolError(
            "this lattice has no admin key (its secret file names none), so it has no "
            "operators: make a lattice with `meshhost lattice new`, whose secret names one"
        )
    if signer.pair is None:
        raise LocalProtocolError(
            "changing operators, issuers or revocations needs an admin operator key: "
            "pass --operator-key FILE or set $MESHHOST_OPERATOR_KEY "
            "(`meshhost lattice new` stores one beside the secret)"
        )
    statement = sign_statement(
        signer.pair, signer.lattice, kind, subject, value, int(time.time() * 1000)
    )
    args = {"statement": statement.encoded()}
    result: dict[str, Any] = request_blocking(
        path, "security_put", auth=signer.sign("security_put", args), **args
    )
    return result


def _list(data_dir: Path | None, lattice: str) -> dict[str, Any]:
    result: dict[str, Any] = request_blocking(_socket(data_dir, lattice), "security_list")
    return result


def _said(result: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        emit_json(result)
    else:
        stdout.print(text, highlight=False, markup=False)


# -- operators -------------------------------------------------------------------------


@main.group("operator")
def operator_group() -> None:
    """Operator keys and their roles (member, deployer, admin)."""


@operator_group.command("add")
@click.argument("key")
@click.option(
    "--role",
    type=click.Choice([r.label for r in Role if r != Role.NONE]),
    required=True,
    help="deployer: start/stop/scale/apply; admin: also links, "
    "config, operators, issuers, revocation.",
)
@host_options
@json_option
@fails_cleanly
def operator_add(key: str, role: str, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Give operator KEY (O… or U…, `meshhost keys gen operator`) a role lattice-wide."""
    result = _put(data_dir, lattice, StatementKind.ROLE, key, role)
    _said(result, as_json, f"operator {key} now has role {role}")


@operator_group.command("del")
@click.argument("key")
@host_options
@json_option
@fails_cleanly
def operator_del(key: str, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Take every role from operator KEY lattice-wide (rotation: add the new key first)."""
    result = _put(data_dir, lattice, StatementKind.ROLE, key, Role.NONE.label)
    _said(result, as_json, f"operator {key} has no role any more")


@operator_group.command("list")
@host_options
@json_option
@fails_cleanly
def operator_list(data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Operator keys and their roles as this host knows them."""
    state = _list(data_dir, lattice)
    if as_json:
        emit_json(state["operators"])
        return
    if state["open"]:
        stdout.print(
            "This lattice has no admin key: any holder of the secret may change it "
            "(a secret from `meshhost lattice new` names one).",
            markup=False,
        )
        return
    table = PlainTable("KEY", "ROLE", "FROM")
    for row in state["operators"]:
        table.add_row(row["key"], row["role"], "secret file" if row["bootstrap"] else "lattice")
    stdout.print(table)


# -- issuers ---------------------------------------------------------------------------


@main.group("issuer")
def issuer_group() -> None:
    """The lattice-wide allow-list of actor issuers (A… accounts)."""


@issuer_group.command("add")
@click.argument("key")
@host_options
@json_option
@fails_cleanly
def issuer_add(key: str, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Allow actors signed by issuer KEY; once the list is not empty, only listed ones run."""
    result = _put(data_dir, lattice, StatementKind.ISSUER, key, "allow")
    _said(result, as_json, f"issuer {key} allowed lattice-wide")


@issuer_group.command("del")
@click.argument("key")
@host_options
@json_option
@fails_cleanly
def issuer_del(key: str, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Take issuer KEY off the lattice-wide allow-list."""
    result = _put(data_dir, lattice, StatementKind.ISSUER, key, "none")
    _said(result, as_json, f"issuer {key} no longer on the lattice-wide allow-list")


@issuer_group.command("list")
@host_options
@json_option
@fails_cleanly
def issuer_list(data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Allowed issuers: lattice-wide, and this host's own (`up --allowed-issuer`)."""
    state = _list(data_dir, lattice)
    rows = {"lattice": state["issuers"], "host": state["host_issuers"]}
    if as_json:
        emit_json(rows)
        return
    if not rows["lattice"] and not rows["host"]:
        stdout.print("No issuer allow-list: actors signed by any issuer run.", markup=False)
        return
    table = PlainTable("ISSUER", "WHERE")
    for where, keys in rows.items():
        for key in keys:
            table.add_row(key, where)
    stdout.print(table)


# -- revocation ------------------------------------------------------------------------


@main.group("revoke")
def revoke_group() -> None:
    """Revoke actor (M…) or issuer (A…) keys lattice-wide: every host stops them."""


@revoke_group.command("add")
@click.argument("key")
@host_options
@json_option
@fails_cleanly
def revoke_add(key: str, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Revoke actor or issuer KEY: its instances stop everywhere and no host starts it."""
    result = _put(data_dir, lattice, StatementKind.REVOKE, key, "revoked")
    _said(result, as_json, f"{key} revoked lattice-wide")


@revoke_group.command("del")
@click.argument("key")
@host_options
@json_option
@fails_cleanly
def revoke_del(key: str, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Undo the revocation of KEY (stopped instances are not restarted by themselves)."""
    result = _put(data_dir, lattice, StatementKind.REVOKE, key, "none")
    _said(result, as_json, f"{key} no longer revoked")


@revoke_group.command("list")
@host_options
@json_option
@fails_cleanly
def revoke_list(data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Revoked actor and issuer keys."""
    state = _list(data_dir, lattice)
    if as_json:
        emit_json(state["revoked"])
        return
    if not state["revoked"]:
        stdout.print("Nothing is revoked.", markup=False)
    for key in state["revoked"]:
        stdout.print(key, markup=False, highlight=False)
