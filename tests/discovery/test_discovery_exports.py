"""Public surface of discovery and the keyring; the keyring stays free of I/O frameworks."""

import ast
from pathlib import Path

import meshhost.discovery as discovery
import meshhost.identity.keyring as keyring


def test_exports_are_explicit_and_resolve() -> None:
    for module in (discovery, keyring):
        assert sorted(module.__all__) == sorted(set(module.__all__))
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_keyring_imports_no_io_framework() -> None:
    tree = ast.parse(Path(keyring.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"trio", "socket", "zeroconf", "asyncio", "threading", "time"}
