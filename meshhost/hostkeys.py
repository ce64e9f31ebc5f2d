"""The host's key and the lattice secrets on disk: load, create, rewrite.

``host.seed`` (the host's ``N…`` seed, made on first start) and the lattice
secret file (several secrets, the first primary; ``# admin O…`` comment
lines name bootstrap operators): see :mod:`meshhost.datadir` and
``proto/spec/keyring.md``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from meshhost.datadir import HOST_SEED, LATTICE_SECRET, write_private
from meshhost.errors import ConfigError, KeyringError, NkeyError
from meshhost.identity import nkeys
from meshhost.identity.keyring import Keyring, encode_secret, load_secrets, read_secret_file

__all__ = [
    "SECRET_FILE_HEADER",
    "load_identity",
    "load_keyring",
    "read_secret_text",
    "warn_if_others_can_read",
    "write_secret_file",
]

log = logging.getLogger(__name__)


def warn_if_others_can_read(path: Path) -> None:
    """Log a warning when the lattice secret file is readable by other users
    (copied with a default umask, say): anyone who reads it joins the lattice."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return  # loading it already said what is wrong
    if mode & 0o077:
        log.warning(
            "the lattice secret file %s can be read by other users (mode %04o); "
            "anyone who reads it joins the lattice. Make it private: chmod 600 %s",
            path,
            mode,
            path,
        )


def load_identity(data_dir: Path) -> nkeys.KeyPair:
    """The host key from ``data_dir/host.seed``; created (0600) on first start."""
    path = data_dir / HOST_SEED
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8").strip()
            return nkeys.from_seed(text, nkeys.Prefix.SERVER)
        except OSError as exc:
            raise ConfigError(f"cannot read host key {path}: {exc.strerror}") from None
        except (UnicodeDecodeError, NkeyError) as exc:
            problem = "it is not text" if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise ConfigError(
                f"host key {path} is damaged ({problem}); restore it from a backup to keep "
                "this host's id, or move it aside and a new key (a new host id) is made"
            ) from None
    pair = nkeys.generate(nkeys.Prefix.SERVER, os.urandom)
    write_private(path, pair.encoded_seed + "\n")
    return pair


SECRET_FILE_HEADER = (
    "# lattice secrets, the first is primary (rewritten by `meshhost lattice rotate`)"
)


def load_keyring(
    lattice: str, data_dir: Path, *, secret_file: Path | None = None, secret_text: str | None = None
) -> Keyring:
    """The lattice keyring: from ``secret_text``, else ``secret_file``, else the data dir.

    A file may hold several secrets (first = primary, see proto/spec/keyring.md).
    Raises ``LatticeSecretError`` for a malformed secret and ``KeyringError``
    when there is none at all.
    """
    if secret_text is not None:
        return Keyring.create(lattice, load_secrets(secret_text))
    path = secret_file if secret_file is not None else data_dir / LATTICE_SECRET
    try:
        return Keyring.create(lattice, read_secret_file(path))
    except FileNotFoundError:
        make = (
            f"meshhost lattice new --out {path}"
            if secret_file is not None
            else f"meshhost lattice new --install --data-dir {data_dir}"
        )
        raise KeyringError(
            f"no lattice secret: {path} does not exist. Create it with `{make}` "
            "(once, then copy it to every host), or pass --secret-file / set "
            "MESHHOST_LATTICE_SECRET"
        ) from None


def read_secret_text(path: Path | None) -> str:
    """The secret file's text for its ``# admin`` lines ('' when unreadable: the keyring
    loaded it a moment ago, so that is a race with an edit, not a missing file)."""
    try:
        return "" if path is None else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def write_secret_file(path: Path, secrets: Sequence[bytes]) -> None:
    """Write ``secrets`` (primary first) to the secret file at ``path`` (0600, atomically).

    Comment lines of the file (``#``, e.g. the ``# admin O...`` lines that
    name bootstrap operators) are kept, after the secrets.  Raises
    ``KeyringError`` naming the file when it cannot be written.
    """
    try:
        kept = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip().startswith("#") and line.strip() != SECRET_FILE_HEADER
        ]
    except (OSError, UnicodeDecodeError):
        kept = []  # nothing readable to keep; the write below says what is wrong
    text = SECRET_FILE_HEADER + "\n"
    text += "".join(encode_secret(s) + "\n" for s in secrets)
    text += "".join(line + "\n" for line in kept)
    try:
        write_private(path, text)
    except OSError as exc:
        raise KeyringError(
            f"cannot write lattice secret file {path}: {exc.strerror or exc}"
        ) from None
