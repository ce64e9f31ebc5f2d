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

from meshhost.cli import main
from meshhost.control import security
from meshhost.host import Host

security.LatticeSecurity.revalidate = lambda self: 0  # type: ignore[method-assign]
security.LatticeSecurity.check_entry = lambda self, entry: True  # type: ignore[method-assign]
_open = Host._open_directory


def _open_and_forge(self: Host):  # type: ignore[no-untyped-def]
    directory = _open(self)
    for ns, key, value in json.loads(os.environ.get("ROGUE_ENTRIES", "[]")):
        if isinstance(value, dict) and set(value) == {"text"}:
            value = value["text"].encode()
        directory.put(ns, key, value)
    return directory


Host._open_directory = _open_and_forge  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
