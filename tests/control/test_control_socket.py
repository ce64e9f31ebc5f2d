"""Control socket: requests, typed errors, streams, bad clients, permissions."""

import socket
import stat
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from meshhost.control import api
from meshhost.errors import (
    DecodeError,
    ErrorCode,
    LocalProtocolError,
    NoHostForActor,
    PayloadTooLarge,
)


async def dispatch(op: str, args: Mapping[str, Any]) -> Any:
    if op == "echo":
        return {"args": dict(args)}
    if op == "fail":
        raise NoHostForActor("no host in lattice 'x' runs actor M1")
    if op == "big":
        return {"blob": b"\x00" * int(args["n"])}
    if op == "bug":
        raise IsADirectoryError(21, "Is a directory")  # e.g. from a damaged data dir
    raise api.ControlError(ErrorCode.UNSUPPORTED, f"unknown control op {op!r}")


async def count_events(args: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
    for i in range(int(args.get("n", 3))):
        yield {"kind": "tick", "n": i, "blob": b"\x00" * int(args.get("size", 0))}


async def test_requests_errors_and_streams(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = await nursery.start(
        api.serve_unix, tmp_path / "control.sock", dispatch, {"events": count_events}
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    client = api.ControlClient(path)
    assert await client.request("echo", x=1, blob=b"\x00\xff") == {
        "args": {"x": 1, "blob": b"\x00\xff"}
    }
    with pytest.raises(api.ControlError, match="runs actor M1") as info:
        await client.request("fail")
    assert info.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(api.ControlError, match="unknown control op 'nope'"):
        await client.request("nope")
    events = [e async for e in client.stream("events", n=4)]
    assert [e["n"] for e in events] == [0, 1, 2, 3]


async def test_garbage_from_a_client_does_not_stop_the_server(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = await nursery.start(api.serve_unix, tmp_path / "c.sock", dispatch, {})
    for garbage in (b"\x00\x00\x00\x03abc", b"\xff\xff\xff\xff", b"\x00\x00\x00\x05\x81\xa2op"):
        stream = await trio.open_unix_socket(str(path))
        async with stream:
            await stream.send_all(garbage)
            with trio.move_on_after(1):
                await stream.receive_some(1000)
    assert await api.ControlClient(path).request("echo") == {"args": {}}


async def test_an_unexpected_exception_in_an_op_is_an_error_reply_not_a_dead_host(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = await nursery.start(api.serve_unix, tmp_path / "c.sock", dispatch, {})
    client = api.ControlClient(path)
    with pytest.raises(api.ControlError, match="internal error in 'bug'; see the host's log"):
        await client.request("bug")
    assert await client.request("echo") == {"args": {}}


async def test_an_oversized_message_is_answered_with_the_limit(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = await nursery.start(api.serve_unix, tmp_path / "c.sock", dispatch, {})
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await stream.send_all(b"\xff\xff\xff\xff")
        with trio.fail_after(5):
            reply = await api._read_message(stream)
    assert reply is not None
    with pytest.raises(api.ControlError, match="exceeds 67108864") as info:
        api.decode_reply(reply)
    assert info.value.code == ErrorCode.TOO_LARGE  # as proto/spec/rpc.md says


async def test_missing_host_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(LocalProtocolError, match="meshhost up"):
        await api.ControlClient(tmp_path / "control.sock").request("hosts")


def test_request_decoder_rejects_malformed_input() -> None:
    with pytest.raises(DecodeError, match="map"):
        api.decode_request(b"\x91\x01")
    with pytest.raises(DecodeError, match="'op'"):
        api.decode_request(api.encode_request("", {}))
    with pytest.raises(DecodeError, match="msgpack"):
        api.decode_request(b"\xc1")


async def test_a_stale_socket_of_a_killed_host_is_told_apart_from_none(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with pytest.raises(LocalProtocolError, match="no control socket at"):
        await api.ControlClient(path).request("echo")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))  # left behind, as by kill -9: the file exists, nobody listens
    listener.close()
    with pytest.raises(LocalProtocolError, match=r"nothing answers on .*killed or crashed"):
        await api.ControlClient(path).request("echo")


async def test_a_request_over_the_size_limit_fails_before_it_is_sent(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await nursery.start(api.serve_unix, tmp_path / "control.sock", dispatch, {})
    monkeypatch.setattr(api, "MAX_MESSAGE_BYTES", 1024 * 1024)
    client = api.ControlClient(path)
    with pytest.raises(PayloadTooLarge, match=r"'echo' is 1048\d{3} bytes, over the 1 MiB"):
        await client.request("echo", blob=b"\x00" * 1024 * 1024)
    assert await client.request("echo", x=1) == {"args": {"x": 1}}  # the host is fine


async def test_a_reply_over_the_size_limit_is_sent_as_a_too_large_error(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await nursery.start(
        api.serve_unix, tmp_path / "control.sock", dispatch, {"events": count_events}
    )
    monkeypatch.setattr(api, "MAX_MESSAGE_BYTES", 1024 * 1024)
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await api._write_message(stream, api.encode_request("big", {"n": 2 * 1024 * 1024}))
        with trio.fail_after(5):
            header = await api._read_exactly(stream, 4)
            assert header is not None
            length = int.from_bytes(header, "big")
            assert length < 1024  # the host never put the 2 MiB reply on the socket
            body = await api._read_exactly(stream, length)
    assert body is not None
    with pytest.raises(
        api.ControlError, match=r"reply to 'big' is 2097\d{3} bytes, over the 1 MiB"
    ) as info:
        api.decode_reply(body)
    assert info.value.code == ErrorCode.TOO_LARGE
    client = api.ControlClient(path)
    assert await client.request("big", n=10) == {"blob": b"\x00" * 10}  # the host is fine
    events = client.stream("events", n=2, size=2 * 1024 * 1024)
    with pytest.raises(api.ControlError, match=r"event 'tick' is .* over the 1 MiB") as info:
        await events.__anext__()
    assert info.value.code == ErrorCode.TOO_LARGE


def test_a_channel_3_reply_over_the_size_limit_is_a_too_large_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api, "MAX_MESSAGE_BYTES", 1024 * 1024)
    reply = trio.run(
        api.handle_request, api.encode_request("big", {"n": 2 * 1024 * 1024}), dispatch
    )
    with pytest.raises(api.ControlError, match="reply to 'big' is") as info:
        api.decode_reply(reply)
    assert info.value.code == ErrorCode.TOO_LARGE


KEYS = st.sampled_from(["op", "args", "ok", "code", "error", "result"]) | st.text(max_size=5)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | VALUES.map(lambda v: msgpack.packb(v, use_bin_type=True)))
def test_decoders_raise_only_typed_errors(data: bytes) -> None:
    for decode in (api.decode_request, api.decode_reply):
        try:
            decode(data)
        except (DecodeError, api.ControlError):
            pass
