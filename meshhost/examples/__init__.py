"""Example actors shipped with meshhost, written in WebAssembly text.

* ``echo``: operation ``Echo`` answers its payload (no capabilities).
* ``kvcounter``: ``HttpServer.HandleRequest`` counts requests in key-value
  storage (signed for ``wasmcloud:keyvalue`` and ``wasmcloud:httpserver``).
* ``recorder``: ``Record`` answers its payload, ``Messaging.HandleMessage``
  takes a message, ``Count`` says how many it saw (signed for
  ``wasmcloud:messaging``; call alias ``examples/recorder``).
* ``pinger``: ``Ping`` calls the recorder's ``Record`` through an
  actor-to-actor link and answers what it answered.

They need no toolchain: :func:`build` compiles the text with wasmtime's WAT
parser and signs it with wascap claims.  ``meshhost demo`` and the
benchmarks use them; ``examples/build.py`` builds every one of them for the
manifests in ``examples/manifests/`` (:func:`build_all`).
"""

from __future__ import annotations

import os
import time
from importlib import resources
from pathlib import Path

from meshhost.datadir import write_private
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module

__all__ = ["CALL_ALIASES", "EXAMPLES", "build", "build_all", "signed"]

EXAMPLES: dict[str, tuple[str, ...]] = {
    "echo": (),
    "kvcounter": ("wasmcloud:keyvalue", "wasmcloud:httpserver"),
    "recorder": ("wasmcloud:messaging",),
    "pinger": (),
}
"""Example name -> the capabilities its claims name."""
CALL_ALIASES = {"recorder": "examples/recorder"}
"""Example name -> the call alias its claims give it (others have none)."""


def signed(name: str, issuer: nkeys.KeyPair, module: nkeys.KeyPair) -> bytes:
    """The example ``name`` compiled and signed by ``issuer`` as actor ``module``."""
    from meshhost.runtime import wat_to_wasm

    caps = EXAMPLES[name]
    text = resources.files(__name__).joinpath(f"{name}.wat").read_text(encoding="utf-8")
    wasm = wat_to_wasm(text)
    return sign_module(
        wasm,
        issuer=issuer,
        subject=module,
        name=name,
        caps=caps,
        rev=1,
        ver="0.1.0",
        call_alias=CALL_ALIASES.get(name),
        now=time.time(),
    )


def _seed(path: Path, prefix: nkeys.Prefix) -> nkeys.KeyPair:
    if path.exists():
        return nkeys.from_seed(path.read_text().strip(), prefix)
    pair = nkeys.generate(prefix, os.urandom)
    write_private(path, pair.encoded_seed + "\n")
    return pair


def build(
    name: str, out_dir: Path, issuer_seed: Path | None = None, module_seed: Path | None = None
) -> tuple[Path, str]:
    """Write ``out_dir/<name>.wasm`` (signed); returns (path, actor id).

    Seeds are read from the given files, or made on first use and kept in
    ``out_dir`` (``issuer.seed``, ``<name>.seed``; mode 0600), so building
    again keeps the actor's ``M…`` id.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    issuer = _seed(issuer_seed or out_dir / "issuer.seed", nkeys.Prefix.ACCOUNT)
    module = _seed(module_seed or out_dir / f"{name}.seed", nkeys.Prefix.MODULE)
    target = out_dir / f"{name}.wasm"
    target.write_bytes(signed(name, issuer, module))
    return target, module.public_key


def build_all(out_dir: Path) -> dict[str, tuple[Path, str]]:
    """Every example, signed by one issuer (``out_dir/issuer.seed``): name -> (path, id)."""
    return {name: build(name, out_dir) for name in EXAMPLES}
