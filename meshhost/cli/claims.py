"""``meshhost claims``: sign Wasm actors with wascap claims and inspect them.

Seeds are read from files or environment variables, never from the command
line, and never printed.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from meshhost.cli import main
from meshhost.cli.output import (
    PlainTable,
    emit_json,
    fails_cleanly,
    json_option,
    read_secret,
    stdout,
)
from meshhost.errors import ClaimsError, NkeyError, WasmFormatError
from meshhost.identity import claims as wascap
from meshhost.identity import nkeys
from meshhost.identity.nkeys import KeyPair, Prefix

ISSUER_ENV = "MESHHOST_ISSUER_SEED"
SUBJECT_ENV = "MESHHOST_SUBJECT_SEED"
# Actors are a few KiB to tens of MiB; refuse to slurp anything absurd.
MAX_MODULE_BYTES = 512 * 1024 * 1024
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*", re.IGNORECASE)


class Duration(click.ParamType[int]):
    """``30d``, ``12h``, ``15m``, ``90s``, ``2w``; a bare number means days, as in wash."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _DURATION.fullmatch(str(value))
        if not match:
            self.fail(f"{value!r} is not a duration; use e.g. 30d, 12h, 15m or 90s", param, ctx)
        number, unit = int(match.group(1)), (match.group(2) or "d").lower()
        return number * _UNITS[unit]


