"""Stored actor modules: content-addressed, and a damaged file is said and dropped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from meshhost.errors import ConfigError, ModuleStoreFailed
from meshhost.modstore import ModuleStore, sha256_hex

MODULE = b"\0asm\x01\0\0\0" + bytes(range(200))


def test_a_module_is_stored_once_under_its_digest(tmp_path: Path) -> None:
    store = ModuleStore(tmp_path)
    digest = store.put(MODULE)
    assert digest == sha256_hex(MODULE) and store.put(MODULE) == digest
    assert store.get(digest) == MODULE
    assert store.get("0" * 64) is None
    with pytest.raises(ConfigError, match="64 lower-case hex"):
        store.get("../../etc/passwd")


def test_a_digest_is_exactly_64_hex_digits_and_a_bad_one_is_quoted_short(tmp_path: Path) -> None:
    """A peer names the digest (module_get): a final newline is not a digest, and the
    error quotes a long bad digest cut, not whole."""
    store = ModuleStore(tmp_path)
    digest = store.put(MODULE)
    for bad in (digest + "\n", "0" * 64 + "\n", "x" * 100_000):
        with pytest.raises(ConfigError, match="64 lower-case hex") as info:
            store.get(bad)
        assert len(str(info.value)) < 200


def test_a_truncated_module_file_is_named_removed_and_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ModuleStore(tmp_path)
    digest = store.put(MODULE)
    path = tmp_path / f"{digest}.wasm"
    path.write_bytes(MODULE[:100])  # a disk that lost the tail
    with caplog.at_level(logging.WARNING):
        assert store.get(digest) is None
    assert not path.exists()
    assert f"module file {path} is damaged" in caplog.text
    assert "meshhost apply" in caplog.text
    assert store.put(MODULE) == digest and store.get(digest) == MODULE


def test_a_disk_that_refuses_is_a_module_store_error_naming_the_place(tmp_path: Path) -> None:
    blocked = tmp_path / "blobs"
    blocked.write_text("a file where the directory should be")
    with pytest.raises(ModuleStoreFailed, match=r"cannot store module .* in .*blobs"):
        ModuleStore(blocked).put(MODULE)
    store = ModuleStore(tmp_path / "ok")
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / f"{sha256_hex(MODULE)}.wasm").mkdir()
    with pytest.raises(ModuleStoreFailed, match=r"cannot read module file .*move it aside"):
        store.get(sha256_hex(MODULE))
