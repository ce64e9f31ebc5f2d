"""Actor modules kept by content: ``<data dir>/modules/blobs/<sha256>.wasm``.

A host keeps every module it was asked to run, so it can scale or restart
an actor without the file it came from, and so peers that must start the
same actor (a manifest placed an instance on them) can fetch it by digest
(control op ``module_get``).  Files are written atomically; a file whose
bytes no longer match its name is ignored and removed.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from meshhost.errors import ConfigError

__all__ = ["ModuleStore", "sha256_hex"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModuleStore:
    """Content-addressed module files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise ConfigError(f"module digest must be 64 lower-case hex digits, got {digest!r}")
        return self.root / f"{digest}.wasm"

    def put(self, module: bytes) -> str:
        """Store ``module``; returns its SHA-256 (hex).  Storing twice is a no-op."""
        digest = sha256_hex(module)
        path = self._path(digest)
        if path.exists():
            return digest
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(module)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return digest

    def get(self, digest: str) -> bytes | None:
        """The module with that digest, or None when absent (or corrupt: then removed)."""
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if sha256_hex(data) != digest:
            path.unlink(missing_ok=True)
            return None
        return data
