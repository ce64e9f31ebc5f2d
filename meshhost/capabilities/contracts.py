"""Wire shapes of the wasmCloud 0.x contracts the built-in providers implement.

Each message is a frozen dataclass whose ``FIELDS`` list the Smithy members in
declaration order (the order ``rmp_serde::to_vec_named`` writes them), with
their wire names exactly as wasmCloud's interface definitions spell them
(``wasmCloud/interfaces``: ``keyvalue.smithy``, ``messaging.smithy``,
``httpserver.smithy``, ``httpclient.smithy``, ``logging.smithy``).
``decode(payload)`` raises only PayloadDecodeError; ``encode()`` returns the
msgpack bytes a wasmCloud actor would produce.  See proto/spec/capabilities.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

from meshhost.capabilities.providers.codec import Field, Kind, decode_struct, encode_struct

__all__ = [
    "HTTPCLIENT",
    "HTTPSERVER",
    "INVOCATION",
    "KEYVALUE",
    "LOGGING",
    "MESSAGING",
    "NUMBERGEN",
    "GetResponse",
    "Headers",
    "HttpClientRequest",
    "HttpRequest",
    "HttpResponse",
    "IncrementRequest",
    "KeysRequest",
    "ListAddRequest",
    "ListDelRequest",
    "ListRangeRequest",
    "LogEntry",
    "PubMessage",
    "RangeLimit",
    "ReplyMessage",
    "RequestMessage",
    "SetAddRequest",
    "SetDelRequest",
    "SetRequest",
    "SubMessage",
]

KEYVALUE = "wasmcloud:keyvalue"
LOGGING = "wasmcloud:builtin:logging"
MESSAGING = "wasmcloud:messaging"
HTTPSERVER = "wasmcloud:httpserver"
HTTPCLIENT = "wasmcloud:httpclient"
NUMBERGEN = "wasmcloud:builtin:numbergen"
INVOCATION = "meshhost:builtin:invocation"
"""meshhost's own: the id of the invocation a guest is running (for de-duplication)."""

Headers = dict[str, tuple[str, ...]]
"""Smithy ``HeaderMap``: header name -> list of values."""


