"""How a command reaches the local host: ``--data-dir``/``--lattice``/``--operator-key``,
a control client, and the operator signature on ops that need a role.

:func:`host_options` adds the three options; :func:`host_request` sends one
request (signed when :func:`~meshhost.control.authz.required_role` says the
op needs a role) and :func:`host_client` gives a client that signs as it
goes. The operator key is ``--operator-key``, then ``$MESHHOST_OPERATOR_KEY``,
then the admin key ``lattice new`` stored beside the host's secret
(``proto/spec/operators.md``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from meshhost.cli.output import lattice_name_option, stderr
from meshhost.control.api import ControlClient, request_blocking, request_blocking_signed
from meshhost.control.authz import required_role
from meshhost.datadir import CONTROL_SOCKET, default_data_dir
from meshhost.errors import (
    ControlError,
    DecodeError,
    ErrorCode,
    LocalProtocolError,
    MeshError,
    NotAuthorized,
)
from meshhost.identity import nkeys, short_id
from meshhost.identity.operators import NONCE_BYTES, check_operator_key, sign_entry, sign_request

F = TypeVar("F", bound=Callable[..., Any])


OPERATOR_KEY_ENV = "MESHHOST_OPERATOR_KEY"
_operator_key_file: list[Path] = []
"""``--operator-key`` of the running command (a click callback fills it)."""


def _remember_operator_key(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    _operator_key_file[:] = [] if value is None else [value]  # per command, not per process


def host_options(func: F) -> F:
    """--data-dir / --lattice: which local host to talk to; --operator-key: who signs."""
    func = click.option(
        "--operator-key",
        type=click.Path(dir_okay=False, path_type=Path),
        expose_value=False,
        callback=_remember_operator_key,
        help=f"Operator seed file signing control ops (default: ${OPERATOR_KEY_ENV}, then "
        "the admin key `lattice new` stored beside the host's lattice secret).",
    )(func)
    func = click.option(
        "--lattice",
        default="default",
        envvar="MESHHOST_LATTICE",
        show_default=True,
        callback=lattice_name_option,
        help="Lattice name; picks the default data dir.",
    )(func)
    func = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="MESHHOST_DATA_DIR",
        help="Data dir of the local host (default: per lattice, see `meshhost up --help`).",
    )(func)
    return func


def host_client(data_dir: Path | None, lattice: str) -> ControlClient:
    """A client of the local host that signs the ops needing a role (`lattice rotate`,
    ...) with the operator key, asking the host what to sign for on first need."""
    directory = data_dir if data_dir is not None else default_data_dir(lattice)
    path = directory / CONTROL_SOCKET
    client = ControlClient(path)
    signers: list[Signer] = []

    def signer() -> Signer:
        if not signers:
            signers.append(Signer.for_host(path))  # one quick blocking request, once
        return signers[0]

    def sign(op: str, args: Mapping[str, Any]) -> dict[str, Any] | None:
        if required_role(op) is None:
            return None
        return signer().sign(op, args)

    client.sign = sign
    client.sign_entries = lambda entries: signer().sign_entries(entries)
    return client


def host_request(data_dir: Path | None, lattice: str, op: str, **args: Any) -> Any:
    directory = data_dir if data_dir is not None else default_data_dir(lattice)
    path = directory / CONTROL_SOCKET
    if required_role(op) is None:
        return request_blocking(path, op, **args)
    return request_blocking_signed(path, op, Signer.for_host(path), **args)


def load_operator_key(path: Path) -> nkeys.KeyPair:
    """The operator key pair in a seed file (``SO…`` or ``SU…``; ``#`` lines ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LocalProtocolError(f"cannot read operator key {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LocalProtocolError(f"{path} is not an operator seed file (not text)") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise LocalProtocolError(
            f"{path} holds no operator seed; make one with `meshhost keys gen operator`"
        )
    try:
        pair = nkeys.from_seed(lines[0])
        check_operator_key(pair.public_key)
    except MeshError as exc:
        raise LocalProtocolError(f"{path}: {exc}") from None
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            from rich.markup import escape

            # As ssh says of a private key: whoever else can read it can sign as this
            # operator. A warning, not a refusal: the command is the owner's own.
            stderr.print(
                f"[yellow]warning:[/] operator key {escape(str(path))} can be read "
                f"by other users, who could sign as {short_id(pair.public_key)}; "
                f"chmod 600 {escape(str(path))}",
                highlight=False,
            )
    return pair


def operator_key(info: Mapping[str, Any]) -> nkeys.KeyPair | None:
    """The key the CLI signs with: --operator-key, $MESHHOST_OPERATOR_KEY, or the admin key
    beside the host's secret file (``info`` is the host's ``auth_info``) when readable."""
    if _operator_key_file:
        return load_operator_key(_operator_key_file[0])
    if os.environ.get(OPERATOR_KEY_ENV):
        return load_operator_key(Path(os.environ[OPERATOR_KEY_ENV]))
    beside = info.get("admin_key_file")
    if isinstance(beside, str) and Path(beside).is_file() and os.access(beside, os.R_OK):
        return load_operator_key(Path(beside))
    return None


@dataclass(frozen=True, slots=True)
class Signer:
    """What the CLI signs control requests with for one host (proto/spec/operators.md)."""

    lattice: str
    pair: nkeys.KeyPair | None
    """None: nothing to sign with (or nothing needed: an open lattice)."""
    open: bool = False
    """The host's lattice has no admin at all (its secret names none)."""

    @classmethod
    def for_host(cls, path: Path) -> Signer:
        """Ask the host at control socket ``path`` what to sign for; load the key."""
        try:
            info = dict(request_blocking(path, "auth_info"))
        except ControlError as exc:
            if exc.code != ErrorCode.UNSUPPORTED:
                raise
            return cls("", None, True)  # a host from before operator keys: nothing to sign
        is_open = bool(info.get("open"))
        return cls(str(info.get("lattice", "")), None if is_open else operator_key(info), is_open)

    def sign(self, op: str, args: Mapping[str, Any]) -> dict[str, Any] | None:
        """The ``auth`` map of one request, or None when there is no key."""
        if self.pair is None:
            return None
        return sign_request(
            self.pair,
            self.lattice,
            op,
            args,
            ts_ms=int(time.time() * 1000),
            nonce=os.urandom(NONCE_BYTES),
        )

    def sign_entries(self, entries: list[Any]) -> list[Any]:
        """``entry_sigs`` for the directory entries a host asked us to sign."""
        return sign_entries(self.pair, self.lattice, entries)


def sign_entries(pair: nkeys.KeyPair | None, lattice: str, entries: list[Any]) -> list[Any]:
    """Sign each ``[ns, key, stamp, writer, value bytes or nil]`` a host sent with code
    ``sign`` (operators.md, "Signed entries"); raises NotAuthorized without a key."""
    if pair is None:
        raise NotAuthorized(
            "the host asks for its entries to be signed, and there is no "
            "operator key to sign them with (--operator-key)"
        )
    out = []
    for item in entries:
        if not (
            isinstance(item, list)
            and len(item) == 5
            and isinstance(item[0], str)
            and isinstance(item[1], str)
            and type(item[2]) is int
            and isinstance(item[3], str)
            and (item[4] is None or isinstance(item[4], bytes))
        ):
            raise DecodeError(
                "the host asked to sign an entry that is not [ns, key, stamp, writer, value]"
            )
        ns, key, stamp, writer, value = item
        out.append([ns, key, stamp, sign_entry(pair, lattice, ns, key, stamp, writer, value)])
    return out
