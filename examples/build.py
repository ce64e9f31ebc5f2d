"""Build and sign every example actor, next to the manifests that use them.

    python examples/build.py [--out DIR]

Writes ``DIR/echo.wasm``, ``kvcounter.wasm``, ``recorder.wasm`` and
``pinger.wasm`` (default DIR: ``examples/manifests``, where the manifests
name them as ``./NAME.wasm``), each signed by one issuer, and prints each
actor's id.  The signing seeds are kept in DIR (``issuer.seed``,
``NAME.seed``, mode 0600) so building again keeps every ``M...`` id.  Needs
only meshhost (run it with the Python that has meshhost installed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshhost import examples

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "manifests",
        help="where to write the signed modules (default: examples/manifests)",
    )
    args = parser.parse_args(argv)
    for name, (path, actor_id) in examples.build_all(args.out).items():
        caps = ", ".join(examples.EXAMPLES[name]) or "no capabilities"
        print(f"{path}  actor {actor_id}  ({caps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
