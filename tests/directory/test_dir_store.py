"""Persistence: links and config survive a full restart; the log is crash-safe."""

from __future__ import annotations

import errno
import json
import os

import pytest

from meshhost.capabilities.links import LinkDefinition
from meshhost.directory import Directory, FileStore, MemoryStore, StoreFailed
from meshhost.directory import store as store_module
from meshhost.directory.codec import LwwDelta, LwwEntry, encode
from meshhost.directory.hlc import Stamp
from meshhost.directory.store import COMPACT_MIN_RECORDS, LOG_NAME
from meshhost.errors import DirectoryStoreCorrupt, DirectoryStoreFailed

NA, NB = "N" + "A" * 55, "N" + "B" * 55
ACTOR = "M" + "X" * 55
LINK = LinkDefinition(ACTOR, "wasmcloud:keyvalue", "default", "VKV", {"URL": "redis://x"})


def restart(path, clock) -> Directory:
    return Directory(NA, clock=clock, store=FileStore(path))


def test_links_config_and_manifests_survive_a_full_restart(tmp_path, clock):
    d = restart(tmp_path, clock)
    d.put_link(LINK)
    d.config_put("db", {"url": "sqlite://x", "pool": 4})
    d.config_put("gone", "soon")
    d.config_delete("gone")
    d.put("manifest", "shop/v1", b"\x00\x01binary")
    d2 = restart(tmp_path, clock)
    assert d2.links() == [LINK]
    assert d2.config_get("db") == {"url": "sqlite://x", "pool": 4}
    assert d2.config_get("gone") is None
    assert d2.stamp_of("config", "gone") is not None  # the tombstone survives too
    assert d2.get("manifest", "shop/v1") == b"\x00\x01binary"
    assert d2.snapshot()[1] == d.snapshot()[1]


def test_an_acknowledged_write_is_in_the_file_when_put_returns(tmp_path, clock):
    d = restart(tmp_path, clock)
    d.put_link(LINK)
    lines = (tmp_path / LOG_NAME).read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "meshhost-directory-lww", "version": 1}
    record = json.loads(lines[1])
    assert record["ns"] == "link" and record["writer"] == NA and record["value"]


def test_entries_learned_from_peers_are_persisted_too(tmp_path, clock):
    d = restart(tmp_path, clock)
    stamp = Stamp(int(clock() * 1000), 0, NB)
    d.notify_message(NB, encode(LwwDelta((LwwEntry("config", "peer", stamp, "v"),))))
    assert restart(tmp_path, clock).config_get("peer") == "v"


@pytest.fixture
def full_disk(monkeypatch):
    """Every fsync fails with ENOSPC while ``full_disk.on`` is True."""

    class Switch:
        on = False

    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if Switch.on:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    return Switch


def test_a_refused_local_write_fails_typed_and_leaves_a_log_that_loads(tmp_path, clock, full_disk):
    d = restart(tmp_path, clock)
    d.config_put("a", "1")
    full_disk.on = True
    with pytest.raises(DirectoryStoreFailed, match=rf"{LOG_NAME}: No space left on device"):
        d.config_put("b", "2")
    assert d.config_get("b") is None  # not acknowledged, not applied
    full_disk.on = False
    d.config_put("c", "3")  # must not be glued to a partial line of "b"
    assert restart(tmp_path, clock).items("config") == [("a", "1"), ("c", "3")]


def test_entries_from_peers_are_kept_in_memory_when_the_disk_refuses(tmp_path, clock, full_disk):
    d = restart(tmp_path, clock)
    full_disk.on = True
    stamp = Stamp(int(clock() * 1000), 0, NB)
    d.notify_message(NB, encode(LwwDelta((LwwEntry("config", "peer", stamp, "v"),))))
    assert d.config_get("peer") == "v"
    failures = [e for e in iter(d.next_event, None) if isinstance(e, StoreFailed)]
    assert len(failures) == 1 and "No space left on device" in failures[0].reason


def test_a_directory_path_that_is_a_file_is_named(tmp_path, clock):
    (tmp_path / "dir").write_text("not a directory")
    with pytest.raises(DirectoryStoreCorrupt, match="is not a directory; move it aside"):
        restart(tmp_path / "dir", clock)


