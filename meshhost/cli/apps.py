"""Application commands: ``meshhost apply FILE`` and ``meshhost app list|get|status|delete|diff``.

The manifest file is read and validated here, on the machine that has it
(``load_manifest`` with the actor's claims inspected), so a mistake is
reported with its ``file:line:column: field: problem`` before any host is
asked. The host receives the canonical manifest and the actor modules
(``modules: {sha256: bytes}``) and validates both again
(``meshhost.apps.ops``). Exit codes: 0 ok, 1 invalid manifest, unknown
application or no host, 2 usage.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import click
from rich.markup import escape

from meshhost.apps.manifest import Manifest, actor_id_from_claims, load_manifest
from meshhost.apps.ops import describe_replaced_link
from meshhost.cli import main
from meshhost.cli.hostclient import host_options, host_request
from meshhost.cli.output import (
    PlainTable,
    emit_json,
    fail,
    fails_cleanly,
    json_option,
    stderr,
    stdout,
)
from meshhost.control.api import MAX_MESSAGE_BYTES
from meshhost.errors import LocalProtocolError, ManifestError
from meshhost.identity import short_id

REQUEST_OVERHEAD_BYTES = 256 * 1024
"""Room left in one control message for the manifest (at most 192 KiB) and framing."""

manifest_file = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)


def _load(path: Path) -> Manifest:
    manifest = load_manifest(path, inspect_image=actor_id_from_claims)
    for warning in manifest.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    return manifest


def _image_path(image: str) -> Path:
    """The local path of a canonical ``file://`` image URL."""
    return Path(unquote(urlparse(image).path))


def _modules(manifest: Manifest) -> dict[str, bytes]:
    """``{sha256: module bytes}`` of every actor, read again and checked against the parse."""
    modules: dict[str, bytes] = {}
    for component in manifest.actors:
        if component.sha256 is None or component.sha256 in modules:
            continue
        path = _image_path(component.image)
        try:
            module = path.read_bytes()
        except OSError as exc:
            raise ManifestError(
                f"cannot read image {str(path)!r}: {exc.strerror or exc}",
                field=f"components.{component.name}.image",
            ) from None
        if hashlib.sha256(module).hexdigest() != component.sha256:
            raise ManifestError(
                f"image {str(path)!r} changed while it was being applied; apply again",
                field=f"components.{component.name}.image",
            )
        modules[component.sha256] = module
    total = sum(len(m) for m in modules.values())
    if total > MAX_MESSAGE_BYTES - REQUEST_OVERHEAD_BYTES:
        raise LocalProtocolError(
            f"the actor modules take {total} bytes; one control request carries at most "
            f"{MAX_MESSAGE_BYTES - REQUEST_OVERHEAD_BYTES} (split the application)"
        )
    return modules


