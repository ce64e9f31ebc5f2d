"""Public surface of meshhost.directory, and the sans-IO rule for its cores."""

from __future__ import annotations

import ast
from pathlib import Path

import meshhost.directory as directory

CORE_MODULES = [
    "broadcast.py",
    "chunks.py",
    "codec.py",
    "events.py",
    "hlc.py",
    "hoststate.py",
    "lww.py",
    "records.py",
    "state.py",
]
BANNED = {"trio", "socket", "time", "os", "random", "threading", "asyncio", "sqlite3", "secrets"}


def test_export_list_is_explicit_and_complete():
    assert sorted(directory.__all__) == sorted(set(directory.__all__))
    for name in directory.__all__:
        assert getattr(directory, name) is not None
    for name in ("Directory", "DirectoryConfig", "FileStore", "MemoryStore", "Stamp", "LinkPut"):
        assert name in directory.__all__


def test_core_modules_do_no_io_and_read_no_clock_or_randomness():
    root = Path(directory.__file__).parent
    for module in CORE_MODULES:
        tree = ast.parse((root / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            assert not BANNED & set(names), f"{module} imports {names}"
            if isinstance(node, ast.ImportFrom) and node.module == "meshhost.directory.store":
                # only the storage Protocol; the file store is injected by the host
                assert [alias.name for alias in node.names] == ["EntryStore"], module