class _Message:
    """Mixin: msgpack encode/decode driven by the class's FIELDS."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[Field, ...]]
    WHAT: ClassVar[str]

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        """Decode from msgpack; raises PayloadDecodeError naming the message and field."""
        return cls(**decode_struct(payload, cls.FIELDS, cls.WHAT))

    def encode(self) -> bytes:
        return encode_struct({f.attr: getattr(self, f.attr) for f in self.FIELDS}, self.FIELDS)


# --- wasmcloud:keyvalue (KeyValue service, version 0.1.1) -------------------


@dataclass(frozen=True, slots=True)
class GetResponse(_Message):
    value: str
    exists: bool
    FIELDS = (Field("value", "value", Kind.STR), Field("exists", "exists", Kind.BOOL))
    WHAT = "KeyValue GetResponse"


@dataclass(frozen=True, slots=True)
class SetRequest(_Message):
    key: str
    value: str
    expires: int = 0
    """Seconds until the value is deleted; 0 = never."""
    FIELDS = (
        Field("key", "key", Kind.STR),
        Field("value", "value", Kind.STR),
        Field("expires", "expires", Kind.U32),
    )
    WHAT = "KeyValue SetRequest"


@dataclass(frozen=True, slots=True)
class IncrementRequest(_Message):
    key: str
    value: int
    FIELDS = (Field("key", "key", Kind.STR), Field("value", "value", Kind.I32))
    WHAT = "KeyValue IncrementRequest"


@dataclass(frozen=True, slots=True)
class ListAddRequest(_Message):
    list_name: str
    value: str
    FIELDS = (Field("listName", "list_name", Kind.STR), Field("value", "value", Kind.STR))
    WHAT = "KeyValue ListAddRequest"


@dataclass(frozen=True, slots=True)
class ListDelRequest(_Message):
    list_name: str
    value: str
    FIELDS = (Field("listName", "list_name", Kind.STR), Field("value", "value", Kind.STR))
    WHAT = "KeyValue ListDelRequest"


@dataclass(frozen=True, slots=True)
class ListRangeRequest(_Message):
    list_name: str
    start: int
    stop: int
    FIELDS = (
        Field("listName", "list_name", Kind.STR),
        Field("start", "start", Kind.I32),
        Field("stop", "stop", Kind.I32),
    )
    WHAT = "KeyValue ListRangeRequest"


@dataclass(frozen=True, slots=True)
class SetAddRequest(_Message):
    set_name: str
    value: str
    FIELDS = (Field("setName", "set_name", Kind.STR), Field("value", "value", Kind.STR))
    WHAT = "KeyValue SetAddRequest"


@dataclass(frozen=True, slots=True)
class SetDelRequest(_Message):
    set_name: str
    value: str
    FIELDS = (Field("setName", "set_name", Kind.STR), Field("value", "value", Kind.STR))
    WHAT = "KeyValue SetDelRequest"


@dataclass(frozen=True, slots=True)
class KeysRequest(_Message):
    glob_expression: str | None = None
    config: str | None = None
    FIELDS = (
        Field("globExpression", "glob_expression", Kind.OPT_STR),
        Field("config", "config", Kind.OPT_STR),
    )
    WHAT = "KeyValue KeysRequest"


# --- wasmcloud:builtin:logging (Logging service) ------------------------------


@dataclass(frozen=True, slots=True)
class LogEntry(_Message):
    level: str
    """debug, info, warn or error."""
    text: str
    FIELDS = (Field("level", "level", Kind.STR), Field("text", "text", Kind.STR))
    WHAT = "Logging LogEntry"


# --- wasmcloud:messaging (Messaging + MessageSubscriber services) -----------


_MSG_FIELDS = (
    Field("subject", "subject", Kind.STR),
    Field("replyTo", "reply_to", Kind.OPT_STR),
    Field("body", "body", Kind.BYTES),
)


@dataclass(frozen=True, slots=True)
class PubMessage(_Message):
    """Messaging.Publish input."""

    subject: str
    reply_to: str | None
    body: bytes
    FIELDS = _MSG_FIELDS
    WHAT = "Messaging PubMessage"


@dataclass(frozen=True, slots=True)
class SubMessage(_Message):
    """MessageSubscriber.HandleMessage input (delivered to subscribed actors)."""

    subject: str
    reply_to: str | None
    body: bytes
    FIELDS = _MSG_FIELDS
    WHAT = "Messaging SubMessage"


@dataclass(frozen=True, slots=True)
class ReplyMessage(_Message):
    """Messaging.Request output."""

    subject: str
    reply_to: str | None
    body: bytes
    FIELDS = _MSG_FIELDS
    WHAT = "Messaging ReplyMessage"


@dataclass(frozen=True, slots=True)
class RequestMessage(_Message):
    """Messaging.Request input."""

    subject: str
    body: bytes
    timeout_ms: int
    FIELDS = (
        Field("subject", "subject", Kind.STR),
        Field("body", "body", Kind.BYTES),
        Field("timeoutMs", "timeout_ms", Kind.U32),
    )
    WHAT = "Messaging RequestMessage"


# --- wasmcloud:httpserver (HttpServer service, actorReceive) ----------------


@dataclass(frozen=True, slots=True)
class HttpRequest(_Message):
    """HttpServer.HandleRequest input, built by the HTTP server provider."""

    method: str
    path: str
    query_string: str
    header: Headers = field(default_factory=dict)
    body: bytes = b""
    FIELDS = (
        Field("method", "method", Kind.STR),
        Field("path", "path", Kind.STR),
        Field("queryString", "query_string", Kind.STR),
        Field("header", "header", Kind.HEADERS),
        Field("body", "body", Kind.BYTES),
    )
    WHAT = "HttpServer HttpRequest"


@dataclass(frozen=True, slots=True)
class HttpResponse(_Message):
    """HttpServer.HandleRequest output and HttpClient.Request output (same shape)."""

    status_code: int
    header: Headers = field(default_factory=dict)
    body: bytes = b""
    FIELDS = (
        Field("statusCode", "status_code", Kind.U16),
        Field("header", "header", Kind.HEADERS),
        Field("body", "body", Kind.BYTES),
    )
    WHAT = "HttpResponse"


# --- wasmcloud:httpclient (HttpClient service) ------------------------------


@dataclass(frozen=True, slots=True)
class HttpClientRequest(_Message):
    """HttpClient.Request input."""

    method: str
    url: str
    headers: Headers = field(default_factory=dict)
    body: bytes = b""
    FIELDS = (
        Field("method", "method", Kind.STR),
        Field("url", "url", Kind.STR),
        Field("headers", "headers", Kind.HEADERS),
        Field("body", "body", Kind.BYTES),
    )
    WHAT = "HttpClient HttpRequest"


# --- wasmcloud:builtin:numbergen (NumberGen service) ------------------------


@dataclass(frozen=True, slots=True)
class RangeLimit(_Message):
    """NumberGen.RandomInRange input; the result is >= min and <= max."""

    min: int
    max: int
    FIELDS = (Field("min", "min", Kind.U32), Field("max", "max", Kind.U32))
    WHAT = "NumberGen RangeLimit"
