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


def test_export_list_is_explicit_and_complete():
    assert sorted(directory.__all__) == sorted(set(directory.__all__))
    for name in directory.__all__:
        assert getattr(directory, name) is not None
    for name in ("Directory", "DirectoryConfig", "FileStore", "MemoryStore", "Stamp", "LinkPut"):
        assert name in directory.__all__


def test_the_core_takes_only_the_storage_protocol_from_the_store_module():
    # the file store is injected by the host; the no-IO rule itself is test_layering's
    root = Path(directory.__file__).parent
    for module in CORE_MODULES:
        for node in ast.walk(ast.parse((root / module).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "meshhost.directory.store":
                assert [alias.name for alias in node.names] == ["EntryStore"], module
