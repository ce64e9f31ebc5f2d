"""Public surface of meshhost.capabilities, and that it never touches wasmtime (the
no-IO rule of its pure modules is tests/test_layering.py's)."""

from __future__ import annotations

import ast
from pathlib import Path

import meshhost.capabilities as caps

PACKAGE = Path(caps.__file__).parent


def test_exports_exist_and_are_unique():
    assert len(caps.__all__) == len(set(caps.__all__))
    for name in caps.__all__:
        assert hasattr(caps, name), name


def test_capabilities_never_import_wasmtime_or_the_runtime():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.startswith(("wasmtime", "meshhost.runtime")) for n in names), path
