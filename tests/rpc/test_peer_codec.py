"""The peer channel's messages (rpc/peer.py): the control channel's shapes, a
table of handlers and nothing else, typed errors for bad input."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio

from meshhost.errors import DecodeError, ErrorCode, ModuleNotStored, RemoteError
from meshhost.rpc import peer
from meshhost.transport import channels

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "rpc.json"


def test_a_module_reply_is_the_control_reply_vector_byte_for_byte() -> None:
    vector = next(
        v for v in json.loads(VECTORS.read_text())["control"] if v.get("name") == "reply_module_get"
    )
    module = bytes.fromhex(vector["fields"]["result"]["$bin"])
    assert peer.encode_reply(module).hex() == vector["msgpack_hex"]
    assert peer.decode_reply(bytes.fromhex(vector["msgpack_hex"])) == module


def test_the_peer_channel_is_registered_once() -> None:
    assert peer.CHANNEL == channels.PEER == 5
    numbers = [getattr(channels, name) for name in channels.__all__]
    assert len(numbers) == len(set(numbers))


async def _modules(args: Mapping[str, Any]) -> bytes:
    if args.get("sha256") != "ab":
        raise ModuleNotStored("this host has no module")
    return b"\0asm"


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (peer.encode_request("module_get", {"sha256": "ab"}), None),
        (peer.encode_request("module_get", {"sha256": "cd"}), ErrorCode.NOT_FOUND),
        (peer.encode_request("start", {}), ErrorCode.UNSUPPORTED),  # a control op
        (b"\xc1", ErrorCode.PROTOCOL),  # not msgpack
        (msgpack.packb([1, 2]), ErrorCode.PROTOCOL),
        (msgpack.packb({"op": "", "args": {}}), ErrorCode.PROTOCOL),
        (msgpack.packb({"op": "module_get", "args": []}), ErrorCode.PROTOCOL),
    ],
)
def test_the_table_answers_its_ops_and_refuses_the_rest(
    request_bytes: bytes, code: ErrorCode | None
) -> None:
    ops = peer.PeerOps({"module_get": _modules})
    reply = trio.run(ops.handle, "N" + "A" * 55, request_bytes)
    if code is None:
        assert peer.decode_reply(reply) == b"\0asm"
    else:
        with pytest.raises(RemoteError) as info:
            peer.decode_reply(reply, "NPEER")
        assert info.value.code == code
        assert "NPEER" in str(info.value)


@pytest.mark.parametrize("reply", [b"", b"\x91\x01", msgpack.packb({"ok": 1})])
def test_a_malformed_reply_is_a_decode_error(reply: bytes) -> None:
    with pytest.raises(DecodeError):
        peer.decode_reply(reply)
