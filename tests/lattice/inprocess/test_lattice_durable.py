"""No fsync on the event loop: a host merging gossip and serving control writes
leaves every durable write to its disk writer's thread (issue 13.5)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import trio

from meshhost.directory import Directory, FileStore
from meshhost.testing import Member, client, make_host, signed_example, wait_until
from tests.lattice.inprocess.lattice_helpers import manifest_args

KEYS = 20


async def test_gossip_merges_and_control_writes_never_fsync_on_the_trio_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_a = make_host(tmp_path, 0)  # (writes its key file: the test's own doing)
    trio_thread = threading.get_ident()
    calls: list[tuple[str, bool]] = []  # (file, on the trio thread?)
    real = os.fsync

    def recording_fsync(fd: int) -> None:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = "?"
        calls.append((path, threading.get_ident() == trio_thread))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    kvcounter, _ = signed_example("kvcounter")
    async with trio.open_nursery() as nursery:
        a = Member(host_a)
        addr = await nursery.start(a.run)
        with monkeypatch.context() as unpatched:
            unpatched.setattr(os, "fsync", real)  # b's key file is the test's own doing
            b = Member(make_host(tmp_path, 1, seeds=(f"{addr[0]}:{addr[1]}",)))
        await nursery.start(b.run)
        await wait_until(lambda: len(a.host.alive_ids()) == 2, "a sees b")
        # Control writes on b (acknowledged: on disk before the answer), learnt
        # by a through gossip (piggyback and push-pull merges).
        async with trio.open_nursery() as writers:
            for i in range(KEYS):
                writers.start_soon(
                    lambda i=i: client(b.host).request("config_put", key=f"k{i}", value=str(i))
                )
        await client(b.host).request(
            "link_put", actor="M" + "A" * 55, contract="wasmcloud:keyvalue", link_name="x"
        )
        result = await client(b.host).request("apply", **manifest_args(tmp_path, 1, kvcounter))
        assert result["modules_stored"], "apply stored no module"
        directory = a.host.directory
        await wait_until(
            lambda: all(directory.get("config", f"k{i}") is not None for i in range(KEYS)),
            "a learns every config entry by gossip",
        )
        nursery.cancel_scope.cancel()
    on_trio = [path for path, trio_side in calls if trio_side]
    assert not on_trio, f"fsync ran on the trio thread for {on_trio}"
    for host in (a.host, b.host):
        log = str(host.data_dir / "directory")
        assert any(path.startswith(log) for path, _ in calls), f"no fsync of {log}: not tested"
    modules = str(b.host.data_dir / "modules")
    assert any(path.startswith(modules) for path, _ in calls), "the module was not stored"
    # What a learnt by gossip reached its disk (written after the fact, by its writer).
    store = FileStore(tmp_path / "h0" / "directory")
    again = Directory("N" + "Z" * 55, clock=lambda: 0.0, store=store)
    assert {f"k{i}" for i in range(KEYS)} <= {k for k, _ in again.items("config")}
