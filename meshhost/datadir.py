"""Where a host keeps its state, and how the CLI finds a running host.

One directory per host::

    <data dir>/
      host.seed         the host's N... seed (0600), made on first start
      lattice.secret    the lattice secret (0600), when given by file or made by `lattice new`
      control.sock      control socket of the running host (0600)
      modules/          compiled-module cache, keyed by module hash
      kv/               key-value provider databases
      directory/        persisted links, config and manifests

Default: ``$MESHHOST_DATA_DIR``, else ``$XDG_DATA_HOME/meshhost/<lattice>``,
else ``~/.local/share/meshhost/<lattice>``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["CONTROL_SOCKET", "default_data_dir", "write_private"]

CONTROL_SOCKET = "control.sock"
HOST_SEED = "host.seed"
LATTICE_SECRET = "lattice.secret"


def default_data_dir(lattice: str, environ: dict[str, str] | None = None) -> Path:
    """The data directory a host of ``lattice`` uses when none is given."""
    env = os.environ if environ is None else environ
    if env.get("MESHHOST_DATA_DIR"):
        return Path(env["MESHHOST_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "meshhost" / lattice


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable only by its owner, atomically, making its directory.

    Raises OSError naming ``path``; NotADirectoryError when a file sits where
    one of its directories should be.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        for parent in (path.parent, *path.parent.parents):
            if os.path.lexists(parent) and not parent.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, f"{parent} is a file, not a directory", str(path)
                ) from None
        raise
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