@main.command()
@manifest_file
@click.option(
    "--force",
    is_flag=True,
    help="Replace links made by hand (`link put`) that the manifest's links overwrite.",
)
@host_options
@json_option
@fails_cleanly
def apply(file: Path, force: bool, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Store the application in manifest FILE and deploy it across the lattice.

    Every host then runs its share. Applying the same name and version again
    changes nothing; changed content needs a new version. A link of the
    manifest that would replace a link made by hand is refused unless --force
    is given (`meshhost app diff FILE` lists them). Exits 1 when part of the
    application cannot be placed on any live host (it stays deployed, and is
    placed when a fitting host joins).
    """
    manifest = _load(file)
    request: dict[str, Any] = {
        "manifest": manifest.canonical(),
        "source": str(file),
        "modules": _modules(manifest),
    }
    if force:
        request["force"] = True
    result = host_request(data_dir, lattice, "apply", **request)
    problems = result.get("problems", [])
    if as_json:
        emit_json({**result, "warnings": list(manifest.warnings)})
    else:
        name, version = result["app"], result["version"]
        if not result["changed"]:
            message = f"{name} {version} is already deployed; nothing changed"
        elif result.get("previous") in (None, version):
            message = f"deployed {name} {version}"
        else:
            message = f"deployed {name} {version} (replaces {result['previous']})"
        stdout.print(escape(message), highlight=False)
        for link in result.get("replaced_links", []):
            stdout.print(
                f"replaced link made by hand: {escape(describe_replaced_link(link))}",
                highlight=False,
            )
    if problems:
        fail(
            f"{result['app']} {result['version']} is deployed, but cannot be placed: "
            + "; ".join(problems)
        )


@main.group("app")
def app_group() -> None:
    """Applications: list, show, check and remove deployed manifests."""


@app_group.command("list")
@host_options
@json_option
@fails_cleanly
def app_list(data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """List stored and deployed applications with their state."""
    rows: list[dict[str, Any]] = host_request(data_dir, lattice, "app_list")
    if as_json:
        emit_json(rows)
        return
    if not rows:
        stdout.print("no applications; deploy one with `meshhost apply FILE`", highlight=False)
        return
    table = PlainTable(title=f"{len(rows)} application(s)")
    for column in ("NAME", "DEPLOYED", "STATE", "RUNNING", "VERSIONS"):
        table.add_column(column)
    for row in rows:
        deployed = row["deployed"] is not None
        table.add_row(
            row["name"],
            row["deployed"] or "-",
            row["state"] or "not deployed",
            f"{row['running']}/{row['desired']}" if deployed else "-",
            ", ".join(row["versions"]),
        )
    stdout.print(table)
    for row in rows:
        for problem in row["problems"]:
            stdout.print(f"app {row['name']}, {escape(problem)}", highlight=False)


@app_group.command("get")
@click.argument("name")
@click.option("--version", help="A stored version (default: the deployed one).")
@host_options
@json_option
@fails_cleanly
def app_get(
    name: str, version: str | None, data_dir: Path | None, lattice: str, as_json: bool
) -> None:
    """Print the manifest of application NAME as YAML."""
    result = host_request(data_dir, lattice, "app_get", name=name, version=version)
    if as_json:
        emit_json(result)
        return
    note = "deployed" if result["deployed"] else "stored, not deployed"
    click.echo(f"# {result['app']} {result['version']} ({note}), digest {result['digest'][:16]}")
    click.echo(result["yaml"], nl=False)


@app_group.command("status")
@click.argument("name")
@host_options
@json_option
@fails_cleanly
def app_status(name: str, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Desired vs running instances of NAME, per component and host.

    Exits 1 when the application is failed: part of it cannot be placed on
    any live host (the reasons are printed); 0 otherwise.
    """
    result = host_request(data_dir, lattice, "app_status", name=name)
    if as_json:
        emit_json(result)
        if result["state"] == "failed":
            sys.exit(1)
        return
    colour = {"deployed": "green", "reconciling": "yellow", "failed": "red"}.get(
        result["state"], "white"
    )
    stdout.print(
        f"{result['app']} {escape(result['version'])}  [{colour}]{result['state']}[/]  "
        f"({result['hosts']} live host(s))",
        highlight=False,
    )
    if result["rows"]:
        table = PlainTable()
        for column in ("COMPONENT", "HOST", "DESIRED", "RUNNING", "STATE"):
            table.add_column(column)
        for row in result["rows"]:
            table.add_row(
                row["component"],
                short_id(row["host"]),
                str(row["desired"]),
                str(row["running"]),
                row["state"],
            )
        stdout.print(table)
    else:
        stdout.print("no instance is placed or running", highlight=False)
    for total in result["components"]:
        line = f"{total['component']}: {total['running']} of {total['desired']} running"
        asked = total.get("asked")
        if asked is not None and asked != total["desired"]:
            line += f" ({asked} asked, {asked - total['desired']} cannot be placed)"
        stdout.print(escape(line), highlight=False)
    for problem in result["problems"]:
        stdout.print(f"[red]problem:[/] {escape(problem)}", highlight=False)
    if result["state"] == "failed":
        fail(
            f"{result['app']} {result['version']} cannot be placed: "
            + "; ".join(result["problems"])
        )


@app_group.command("delete")
@click.argument("name")
@click.option("--version", help="Delete only this stored version.")
@host_options
@json_option
@fails_cleanly
def app_delete(
    name: str, version: str | None, data_dir: Path | None, lattice: str, as_json: bool
) -> None:
    """Undeploy application NAME and forget its stored versions (or one, with --version)."""
    result = host_request(data_dir, lattice, "app_delete", name=name, version=version)
    if as_json:
        emit_json(result)
        return
    versions = ", ".join(result["deleted"]) or "none"
    message = f"deleted {result['app']} (versions: {versions})"
    if result["undeployed"]:
        message += "; its instances stop as hosts reconcile"
    stdout.print(escape(message), highlight=False)


@app_group.command("diff")
@manifest_file
@host_options
@json_option
@fails_cleanly
def app_diff(file: Path, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """Show what applying FILE would change, field by field and host by host.

    Nothing is written. Exits 0 whether or not there are changes.
    """
    manifest = _load(file)
    result = host_request(
        data_dir, lattice, "app_diff", manifest=manifest.canonical(), source=str(file)
    )
    if as_json:
        emit_json(result)
        return
    deployed = result["deployed"]
    stdout.print(
        escape(f"{result['app']}: {deployed or 'not deployed'} -> {result['version']}"),
        highlight=False,
    )
    if result["conflict"]:
        stdout.print(
            f"[red]apply would be refused:[/] {escape(result['conflict'])}", highlight=False
        )
    if not result["changes"] and not result["instances"]:
        stdout.print("no changes", highlight=False)
    if result["changes"]:
        fields = PlainTable(title="fields")
        for column in ("", "FIELD", "OLD", "NEW"):
            fields.add_column(column, overflow="fold")  # paths and values stay whole
        sign = {"added": "+", "removed": "-", "changed": "~"}
        for change in result["changes"]:
            fields.add_row(
                sign[change["kind"]],
                change["path"],  # table cells are printed as they are, never as markup
                "" if change["old"] is None else change["old"],
                "" if change["new"] is None else change["new"],
            )
        stdout.print(fields)
    if result["instances"]:
        hosts = PlainTable(title="instances")
        for column in ("HOST", "COMPONENT@MODULE", "NOW", "AFTER", ""):
            hosts.add_column(column)
        for item in result["instances"]:
            delta = item["new"] - item["old"]
            hosts.add_row(
                short_id(item["host"]),
                item["key"].split("/", 1)[-1],
                str(item["old"]),
                str(item["new"]),
                f"start {delta}" if delta > 0 else f"stop {-delta}",
            )
        stdout.print(hosts)
    if result.get("replaced_links"):
        links = PlainTable(title="links made by hand that apply replaces (only with --force)")
        for column in ("ACTOR", "CONTRACT", "NAME", "OLD VALUES", "NEW VALUES"):
            links.add_column(column, overflow="fold", no_wrap=column in ("CONTRACT", "NAME"))
        for link in result["replaced_links"]:
            links.add_row(
                short_id(link["actor"]),
                link["contract"],
                link["link_name"],
                ", ".join(f"{k}={v}" for k, v in sorted(link["old"].items())),
                ", ".join(f"{k}={v}" for k, v in sorted(link["new"].items())),
            )
        stdout.print(links)
    for problem in result["problems"]:
        stdout.print(f"[red]problem:[/] {escape(problem)}", highlight=False)
