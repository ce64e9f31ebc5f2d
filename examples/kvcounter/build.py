"""Build and sign the kvcounter example actor.

    python examples/kvcounter/build.py [--out DIR] [--issuer-seed FILE] [--module-seed FILE]
                                       [--print-id]

Compiles ``meshhost/examples/kvcounter.wat`` with wasmtime's WAT parser (no
other toolchain needed) and signs it with wascap claims for
``wasmcloud:keyvalue`` and ``wasmcloud:httpserver``.  Seeds are read from the
given files, or made on first run and kept in ``DIR/issuer.seed`` /
``DIR/module.seed`` (mode 0600) so rebuilding keeps the actor's ``M...`` id.
Writes ``DIR/kvcounter.wasm`` (default DIR: ``examples/kvcounter/build``) and
prints its path, actor id and capabilities; with ``--print-id`` only the
actor id (``ACTOR=$(python examples/kvcounter/build.py --print-id)``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshhost import examples

HERE = Path(__file__).resolve().parent
CAPS = examples.EXAMPLES["kvcounter"]
NAME = "kvcounter"


def build(
    out_dir: Path, issuer_seed: Path | None = None, module_seed: Path | None = None
) -> tuple[Path, str]:
    """Compile and sign; return (path of the signed module, actor id)."""
    return examples.build(NAME, out_dir, issuer_seed, module_seed or out_dir / "module.seed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "build")
    parser.add_argument("--issuer-seed", type=Path)
    parser.add_argument("--module-seed", type=Path)
    parser.add_argument("--print-id", action="store_true", help="print only the actor id")
    args = parser.parse_args(argv)
    target, actor_id = build(args.out, args.issuer_seed, args.module_seed)
    if args.print_id:
        print(actor_id)
    else:
        print(f"{target}  actor {actor_id}  caps {', '.join(CAPS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
