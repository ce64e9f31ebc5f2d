"""The disk writer: durable writes off the event loop, group commit, typed failures."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
import trio

from meshhost.directory import Directory, FileStore
from meshhost.diskwriter import DiskWriter
from meshhost.errors import DirectoryStoreFailed

HOST = "N" + "A" * 55
WRITES = 24
SLOW_FSYNC_S = 0.02
"""A slow disk: appends queue up while one fsync runs."""


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Slows every ``os.fsync`` down and records the thread it ran on."""
    calls: list[int] = []
    real = os.fsync

    def slow_fsync(fd: int) -> None:
        calls.append(threading.get_ident())
        time.sleep(SLOW_FSYNC_S)
        real(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    return calls


def open_directory(path: Path, writer: DiskWriter | None = None) -> Directory:
    return Directory(HOST, clock=time.time, store=FileStore(path, writer))


async def test_concurrent_acknowledged_writes_share_fsyncs_and_all_survive_a_restart(
    tmp_path: Path, fsyncs: list[int]
) -> None:
    writer = DiskWriter()
    writer.start()
    directory = open_directory(tmp_path, writer)
    directory.config_put("first", "0")  # creates the log (header fsync'd) before the burst
    await writer.durable([writer.run(lambda: None)])
    fsyncs.clear()
    acknowledged: list[str] = []

    async def put(i: int) -> None:
        with writer.track() as tickets:
            directory.config_put(f"k{i}", str(i))
        assert tickets, "the write was not handed to the writer"
        await writer.durable(tickets)
        acknowledged.append(f"k{i}")

    async with trio.open_nursery() as nursery:
        for i in range(WRITES):
            nursery.start_soon(put, i)
            await trio.sleep(SLOW_FSYNC_S / 4)  # they arrive while fsyncs run
    await trio.to_thread.run_sync(writer.close)
    assert len(acknowledged) == WRITES
    print(
        f"{WRITES} acknowledged writes took {len(fsyncs)} fsyncs "
        f"({writer.stats.batches} batches, {writer.stats.syncs} log syncs)"
    )
    assert len(fsyncs) < WRITES, "no group commit: one fsync per write"
    assert threading.get_ident() not in fsyncs, "an fsync ran on the trio thread"
    again = open_directory(tmp_path)
    assert {k for k, _ in again.items("config")} == {"first", *acknowledged}


async def test_a_waiter_gets_the_typed_error_of_its_own_failed_write_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = DiskWriter()
    writer.start()
    directory = open_directory(tmp_path, writer)
    with writer.track() as good:
        directory.config_put("a", "1")
    await writer.durable(good)
    real_write = FileStore.write
    full = {"on": True}

    def write(self: FileStore, data: bytes) -> None:
        if full["on"] and b'"key":"b"' in data:
            raise DirectoryStoreFailed(f"cannot write the directory log {self.path}: disk full")
        real_write(self, data)

    monkeypatch.setattr(FileStore, "write", write)
    with writer.track() as bad:
        directory.config_put("b", "2")
    with writer.track() as later:
        directory.config_put("c", "3")
    with pytest.raises(DirectoryStoreFailed, match="disk full"):
        await writer.durable(bad)
    await writer.durable(later)  # its own write went through
    await trio.to_thread.run_sync(writer.close)
    assert open_directory(tmp_path).items("config") == [("a", "1"), ("c", "3")]


def test_a_sync_failure_cuts_every_unsynced_write_off_and_fails_each_waiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path)
    directory = Directory(HOST, clock=time.time, store=store)
    directory.config_put("kept", "1")
    store.write(b'{"torn": ')  # two writes queued for one sync that fails
    real = os.fsync

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(DirectoryStoreFailed, match="Input/output error"):
        store.sync()
    monkeypatch.setattr(os, "fsync", real)
    directory.config_put("after", "2")  # must not follow the cut-off partial line
    assert open_directory(tmp_path).items("config") == [("after", "2"), ("kept", "1")]


def test_jobs_run_inline_when_the_writer_is_not_running(tmp_path: Path, fsyncs: list[int]) -> None:
    writer = DiskWriter()
    directory = open_directory(tmp_path, writer)
    directory.config_put("a", "1")  # not started: done on return
    assert open_directory(tmp_path).items("config") == [("a", "1")]
    writer.start()
    writer.close()
    directory.config_put("b", "2")  # stopped: done on return again
    assert open_directory(tmp_path).items("config") == [("a", "1"), ("b", "2")]
    assert set(fsyncs) == {threading.get_ident()}
