"""Public surface of meshhost.capabilities, and the pure modules stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import meshhost.capabilities as caps

PACKAGE = Path(caps.__file__).parent
PURE = ["policy.py", "links.py", "contracts.py", "providers/codec.py", "providers/subjects.py"]
BANNED = {"trio", "socket", "time", "random", "os", "hypercorn", "sqlite3"}


def test_exports_exist_and_are_unique():
    assert len(caps.__all__) == len(set(caps.__all__))
    for name in caps.__all__:
        assert hasattr(caps, name), name


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module):
    tree = ast.parse((PACKAGE / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & BANNED, f"{module} imports {imported & BANNED}"


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
