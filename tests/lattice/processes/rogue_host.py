"""A modified `meshhost up` for tests: a secret holder running patched code.

It holds the lattice secret and no operator key, trusts every directory entry, and
writes the entries named in ``$ROGUE_ENTRIES`` (JSON ``[[ns, key, value], ...]``;
a value ``{"text": s}`` is stored as the bytes of ``s``) straight into its directory,
unsigned, as soon as the directory exists: they spread by gossip and push-pull
like any entry.  Honest hosts must not take them (proto/spec/operators.md).
Run as ``python rogue_host.py up ARGS...``.
"""

from __future__ import annotations

import json
import os
import sys

from meshhost import hostparts
from meshhost.cli import main
from meshhost.control import security

security.LatticeSecurity.revalidate = lambda self: 0  # type: ignore[method-assign]
security.LatticeSecurity.check_entry = lambda self, entry: True  # type: ignore[method-assign]
_open = hostparts.open_directory


def _open_and_forge(*args, **kwargs):  # type: ignore[no-untyped-def]
    opened = _open(*args, **kwargs)
    for ns, key, value in json.loads(os.environ.get("ROGUE_ENTRIES", "[]")):
        if isinstance(value, dict) and set(value) == {"text"}:
            value = value["text"].encode()
        opened[1].put(ns, key, value)
    return opened


hostparts.open_directory = _open_and_forge

if __name__ == "__main__":
    sys.exit(main())
