"""Control requests: codec, the local Unix-socket server, and its client.

A control request is ``{"op": str, "args": map}``; the reply is
``{"ok": true, "result": ...}``, ``{"ok": false, "code": n, "error": str}``,
or, for streaming ops, any number of ``{"ok": true, "event": map}``.  Over
the local socket each message is framed by a 4-byte big-endian length
(proto/spec/rpc.md, "Control").  The same request and reply bodies travel
between hosts on transport channel 3.

The server does not know what ops mean: the host hands it a ``dispatch``
coroutine for plain ops and async iterators for streaming ops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack

if TYPE_CHECKING:
    import trio
# trio itself is imported where it is used: the CLI's plain requests
# (request_blocking) must not pay ~50 ms of start-up for it.

from meshhost.errors import (
    ControlError,
    DecodeError,
    ErrorCode,
    LocalProtocolError,
    MeshError,
    PayloadTooLarge,
)
from meshhost.transport import channels
from meshhost.wire import Limits, Reader

__all__ = [
    "CHANNEL",
    "ControlClient",
    "ControlError",  # defined in meshhost.errors; callers of this API catch it from here too
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "request_blocking",
    "request_blocking_signed",
    "serve_unix",
]

log = logging.getLogger(__name__)

CHANNEL = channels.CONTROL
"""Transport channel for control requests between hosts (from the one registry)."""
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest control message: room for a big actor module in `start`."""
MAX_OP_CHARS = 64
_HEADER = struct.Struct(">I")
_LIMITS = Limits(
    max_bytes=MAX_MESSAGE_BYTES,
    max_bin=MAX_MESSAGE_BYTES,
    max_str=1024 * 1024,
    max_array=100_000,
    max_map=100_000,
)
_wire = Reader(DecodeError)

Dispatch = Callable[..., Awaitable[Any]]
"""``await dispatch(op, args, **meta)``; ``meta`` holds ``auth``/``route`` only when sent."""
Streamer = Callable[[Mapping[str, Any]], AsyncGenerator[Mapping[str, Any], None]]


def _pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def encode_request(
    op: str,
    args: Mapping[str, Any],
    *,
    auth: Mapping[str, Any] | None = None,
    route: str | None = None,
) -> bytes:
    """Pack one request; raises PayloadTooLarge past MAX_MESSAGE_BYTES (a host drops those).

    ``auth``: the operator's signature (proto/spec/operators.md); ``route``: the
    host a forwarding host chose to apply an op that named none (not signed).
    """
    message: dict[str, Any] = {"op": op, "args": dict(args)}
    if auth is not None:
        message["auth"] = dict(auth)
    if route is not None:
        message["route"] = route
    data = _pack(message)
    if len(data) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"control request {op!r} is {len(data)} bytes, over the "
            f"{MAX_MESSAGE_BYTES / 2**20:g} MiB a host accepts"
        )
    return data


def decode_request(data: bytes) -> tuple[str, dict[str, Any]]:
    """Return ``(op, args)``; raises DecodeError for anything malformed."""
    op, args, _ = decode_envelope(data)
    return op, args


def decode_envelope(data: bytes) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Return ``(op, args, meta)``, ``meta`` holding ``auth`` and ``route`` when sent;
    raises DecodeError for anything malformed (the signature is checked by the host)."""
    w = "control request"
    value = _wire.unpack(data, _LIMITS, w)
    if not isinstance(value, dict):
        raise DecodeError("control request must be a map with 'op' and 'args'")
    op = _wire.text(_wire.required(value, "op", w), "control request 'op'", MAX_OP_CHARS, 1)
    args = _wire.mapping(value.get("args", {}), "control request 'args'")
    meta: dict[str, Any] = {}
    if value.get("auth") is not None:
        meta["auth"] = value["auth"]
    if value.get("route") is not None:
        meta["route"] = _wire.text(value["route"], "control request 'route'", MAX_MESSAGE_BYTES)
    return op, args, meta


def encode_reply(
    result: Any = None, *, error: MeshError | None = None, op: str = "the request"
) -> bytes:
    """Pack one reply; a result over MAX_MESSAGE_BYTES becomes a ``too_large`` error
    reply (naming ``op``), since no client would read a message that size."""
    if error is not None:
        reply: dict[str, Any] = {"ok": False, "code": int(error.code), "error": str(error)}
        if isinstance(error, ControlError) and error.sign is not None:
            reply["sign"] = error.sign
        return _pack(reply)
    return _fit(_pack({"ok": True, "result": result}), f"reply to {op!r}")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Pack one stream event; one over MAX_MESSAGE_BYTES becomes a ``too_large`` error."""
    return _fit(_pack({"ok": True, "event": dict(event)}), f"event {event.get('kind')!r}")


