"""Actor image references in a manifest: where the module is, and its bytes.

meshhost is offline, so an actor's ``image`` is a local path (relative to the
manifest's folder) or a ``file://`` URL; a registry reference or any other
URL scheme is refused with a message saying how to get the file. The module
is read with a size bound and must start with the WebAssembly magic.

Each function reports a problem by calling ``fail(problem)``, which raises
(the validator's, so the message carries the image field's position).
"""

from __future__ import annotations

import os.path
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote

from meshhost.apps.model import MAX_IMAGE_BYTES

__all__ = ["Fail", "image_path", "looks_like_registry", "read_image"]

Fail = Callable[[str], NoReturn]
"""Raises the caller's error for ``problem`` (never returns)."""

_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://")
_WASM_MAGIC = b"\x00asm"


def image_path(ref: str, base_dir: Path | None, fail: Fail) -> Path:
    """The absolute local path ``ref`` names (relative to ``base_dir``, default: cwd)."""
    scheme = _SCHEME_RE.match(ref)
    if scheme and scheme.group(1).lower() == "file":
        rest = ref[len(scheme.group(0)) :]
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        raw_path = unquote(rest)
        if not raw_path:
            fail("the file:// URL has no path")
    elif scheme:
        fail(
            f"image {ref!r} uses {scheme.group(1)}://; meshhost is offline and "
            "never pulls images. Download the module and give its local path or a "
            "file:// URL",
        )
    elif looks_like_registry(ref):
        fail(
            f"image {ref!r} looks like a registry reference; meshhost is offline and "
            "never pulls images. Download the module (e.g. 'wash pull') and give its "
            "local path or a file:// URL",
        )
    else:
        raw_path = ref
    candidate = Path(raw_path).expanduser()
    if not candidate.is_absolute():
        candidate = (base_dir or Path.cwd()) / candidate
    # normpath, not resolve(): keep the user's symlinks, drop "./" and "../".
    return Path(os.path.normpath(candidate))


def looks_like_registry(ref: str) -> bool:
    """True for an OCI reference (``host.tld/...``, ``host:5000/...``, ``name:tag``)."""
    if ref.startswith(("/", "./", "../", "~")) or ref.endswith(".wasm"):
        return False
    first = ref.split("/", 1)[0]
    # "host.tld/...", "host:5000/...", "localhost/...", or "name:tag"
    return "." in first or ":" in ref or first == "localhost"


def read_image(file_path: Path, fail: Fail) -> bytes:
    """The bytes of the WebAssembly module at ``file_path`` (at most :data:`MAX_IMAGE_BYTES`)."""
    try:
        if not file_path.exists():
            fail(f"image file {str(file_path)!r} does not exist")
        if not file_path.is_file():
            fail(f"image {str(file_path)!r} is not a file")
        size = file_path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            fail(f"image {str(file_path)!r} is {size} bytes; the limit is {MAX_IMAGE_BYTES}")
        module = file_path.read_bytes()
    except OSError as exc:
        fail(f"cannot read image {str(file_path)!r}: {exc.strerror or exc}")
    if not module.startswith(_WASM_MAGIC):
        fail(
            f"image {str(file_path)!r} is not a WebAssembly module "
            "(it does not start with '\\0asm')",
        )
    return module
