"""A host builds every part before it serves; before that it says so with a typed error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from meshhost.errors import DirectoryStoreCorrupt, ErrorCode, HostNotServing
from meshhost.hostparts import HostParts
from meshhost.testing import host_address, make_host
from meshhost.transport import channels

OPTIONAL_BY_CONFIG = {"mdns", "seeds"}
EXTRA_CHANNEL = 99


async def test_a_host_has_every_part_wired_once_serving_and_a_typed_error_before(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path, 0)

    async def extra(peer_id: str, payload: bytes) -> bytes:
        return payload

    host.handlers[EXTRA_CHANNEL] = extra
    assert not host.built
    with pytest.raises(HostNotServing, match="not serving yet") as raised:
        host.actors  # noqa: B018 - the access is the test
    assert raised.value.code is ErrorCode.UNAVAILABLE
    assert host.members() == [] and host.status()["addr"] is None
    async with trio.open_nursery() as nursery:
        addr = await nursery.start(host.serve)
        parts = host.parts
        for name in HostParts.__dataclass_fields__:
            if name not in OPTIONAL_BY_CONFIG:
                assert getattr(parts, name) is not None, f"part {name} was not built"
        assert host.addr == addr and host.actors is parts.actors
        # what used to be set on the parts after construction is passed in
        assert parts.directory.admit is not None
        assert parts.actors.invoker.refresh is not None
        assert parts.actors.admission is not None
        assert parts.directory_driver.on_synced is not None
        assert {
            channels.INVOCATION,
            channels.PUSH_PULL,
            channels.CONTROL,
            channels.DIRECTORY_SYNC,
            channels.PEER,
            EXTRA_CHANNEL,
        } <= set(parts.handlers)
        nursery.cancel_scope.cancel()
    assert host.built and host.directory is parts.directory  # kept for inspection


async def test_a_host_that_cannot_build_its_parts_fails_and_frees_its_port(
    tmp_path: Path,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host_address(0), 0))
        port = probe.getsockname()[1]
    host = make_host(tmp_path, 0, port=port)
    log_dir = host.data_dir / "directory"
    log_dir.mkdir()
    (log_dir / "lww.jsonl").write_text('{"format": "something else"}\n{}\n')
    with pytest.raises(DirectoryStoreCorrupt, match=r"lww\.jsonl:1"):
        await host.serve()
    assert not host.built
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):  # both sockets were closed
        with socket.socket(socket.AF_INET, kind) as again:
            again.bind((host.config.bind, port))