def _fit(data: bytes, what: str) -> bytes:
    if len(data) <= MAX_MESSAGE_BYTES:
        return data
    return encode_reply(
        error=PayloadTooLarge(
            f"{what} is {len(data)} bytes, over the {MAX_MESSAGE_BYTES / 2**20:g} MiB "
            "a control message may hold"
        )
    )


def decode_reply(data: bytes) -> dict[str, Any]:
    """Return the reply map; raises ControlError when the host reported a failure."""
    value = _wire.unpack(data, _LIMITS, "control reply")
    if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
        raise DecodeError("control reply must be a map with a boolean 'ok'")
    if not value["ok"]:
        try:
            code = ErrorCode(value.get("code", ErrorCode.INVALID))
        except ValueError:
            code = ErrorCode.PROTOCOL
        sign = value.get("sign")
        raise ControlError(
            code,
            str(value.get("error", "unknown error")),
            sign=sign if code == ErrorCode.SIGN and isinstance(sign, list) else None,
        )
    return value


def _body_length(header: bytes) -> int:
    """The length a message header announces; ControlError (too large) past the limit."""
    (length,) = _HEADER.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise ControlError(
            ErrorCode.TOO_LARGE, f"control message of {length} bytes exceeds {MAX_MESSAGE_BYTES}"
        )
    return int(length)


async def _read_message(stream: trio.abc.ReceiveStream) -> bytes | None:
    header = await _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    body = await _read_exactly(stream, _body_length(header))
    if body is None:
        raise DecodeError("control connection closed in the middle of a message")
    return body


async def _read_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(min(n - len(buf), 1 << 20))
        if not chunk:
            if buf:
                raise DecodeError("control connection closed in the middle of a message")
            return None
        buf += chunk
    return bytes(buf)


async def _write_message(stream: trio.abc.SendStream, body: bytes) -> None:
    await stream.send_all(_HEADER.pack(len(body)) + body)


async def handle_request(data: bytes, dispatch: Dispatch) -> bytes:
    """Answer one encoded control request (used for channel 3 and the socket)."""
    try:
        op, args, meta = decode_envelope(data)
        return encode_reply(await dispatch(op, args, **meta), op=op)
    except MeshError as exc:
        return encode_reply(error=exc)


async def serve_unix(
    path: Path,
    dispatch: Dispatch,
    streamers: Mapping[str, Streamer],
    *,
    task_status: trio.TaskStatus[Path] | None = None,
) -> None:
    """Serve control requests on a Unix socket at ``path`` (mode 0600) until cancelled."""
    import trio

    if path.exists() or path.is_symlink():
        path.unlink()  # left by a crashed host; we own the data dir
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        await sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(64)
    listener = trio.SocketListener(sock)

    async def connection(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                while (data := await _read_message(stream)) is not None:
                    try:
                        op, args, meta = decode_envelope(data)
                    except MeshError as exc:
                        await _write_message(stream, encode_reply(error=exc))
                        return
                    if op in streamers:
                        # aclosing: when the client goes away the stream's
                        # generator ends now (unsubscribing), not at garbage
                        # collection.
                        async with contextlib.aclosing(streamers[op](args)) as events:
                            async for event in events:
                                await _write_message(stream, encode_event(event))
                        return
                    try:
                        reply = encode_reply(await dispatch(op, args, **meta), op=op)
                    except MeshError as exc:
                        reply = encode_reply(error=exc)
                    except Exception:  # a bug behind one op must not stop the host
                        log.exception("control op %r failed", op)
                        reply = encode_reply(
                            error=ControlError(
                                ErrorCode.UNAVAILABLE,
                                f"internal error in {op!r}; see the host's log",
                            )
                        )
                    await _write_message(stream, reply)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the CLI went away: nothing to answer
            except (DecodeError, ControlError) as exc:
                log.warning("control client sent a bad message: %s", exc)
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await _write_message(stream, encode_reply(error=exc))  # e.g. too large

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, connection, [listener])
            if task_status is not None:
                task_status.started(path)
    finally:
        with trio.CancelScope(shield=True):
            path.unlink(missing_ok=True)


def _no_host(path: Path, exc: OSError) -> LocalProtocolError:
    """What to tell the user when the control socket at ``path`` cannot be reached."""
    if isinstance(exc, PermissionError):
        return LocalProtocolError(
            f"permission denied on {path}: run as the user who started the host"
        )
    why = (
        f"no control socket at {path}"
        if isinstance(exc, FileNotFoundError)
        else f"nothing answers on {path}: the host was killed or crashed"
    )
    return LocalProtocolError(
        f"no meshhost host is running with data dir {path.parent} "
        f"({why}); start one with `meshhost up`"
    )