def test_restart_never_reissues_an_old_stamp_even_if_the_clock_went_back(tmp_path, clock):
    d = restart(tmp_path, clock)
    first = d.config_put("k", "old")
    clock.advance(-3600)
    d2 = restart(tmp_path, clock)
    second = d2.config_put("k", "new")
    assert second > first
    assert restart(tmp_path, clock).config_get("k") == "new"


def test_a_torn_last_line_is_dropped_and_cut_off(tmp_path, clock):
    d = restart(tmp_path, clock)
    d.config_put("a", "1")
    d.config_put("b", "2")
    path = tmp_path / LOG_NAME
    text = path.read_text()
    path.write_text(text[: len(text) - 7])  # crash in the middle of the last append
    d2 = restart(tmp_path, clock)
    assert d2.config_get("a") == "1" and d2.config_get("b") is None
    assert path.read_text().endswith("\n")
    d2.config_put("c", "3")
    assert restart(tmp_path, clock).items("config") == [("a", "1"), ("c", "3")]


def test_a_damaged_whole_last_line_is_dropped_with_a_warning(tmp_path, clock, caplog):
    d = restart(tmp_path, clock)
    d.config_put("a", "1")
    d.config_put("b", "2")
    path = tmp_path / LOG_NAME
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + "{damaged\n")
    with caplog.at_level("WARNING"):
        d2 = restart(tmp_path, clock)
    assert d2.items("config") == [("a", "1")]
    assert f"{LOG_NAME}:3: dropped the last line, which is damaged" in caplog.text


def test_damage_in_the_middle_is_reported_with_file_and_line(tmp_path, clock):
    d = restart(tmp_path, clock)
    for k in "abc":
        d.config_put(k, k)
    path = tmp_path / LOG_NAME
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = "{not json\n"
    path.write_text("".join(lines))
    with pytest.raises(DirectoryStoreCorrupt, match=rf"{LOG_NAME}:3: .*move it aside"):
        restart(tmp_path, clock)


def test_a_deeply_nested_line_is_damage_not_a_crash(tmp_path, clock):
    d = restart(tmp_path, clock)
    d.config_put("a", "1")
    path = tmp_path / LOG_NAME
    with path.open("a") as log:
        log.write("[" * 100_000 + "\n")  # json.loads recurses: RecursionError, not ValueError
        log.write("{}\n")
    with pytest.raises(DirectoryStoreCorrupt, match=rf"{LOG_NAME}:3: .*move it aside"):
        restart(tmp_path, clock)


def test_an_unreadable_log_names_the_file(tmp_path, clock):
    (tmp_path / LOG_NAME).mkdir()  # e.g. restored wrongly from a backup
    with pytest.raises(DirectoryStoreCorrupt, match=rf"cannot read the directory log .*{LOG_NAME}"):
        restart(tmp_path, clock)


def test_a_log_from_a_newer_format_is_refused(tmp_path, clock):
    (tmp_path / LOG_NAME).write_text('{"format": "meshhost-directory-lww", "version": 2}\n{}\n')
    with pytest.raises(DirectoryStoreCorrupt, match="upgrade meshhost"):
        restart(tmp_path, clock)


def test_compaction_keeps_the_same_state_in_fewer_lines(tmp_path, clock):
    d = restart(tmp_path, clock)
    for i in range(COMPACT_MIN_RECORDS + 10):
        d.config_put("counter", i)
    d.config_put("other", "x")
    d.tick()
    lines = (tmp_path / LOG_NAME).read_text().splitlines()
    assert len(lines) == 3  # header + two live entries
    d.config_put("after", "compaction")  # appends still work after the rewrite
    d2 = restart(tmp_path, clock)
    assert d2.items("config") == [
        ("after", "compaction"),
        ("counter", COMPACT_MIN_RECORDS + 9),
        ("other", "x"),
    ]


def test_memory_store_models_a_restart_with_disk_for_the_simulator(clock):
    store = MemoryStore()
    d = Directory(NA, clock=clock, store=store)
    d.put_link(LINK)
    assert store.appends == 1
    assert Directory(NA, clock=clock, store=store).links() == [LINK]
