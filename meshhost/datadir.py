"""Where a host keeps its state, and how the CLI finds a running host.

One directory per host, readable by its owner only: every file in it is
created 0600 and every directory 0700, and a host refuses to start in a
data dir that other users can read (:func:`check_private`)::

    <data dir>/
      host.seed         the host's N... seed (0600), made on first start
      lattice.secret    the lattice secret (0600), when given by file or made by `lattice new`
      lattice.admin.nk  the admin operator key `lattice new --install` made (0600)
      control.sock      control socket of the running host (0600)
      modules/          compiled-module cache, keyed by module hash
      kv/               key-value provider databases
      directory/        persisted links, config and manifests
      workers/K/        the data dir of worker K of `up --processes N` (same layout)

Default: ``$MESHHOST_DATA_DIR``, else ``$XDG_DATA_HOME/meshhost/<lattice>``,
else ``~/.local/share/meshhost/<lattice>``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from meshhost.errors import InvalidLatticeName

__all__ = [
    "CONTROL_SOCKET",
    "admin_key_path",
    "check_lattice_name",
    "check_private",
    "default_data_dir",
    "make_private_dir",
    "replace_atomically",
    "write_private",
]

CONTROL_SOCKET = "control.sock"
HOST_SEED = "host.seed"
LATTICE_SECRET = "lattice.secret"


def admin_key_path(secret_path: Path) -> Path:
    """Where `lattice new` keeps the admin operator seed made with the secret at
    ``secret_path``: beside it, ``lattice.secret`` -> ``lattice.admin.nk``."""
    return secret_path.with_name(secret_path.stem + ".admin.nk")


_LATTICE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
LATTICE_NAME_RULE = (
    "1 to 64 ASCII letters, digits, '-', '_' or '.', not starting with '.' "
    "(e.g. default, prod-eu.1)"
)


def check_lattice_name(name: object, source: str = "lattice name") -> str:
    """Return ``name`` when it is a safe lattice name; raise InvalidLatticeName otherwise.

    The name becomes a directory (``~/.local/share/meshhost/<lattice>``), so only
    a conservative charset passes: no ``/``, no ``..``, no leading ``.``, nothing
    a shell or file system treats specially.
    """
    if not isinstance(name, str) or _LATTICE_NAME.fullmatch(name) is None:
        shown = repr(name) if not isinstance(name, str) else repr(name[:80])
        raise InvalidLatticeName(
            f"{source} {shown} is not allowed: a lattice name is {LATTICE_NAME_RULE}"
        )
    return name


def default_data_dir(lattice: str, environ: dict[str, str] | None = None) -> Path:
    """The data directory a host of ``lattice`` uses when none is given.

    Raises InvalidLatticeName for a name that is not safe as a path component.
    """
    check_lattice_name(lattice)
    env = os.environ if environ is None else environ
    if env.get("MESHHOST_DATA_DIR"):
        return Path(env["MESHHOST_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "meshhost" / lattice


def make_private_dir(path: Path) -> None:
    """``mkdir -p`` whose every new directory is 0700 (``Path.mkdir`` gives the
    parents it makes the umask's mode, usually 0755).  Raises OSError."""
    missing = []
    for parent in (path, *path.parents):
        if parent.is_dir():
            break
        if os.path.lexists(parent):  # a file where a directory should be: as Path.mkdir says
            code, kind = (
                (errno.EEXIST, FileExistsError)
                if parent == path
                else (errno.ENOTDIR, NotADirectoryError)
            )
            raise kind(code, os.strerror(code), str(path))
        missing.append(parent)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if directory.is_dir():
                continue  # made meanwhile by another thread
            raise  # a file sits there
        os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask


def check_private(data_dir: Path) -> None:
    """Raise DataDirNotPrivate when other users may read or enter ``data_dir``, or
    it belongs to another user.

    It holds the host's key and the lattice secret; its files are 0600 only
    since this version, so an older data dir may hold readable ones too.
    """
    from meshhost.errors import DataDirNotPrivate

    info = data_dir.stat()
    mode = info.st_mode & 0o777
    if info.st_uid != os.geteuid():
        # Its owner can replace what is in it (a host key or secret of its own
        # choosing, a socket where the CLI expects control.sock), whatever the mode.
        raise DataDirNotPrivate(
            f"data dir {data_dir} belongs to uid {info.st_uid}, not to this user (uid "
            f"{os.geteuid()}); its owner could replace this host's key, the lattice secret "
            "and the control socket. Use a data dir of your own (--data-dir)"
        )
    if mode & 0o077:
        raise DataDirNotPrivate(
            f"data dir {data_dir} can be read by other users (mode {mode:04o}); it holds "
            f"this host's key and the lattice secret. Make it private: chmod 700 {data_dir}"
        )


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
    replace_atomically(path, [text.encode()], mode=0o600)


def replace_atomically(path: Path, chunks: Iterable[bytes], *, mode: int = 0o600) -> None:
    """Write ``chunks`` to a temporary file beside ``path``, fsync it, rename it over ``path``.

    A crash leaves the old file or the new one, never a torn one; readers
    never see a half-written file.  Raises OSError; the temporary file is
    then removed.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