def _read_module(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_MODULE_BYTES:
            raise click.BadParameter(f"{path} is {size} bytes, larger than any actor should be")
        return path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read module {str(path)!r}: {exc.strerror}") from None


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise click.BadParameter(f"{path} exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise click.BadParameter(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _when(stamp: int | None, now: float, missing: str) -> str:
    if stamp is None:
        return missing
    try:
        absolute = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        absolute = f"{stamp} (Unix seconds)"
    delta = stamp - now
    span = abs(delta)
    for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if span >= seconds or unit == "second":
            count = int(span // seconds)
            relative = f"{count} {unit}{'' if count == 1 else 's'}"
            break
    return f"{absolute} ({'in ' + relative if delta > 0 else relative + ' ago'})"


@main.group("claims")
def claims_group() -> None:
    """Sign Wasm actors with wascap claims (wasmCloud-compatible) and inspect them."""


def _load_seed(value: str | None, env_var: str, what: str, kind: Prefix | None) -> KeyPair:
    """The key pair in a seed file or ``env_var``; an NkeyError names which input it is."""
    try:
        return nkeys.from_seed(read_secret(value, env_var, what), kind)
    except NkeyError as exc:
        raise type(exc)(f"{what} ({value or '$' + env_var}): {exc}") from None


@claims_group.command("sign")
@click.argument("module", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--issuer",
    "issuer_file",
    metavar="SEEDFILE",
    help=f"File holding the issuer account seed (SA...). Default: ${ISSUER_ENV}.",
)
@click.option(
    "--subject",
    "subject_file",
    metavar="SEEDFILE",
    help="File holding the actor's module seed (SM...). Default: a new key is generated.",
)
@click.option("--name", "-n", required=True, help="Human-friendly actor name.")
@click.option(
    "--cap", "-c", "caps", multiple=True, help="Capability contract id, e.g. wasmcloud:keyvalue."
)
@click.option("--tag", "-t", "tags", multiple=True, help="Free-form tag (repeatable).")
@click.option("--rev", "-r", type=int, help="Revision number (an integer).")
@click.option("--ver", "-v", help="Human-readable version, e.g. 0.1.0.")
@click.option("--call-alias", "-a", help="Alias other actors can call this one by.")
@click.option("--provider", is_flag=True, help="Mark the module as a capability provider.")
@click.option("--expires-in", type=Duration(), help="Claims expire after this (30d, 12h, ...).")
@click.option("--not-before", type=Duration(), help="Claims become valid after this (1h, ...).")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the signed module. Default: MODULE_s.wasm next to MODULE.",
)
@click.option(
    "--save-subject",
    is_flag=True,
    help="When a subject key is generated, save its seed next to the output as NAME_module.nk.",
)
@json_option
@fails_cleanly
def sign_cmd(
    module: Path,
    issuer_file: str | None,
    subject_file: str | None,
    name: str,
    caps: tuple[str, ...],
    tags: tuple[str, ...],
    rev: int | None,
    ver: str | None,
    call_alias: str | None,
    provider: bool,
    expires_in: int | None,
    not_before: int | None,
    out: Path | None,
    save_subject: bool,
    as_json: bool,
) -> None:
    """Sign MODULE: embed wascap claims in a `wasmcloud_jwt` custom section.

    Re-signing replaces existing claims. The output verifies in wasmCloud and
    in meshhost. Seeds are read from files or environment variables only.
    """
    data = _read_module(module)
    issuer = _load_seed(issuer_file, ISSUER_ENV, "issuer seed", Prefix.ACCOUNT)
    generated = False
    if subject_file or os.environ.get(SUBJECT_ENV, "").strip():
        subject = _load_seed(subject_file, SUBJECT_ENV, "subject seed", None)
    else:
        # wash also gives provider modules an M... subject.
        subject = nkeys.generate(Prefix.MODULE, os.urandom)
        generated = True
    target = out or module.with_name(f"{module.stem}_s.wasm")
    signed = wascap.sign_module(
        data,
        issuer=issuer,
        subject=subject,
        name=name,
        caps=caps,
        tags=tags,
        rev=rev,
        ver=ver,
        call_alias=call_alias,
        provider=provider,
        expires_in_s=expires_in,
        not_before_s=not_before,
        now=time.time(),
    )
    seed_path: Path | None = None
    if generated and save_subject:
        seed_path = target.with_name(f"{target.stem}_module.nk")
        _write_new(seed_path, (subject.encoded_seed + "\n").encode(), 0o600)
    try:
        target.write_bytes(signed)
    except OSError as exc:
        raise click.BadParameter(f"cannot write {target}: {exc.strerror}") from None
    extracted = wascap.extract_claims(signed)
    info: dict[str, Any] = {
        "module": str(module),
        "output": str(target),
        "subject": extracted.subject,
        "issuer": extracted.issuer,
        "module_hash": extracted.module_hash,
        "subject_generated": generated,
        "subject_seed_file": None if seed_path is None else str(seed_path),
    }
    if as_json:
        emit_json(info)
        return
    stdout.print(f"Signed {module} -> {target}", highlight=False, markup=False)
    stdout.print(f"  subject (actor id): {extracted.subject}", highlight=False)
    stdout.print(f"  issuer:             {extracted.issuer}", highlight=False)
    stdout.print(f"  module hash:        {extracted.module_hash}", highlight=False)
    if seed_path is not None:
        stdout.print(
            f"  subject seed saved to {seed_path} (keep it secret)", highlight=False, markup=False
        )
    elif generated:
        stdout.print(
            "  [dim]a new subject key was generated and not saved; re-signing with a new key "
            "changes the actor id (pass --save-subject to keep it)[/]"
        )


def _status(
    data: bytes, now: float, allowed: tuple[str, ...], leeway_s: float, trust_legacy: bool
) -> tuple[wascap.ActorClaims | None, str | None, str | None]:
    """Return (claims or None, error class name or None, reason or None)."""
    try:
        found = wascap.extract_claims(data)
    except (ClaimsError, WasmFormatError) as exc:
        return None, type(exc).__name__, str(exc)
    try:
        wascap.verify_module(
            data,
            now=now,
            allowed_issuers=allowed,
            leeway_s=leeway_s,
            trust_legacy_hash=trust_legacy,
        )
    except (ClaimsError, WasmFormatError) as exc:
        return found, type(exc).__name__, str(exc)
    return found, None, None


def _computed_hash(data: bytes) -> str | None:
    try:
        return wascap.module_hash(data)
    except WasmFormatError:
        return None


@claims_group.command("inspect")
@click.argument("module", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--allowed-issuer",
    "allowed",
    multiple=True,
    metavar="A...",
    help="Treat only these issuers as valid (repeatable). Default: any issuer.",
)
@click.option(
    "--leeway", type=float, default=0.0, show_default=True, help="Clock skew allowed, seconds."
)
@click.option(
    "--trust-legacy-hash",
    is_flag=True,
    help="Accept pre-revision-3 tokens whose module hash cannot be recomputed (as wasmCloud does).",
)
@json_option
@fails_cleanly
def inspect_cmd(
    module: Path,
    allowed: tuple[str, ...],
    leeway: float,
    trust_legacy_hash: bool,
    as_json: bool,
) -> None:
    """Show the claims embedded in MODULE and whether they are VALID.

    Exit code 0 when valid, 1 when unsigned, malformed, tampered, expired,
    not yet valid, badly signed or from an issuer not allowed.
    """
    data = _read_module(module)
    now = time.time()
    found, error, reason = _status(data, now, allowed, leeway, trust_legacy_hash)
    valid = error is None
    if as_json:
        emit_json(
            {
                "module": str(module),
                "valid": valid,
                "status": "VALID" if valid else "INVALID",
                "error": error,
                "reason": reason,
                "claims": None if found is None else found.to_json(),
                "computed_hash": _computed_hash(data),
                "issued_human": None if found is None else _when(found.issued_at, now, ""),
                "expires_human": None if found is None else _when(found.expires, now, "never"),
                "not_before_human": (
                    None if found is None else _when(found.not_before, now, "immediately")
                ),
            }
        )
        if not valid:
            raise SystemExit(1)
        return
    if found is not None:
        table = PlainTable(title=f"{found.name or 'Anonymous'} - claims", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        rows = [
            ("Subject (actor)", found.subject),
            ("Issuer (account)", found.issuer),
            ("Name", found.name or "(none)"),
            ("Capabilities", "\n".join(found.caps) or "(none)"),
            ("Tags", ", ".join(found.tags) or "(none)"),
            ("Revision", "(none)" if found.rev is None else str(found.rev)),
            ("Version", found.ver or "(none)"),
            ("Call alias", found.call_alias or "(not set)"),
            ("Provider", "yes" if found.provider else "no"),
            ("Module hash", found.module_hash or "(empty)"),
            ("Issued", _when(found.issued_at, now, "(unknown)")),
            ("Expires", _when(found.expires, now, "never")),
            ("Can be used", _when(found.not_before, now, "immediately")),
            (
                "wascap revision",
                "(unset, legacy)" if found.revision is None else str(found.revision),
            ),
            ("Token id (jti)", found.jti),
        ]
        for field, value in rows:
            table.add_row(field, value)
        stdout.print(table)
    if valid:
        stdout.print("[bold green]VALID[/]: signature, module hash, issuer and dates check out")
        return
    stdout.print(
        f"[bold red]INVALID[/] ({escape(str(error))}): {escape(str(reason))}", highlight=False
    )
    if error == "ClaimsHashMismatch":
        stdout.print(
            f"  computed module hash: {_computed_hash(data)}", highlight=False, markup=False
        )
    raise SystemExit(1)
