"""``meshhost lattice new``: make a lattice secret and its admin operator key.

The ``lattice`` group is defined here; :mod:`meshhost.cli.rotate` adds
``lattice rotate`` and ``lattice keyring`` to it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from meshhost.cli import main
from meshhost.cli.output import emit_json, fails_cleanly, json_option, lattice_name_option, stdout
from meshhost.datadir import admin_key_path, default_data_dir, make_private_dir, write_private
from meshhost.identity import nkeys
from meshhost.identity.keyring import encode_secret, generate_secret, mdns_tag
from meshhost.identity.operators import ADMIN_LINE


@main.group("lattice")
def lattice_group() -> None:
    """Create lattice secrets."""


@lattice_group.command("new")
@click.option(
    "--lattice",
    default="default",
    show_default=True,
    help="Lattice name.",
    callback=lattice_name_option,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the secret to this file (0600) instead of printing it.",
)
@click.option(
    "--install",
    is_flag=True,
    help="Also store it as the lattice secret of the local data dir (see `up --data-dir`).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data dir for --install (default: $XDG_DATA_HOME/meshhost/LATTICE).",
)
@json_option
@fails_cleanly
def lattice_new(
    lattice: str, out: Path | None, install: bool, data_dir: Path | None, as_json: bool
) -> None:
    """Make a new lattice secret (32 random bytes, shown as SL...).

    Every host of the lattice needs the same secret; give it to `meshhost up`
    with --secret-file or MESHHOST_LATTICE_SECRET.
    """
    secret = generate_secret()
    admin = nkeys.generate(nkeys.Prefix.OPERATOR, os.urandom)
    text = encode_secret(secret)
    # The admin's public key rides in the secret file, so every host given the file
    # trusts it; its seed stays beside the file (0600) for the local CLI.
    file_text = f"{text}\n{ADMIN_LINE}{admin.public_key}\n"
    targets = []
    if out is not None:
        targets.append(out)
    if install:
        targets.append((data_dir or default_data_dir(lattice)) / "lattice.secret")
    for target in targets:
        for path in (target, admin_key_path(target)):
            if path.exists():
                raise click.BadParameter(f"{path} exists; refusing to overwrite a lattice secret")
    written: list[str] = []
    if install:
        # The data dir `up` will use: private from the start, or `up` refuses it.
        make_private_dir(targets[-1].parent)
    for target in targets:
        write_private(target, file_text)
        write_private(admin_key_path(target), admin.encoded_seed + "\n")
        written.append(str(target))
    info: dict[str, Any] = {
        "lattice": lattice,
        "mdns_tag": mdns_tag(secret, lattice),
        "admin_key": admin.public_key,
    }
    if out is None:
        info["secret"] = text
    if not targets:
        info["admin_seed"] = admin.encoded_seed
    if written:
        info["written_to"] = written
        info["admin_key_files"] = [str(admin_key_path(t)) for t in targets]
    if as_json:
        emit_json(info)
        return
    if out is None:
        stdout.print(f"Lattice secret: {text}", highlight=False)
        stdout.print("[dim]Every host of the lattice needs it; keep it secret.[/]")
    stdout.print(f"Admin key: {admin.public_key}", highlight=False)
    if not targets:
        stdout.print(f"Admin seed: {admin.encoded_seed}", highlight=False)
        stdout.print(
            f"[dim]Put the line `{ADMIN_LINE}{admin.public_key}` under the secret in "
            "every host's secret file, and the seed in a 0600 file for "
            "--operator-key.[/]",
            highlight=False,
        )
    for target in targets:
        stdout.print(f"Secret written to {target}", highlight=False, markup=False)
        stdout.print(
            f"Admin operator key written to {admin_key_path(target)} (the CLI "
            "uses it by itself; keep it where only admins can read it)",
            highlight=False,
            markup=False,
        )