MAX_SIGN_ROUNDS = 3
"""Times a client signs the entries a host asks for before giving up (each round is a
new request; another writer getting in between every time is what ends it)."""


def request_blocking(
    path: Path, op: str, auth: Mapping[str, Any] | None = None, **args: Any
) -> Any:
    """:meth:`ControlClient.request` without trio: one request on a plain blocking
    socket, for a CLI command that makes one request and exits (``auth``: its
    operator signature, proto/spec/operators.md)."""
    return _request_blocking_once(path, op, auth, args)


def request_blocking_signed(path: Path, op: str, signer: Any, **args: Any) -> Any:
    """:func:`request_blocking` with the request signed by ``signer`` (``sign(op, args)``
    and ``sign_entries(entries)``, as ``cli.hostclient.Signer``), signing the directory
    entries the host asks for in a lattice with admins (code ``sign``)."""
    for round_ in range(MAX_SIGN_ROUNDS + 1):
        try:
            return _request_blocking_once(path, op, signer.sign(op, args), args)
        except ControlError as exc:
            if exc.sign is None or round_ == MAX_SIGN_ROUNDS:
                raise
            args = {**args, "entry_sigs": signer.sign_entries(exc.sign)}
    raise AssertionError("unreachable")


def _request_blocking_once(
    path: Path, op: str, auth: Mapping[str, Any] | None, args: Mapping[str, Any]
) -> Any:
    body = encode_request(op, args, auth=auth)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            raise _no_host(path, exc) from None
        sock.sendall(_HEADER.pack(len(body)) + body)
        data = _recv_message(sock)
    if data is None:
        raise ControlError(ErrorCode.UNAVAILABLE, "the host closed the connection")
    return decode_reply(data).get("result")


def _recv_message(sock: socket.socket) -> bytes | None:
    header = _recv_exactly(sock, _HEADER.size)
    if header is None:
        return None
    body = _recv_exactly(sock, _body_length(header))
    if body is None:
        raise DecodeError("control connection closed in the middle of a message")
    return body


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            if buf:
                raise DecodeError("control connection closed in the middle of a message")
            return None
        buf += chunk
    return bytes(buf)


class ControlClient:
    """Talks to the local host over its control socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sign: Callable[[str, Mapping[str, Any]], Mapping[str, Any] | None] | None = None
        """``sign(op, args)`` -> the ``auth`` map for a request (None: send it unsigned)."""
        self.sign_entries: Callable[[list[Any]], list[Any]] | None = None
        """``sign_entries(entries)`` -> ``entry_sigs`` for the entries a host asked the
        operator to sign (code ``sign``); None: such a request fails."""

    def _encode(self, op: str, args: Mapping[str, Any]) -> bytes:
        auth = self.sign(op, args) if self.sign is not None else None
        return encode_request(op, args, auth=auth)

    async def _connect(self) -> trio.SocketStream:
        import trio

        try:
            return await trio.open_unix_socket(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            raise _no_host(self.path, exc) from None

    async def request(self, op: str, **args: Any) -> Any:
        """Send one request; return its result or raise ControlError.

        When the host asks for the op's directory entries to be signed (a lattice
        with admins) and ``sign_entries`` is set, signs them and asks again.
        """
        for round_ in range(MAX_SIGN_ROUNDS + 1):
            try:
                return await self._request_once(op, args)
            except ControlError as exc:
                if exc.sign is None or self.sign_entries is None or round_ == MAX_SIGN_ROUNDS:
                    raise
                args = {**args, "entry_sigs": self.sign_entries(exc.sign)}
        raise AssertionError("unreachable")

    async def _request_once(self, op: str, args: Mapping[str, Any]) -> Any:
        stream = await self._connect()
        async with stream:
            await _write_message(stream, self._encode(op, args))
            data = await _read_message(stream)
        if data is None:
            raise ControlError(ErrorCode.UNAVAILABLE, "the host closed the connection")
        return decode_reply(data).get("result")

    async def stream(self, op: str, **args: Any) -> AsyncIterator[dict[str, Any]]:
        """Yield the events of a streaming op until the host or the caller stops."""
        stream = await self._connect()
        async with stream:
            await _write_message(stream, self._encode(op, args))
            while (data := await _read_message(stream)) is not None:
                reply = decode_reply(data)
                if "event" in reply:
                    yield reply["event"]
                else:
                    return
