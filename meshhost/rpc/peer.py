"""Peer operations: what only another host asks for, on transport channel 5.

Two ops, both host to host: ``module_get`` (a host starting an application's
actor fetches the module by digest from a peer that stores it) and
``messaging_reply`` (a reply published on one host to a messaging inbox
another host owns). They used to be control ops on channel 3, which let the
local control socket call them by name too; on their own channel the local
socket cannot reach them at all, and the control dispatcher knows nothing of
them (proto/spec/rpc.md, "Peer operations").

The messages keep the control channel's shapes, so the bytes are those of
``ControlRequest`` / ``ControlReply``: a request is the map ``{"op", "args"}``,
a reply ``{"ok": true, "result"}`` or ``{"ok": false, "code", "error"}``.
:class:`PeerOps` answers them from a table of handlers the host gives it;
:func:`request` asks a peer through an injected ``send``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgpack

from meshhost.errors import (
    DecodeError,
    ErrorCode,
    MeshError,
    PayloadTooLarge,
    RemoteError,
    UnknownControlOp,
)
from meshhost.transport import channels
from meshhost.wire import Limits, Reader

__all__ = [
    "CHANNEL",
    "MAX_MESSAGE_BYTES",
    "PeerOps",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "request",
]

CHANNEL = channels.PEER
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest peer message: room for a big actor module (as on the control channel)."""
MAX_OP_CHARS = 64
_LIMITS = Limits(
    max_bytes=MAX_MESSAGE_BYTES,
    max_bin=MAX_MESSAGE_BYTES,
    max_str=1024 * 1024,
    max_array=100_000,
    max_map=100_000,
)
_wire = Reader(DecodeError)

Handler = Callable[[Mapping[str, Any]], Awaitable[Any]]
"""``await handler(args)``: the result (plain msgpack data) or a MeshError."""
Send = Callable[[str, int, bytes, float], Awaitable[bytes]]
"""``await send(host_id, channel, body, timeout_s)``: the reply body."""


def _pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    if len(data) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"peer message is {len(data)} bytes, over the {MAX_MESSAGE_BYTES / 2**20:g} MiB "
            "a host accepts"
        )
    return data


def encode_request(op: str, args: Mapping[str, Any]) -> bytes:
    """Pack one request; PayloadTooLarge past MAX_MESSAGE_BYTES."""
    return _pack({"op": op, "args": dict(args)})


def decode_request(data: bytes) -> tuple[str, dict[str, Any]]:
    """Return ``(op, args)``; DecodeError for anything malformed."""
    value = _wire.unpack(data, _LIMITS, "peer request")
    if not isinstance(value, dict):
        raise DecodeError("peer request must be a map with 'op' and 'args'")
    op = _wire.text(
        _wire.required(value, "op", "peer request"), "peer request 'op'", MAX_OP_CHARS, 1
    )
    args = _wire.mapping(value.get("args", {}), "peer request 'args'")
    return op, args


def encode_reply(result: Any = None, *, error: MeshError | None = None) -> bytes:
    """Pack one reply: the result, or the error with its wire code."""
    if error is not None:
        return _pack({"ok": False, "code": int(error.code), "error": str(error)})
    try:
        return _pack({"ok": True, "result": result})
    except PayloadTooLarge as exc:
        return encode_reply(error=exc)


def decode_reply(data: bytes, peer_id: str = "") -> Any:
    """The result; RemoteError (with the peer's code) when the peer reported a failure."""
    value = _wire.unpack(data, _LIMITS, "peer reply")
    if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
        raise DecodeError("peer reply must be a map with a boolean 'ok'")
    if not value["ok"]:
        try:
            code = ErrorCode(value.get("code", ErrorCode.INVALID))
        except ValueError:
            code = ErrorCode.PROTOCOL
        raise RemoteError(code, str(value.get("error", "unknown error")), peer_id)
    return value.get("result")


async def request(
    send: Send, host_id: str, op: str, args: Mapping[str, Any], timeout_s: float
) -> Any:
    """Ask peer ``host_id`` for ``op``; its result, or the MeshError it or the transport gave."""
    reply = await send(host_id, CHANNEL, encode_request(op, args), timeout_s)
    return decode_reply(reply, host_id)


class PeerOps:
    """Answers peer requests from ``handlers`` (op name → handler); nothing else.

    The host registers :meth:`handle` for :data:`CHANNEL` only: the local control
    socket never sees these ops, and a peer cannot reach a control op here.
    """

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._handlers = dict(handlers)

    @property
    def ops(self) -> frozenset[str]:
        """The op names this table answers."""
        return frozenset(self._handlers)

    async def handle(self, peer_id: str, data: bytes) -> bytes:
        """The transport handler for :data:`CHANNEL`: one request in, one reply out."""
        try:
            op, args = decode_request(data)
            handler = self._handlers.get(op)
            if handler is None:
                raise UnknownControlOp(f"unknown peer op {op!r}")
            return encode_reply(await handler(args))
        except MeshError as exc:
            return encode_reply(error=exc)
