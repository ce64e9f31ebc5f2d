"""Build and sign the kvcounter example actor.

    python examples/kvcounter/build.py [--out DIR] [--issuer-seed FILE] [--module-seed FILE]

Compiles ``kvcounter.wat`` with wasmtime's WAT parser (no other toolchain
needed) and signs it with wascap claims for ``wasmcloud:keyvalue`` and
``wasmcloud:httpserver``.  Seeds are read from the given files, or made on
first run and kept in ``DIR/issuer.seed`` / ``DIR/module.seed`` (mode 0600)
so rebuilding keeps the actor's ``M...`` id.  Writes ``DIR/kvcounter.wasm``
(default DIR: ``examples/kvcounter/build``) and prints the actor id.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import wasmtime

from meshhost.datadir import write_private
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module

HERE = Path(__file__).resolve().parent
CAPS = ("wasmcloud:keyvalue", "wasmcloud:httpserver")
NAME = "kvcounter"


def _seed(path: Path | None, default: Path, prefix: nkeys.Prefix) -> nkeys.KeyPair:
    path = path or default
    if path.exists():
        return nkeys.from_seed(path.read_text().strip(), prefix)
    pair = nkeys.generate(prefix, os.urandom)
    write_private(path, pair.encoded_seed + "\n")
    return pair


def build(out_dir: Path, issuer_seed: Path | None = None,
          module_seed: Path | None = None) -> tuple[Path, str]:
    """Compile and sign; return (path of the signed module, actor id)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    issuer = _seed(issuer_seed, out_dir / "issuer.seed", nkeys.Prefix.ACCOUNT)
    module = _seed(module_seed, out_dir / "module.seed", nkeys.Prefix.MODULE)
    wasm = wasmtime.wat2wasm((HERE / "kvcounter.wat").read_text())
    signed = sign_module(wasm, issuer=issuer, subject=module, name=NAME, caps=CAPS, rev=1,
                         ver="0.1.0", now=time.time())
    target = out_dir / "kvcounter.wasm"
    target.write_bytes(signed)
    return target, module.public_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "build")
    parser.add_argument("--issuer-seed", type=Path)
    parser.add_argument("--module-seed", type=Path)
    args = parser.parse_args(argv)
    target, actor_id = build(args.out, args.issuer_seed, args.module_seed)
    print(f"{target}  actor {actor_id}  caps {', '.join(CAPS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
