"""``meshhost keys``: make and inspect nkeys."""

from __future__ import annotations

import os
from pathlib import Path

import click

from meshhost.cli import main
from meshhost.cli.output import PlainTable, emit_json, fails_cleanly, json_option, stdout
from meshhost.identity import nkeys

KINDS = {p.name.lower(): p for p in nkeys.PUBLIC_PREFIXES}
ALIASES = {"host": "server", "actor": "module", "provider": "service", "issuer": "account"}
SHOWN = {"server": "host", "module": "actor", "service": "provider"}
"""The kind a key is reported as: meshhost's word for it (an N key is a host's)."""


def _kind(prefix: nkeys.Prefix) -> str:
    name = prefix.name.lower()
    return SHOWN.get(name, name)


@main.group()
def keys() -> None:
    """Generate and inspect ed25519 nkeys (host N, actor M, account A, ...)."""


@keys.command("gen")
@click.argument("kind", type=click.Choice(sorted([*KINDS, *ALIASES]), case_sensitive=False))
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the seed to this file (mode 0600) instead of printing it.",
)
@json_option
@fails_cleanly
def gen(kind: str, out: Path | None, as_json: bool) -> None:
    """Generate a key pair of KIND; prints the public key and the seed.

    With --out the seed goes only to the file, created with mode 0600.
    """
    prefix = KINDS[ALIASES.get(kind.lower(), kind.lower())]
    pair = nkeys.generate(prefix, os.urandom)
    if out is not None:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise click.BadParameter(f"{out} exists; refusing to overwrite a seed") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(pair.encoded_seed + "\n")
    info = {"kind": _kind(prefix), "public_key": pair.public_key}
    if out is None:
        info["seed"] = pair.encoded_seed
    else:
        info["seed_file"] = str(out)
    if as_json:
        emit_json(info)
        return
    stdout.print(f"Public key: {pair.public_key}", highlight=False)
    if out is None:
        stdout.print(f"Seed:       {pair.encoded_seed}", highlight=False)
        stdout.print("[dim]Keep the seed secret; it is the private key.[/]")
    else:
        stdout.print(f"Seed written to {out}", highlight=False, markup=False)


@keys.command("inspect")
@click.argument("key")
@json_option
@fails_cleanly
def inspect(key: str, as_json: bool) -> None:
    """Decode a public key or seed and say what it is.

    KEY may be a key, or @FILE to read it from a file. For a seed only the
    public key it derives is shown.
    """
    if key.startswith("@"):
        try:
            key = Path(key[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {key[1:]}: {exc.strerror}") from None
    key = key.strip()
    if key.startswith("S"):
        pair = nkeys.from_seed(key)
        info = {"type": "seed", "kind": _kind(pair.prefix), "public_key": pair.public_key}
    else:
        prefix, raw = nkeys.decode_public(key)
        info = {"type": "public", "kind": _kind(prefix), "public_key": key, "hex": raw.hex()}
    if as_json:
        emit_json(info)
        return
    table = PlainTable(show_header=False)
    for name, value in info.items():
        table.add_row(name, str(value))
    stdout.print(table)
