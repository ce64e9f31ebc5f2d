"""Actor modules kept by content: ``<data dir>/modules/blobs/<sha256>.wasm``.

A host keeps every module it was asked to run, so it can scale or restart
an actor without the file it came from, and so peers that must start the
same actor (a manifest placed an instance on them) can fetch it by digest
(peer op ``module_get``, transport channel 5).  Files are written atomically; a file whose
bytes no longer match its name is ignored and removed.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from meshhost.datadir import make_private_dir, replace_atomically
from meshhost.errors import ConfigError, ModuleStoreFailed

__all__ = ["ModuleStore", "sha256_hex"]

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModuleStore:
    """Content-addressed module files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        # fullmatch: "$" would also match before a final newline, and a peer's
        # digest names a file. The message quotes at most 80 characters of it.
        if not _DIGEST.fullmatch(digest):
            shown = repr(digest[:80]) + (
                f" … ({len(digest)} characters)" if len(digest) > 80 else ""
            )
            raise ConfigError(f"module digest must be 64 lower-case hex digits, got {shown}")
        return self.root / f"{digest}.wasm"

    def put(self, module: bytes) -> str:
        """Store ``module``; returns its SHA-256 (hex).  Storing twice is a no-op.

        Raises ModuleStoreFailed when the disk refuses (full, read-only, ...).
        """
        digest = sha256_hex(module)
        path = self._path(digest)
        if path.exists():
            return digest
        try:
            make_private_dir(self.root)
            replace_atomically(path, [module])
        except OSError as exc:
            raise ModuleStoreFailed(
                f"cannot store module {digest[:16]}… in {self.root}: {exc.strerror or exc}"
            ) from None
        return digest

    def get(self, digest: str) -> bytes | None:
        """The module with that digest, or None when absent (or corrupt: then removed).

        Raises ModuleStoreFailed when its file exists but cannot be read.
        """
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ModuleStoreFailed(
                f"cannot read module file {path}: {exc.strerror or exc}; "
                "fix it (permissions, disk) or move it aside"
            ) from None
        if sha256_hex(data) != digest:
            log.warning(
                "module file %s is damaged (its bytes do not hash to its name); "
                "removed it: a peer that runs the actor or `meshhost apply` with the "
                "image can supply it again",
                path,
            )
            path.unlink(missing_ok=True)
            return None
        return data
