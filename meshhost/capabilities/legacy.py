"""Wire shapes of the two provider interface generations before wasmbus.

Real actors of every wasmCloud 0.x generation must run unchanged, and each
generation named its contracts, operations and payload members its own way:

* **waSCC** (``wascc-codec`` crate, ``src/keyvalue.rs``, ``src/logging.rs``,
  ``src/messaging.rs``, ``src/extras.rs``, ``src/http.rs``): contract ids
  ``wascc:keyvalue``, ``wascc:logging``, ``wascc:extras``, …; bare operation
  names (``Add``, ``WriteLog``); structs with ``#[serde(rename_all =
  "camelCase")]`` and a few explicit renames (``expires_s`` → ``expires``).
* **wasmCloud 0.1x-0.18** (the ``wasmcloud_actor_*`` crates generated from
  ``wasmCloud/actor-interfaces`` ``*/ *.widl``, e.g.
  ``keyvalue/rust/src/generated.rs``): contract ids ``wasmcloud:keyvalue``,
  ``wasmcloud:logging``, ``wasmcloud:extras``, …; the same bare operation
  names; every member renamed explicitly to its widl name (mostly as in
  waSCC, but ``SetOperationResponse.new_count`` where waSCC wrote
  ``newCount``).

Both encode with ``rmp_serde`` ``Serializer::with_struct_map()``: a
structure is a msgpack map keyed by those names, in declaration order,
integers in their shortest form, ``Vec<u8>`` marked ``serde_bytes`` as
``bin``.  The decoders here are as lenient as the wasmbus ones
(``providers/codec.py``): positional arrays, missing members as zero values.

This module only holds the shapes (a :class:`Shape` per structure); the
providers map each old operation onto their wasmbus one, so every
generation shares one store, one subscription table, one logger.  See
proto/spec/capabilities.md, "Older interface generations".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshhost.capabilities.providers.codec import Field, Kind, decode_struct, encode_struct

__all__ = [
    "LEGACY_UNLINKED",
    "WASCC_EXTRAS",
    "WASCC_KEYVALUE",
    "WASCC_LOGGING",
    "WASMCLOUD_EXTRAS",
    "WASMCLOUD_LOGGING",
    "Shape",
]

WASCC_KEYVALUE = "wascc:keyvalue"
WASCC_LOGGING = "wascc:logging"
WASCC_EXTRAS = "wascc:extras"
WASMCLOUD_LOGGING = "wasmcloud:logging"
WASMCLOUD_EXTRAS = "wasmcloud:extras"
LEGACY_UNLINKED = frozenset({WASCC_EXTRAS, WASMCLOUD_EXTRAS})
"""Served in the host with no link, as both generations' hosts did (claims still needed;
actor-interfaces extras README: "Every wasmCloud host runtime automatically comes with a
built-in extras provider. However, actors ... will still need to be signed with the
wasmcloud:extras capability contract ID")."""


@dataclass(frozen=True, slots=True)
class Shape:
    """One structure of an older generation: its name (for errors) and members in order."""

    name: str
    fields: tuple[Field, ...]

    def decode(self, payload: bytes) -> dict[str, Any]:
        """``{attr: value}``; raises PayloadDecodeError naming the structure and member."""
        return decode_struct(payload, self.fields, self.name)

    def encode(self, **values: Any) -> bytes:
        return encode_struct(values, self.fields)


def _f(wire: str, kind: Kind, attr: str | None = None) -> Field:
    return Field(wire, attr or wire, kind)


# --- keyvalue: the same requests in both generations ---------------------------------
# (wascc-codec src/keyvalue.rs; actor-interfaces keyvalue/rust/src/generated.rs *Args)

KEY = Shape("KeyRequest", (_f("key", Kind.STR),))
"""GetArgs, DelArgs, ClearArgs, SetQueryArgs, KeyExistsArgs (waSCC: GetRequest, …)."""
KEY_VALUE = Shape("KeyValueRequest", (_f("key", Kind.STR), _f("value", Kind.STR)))
"""PushArgs, ListItemDeleteArgs, SetAddArgs, SetRemoveArgs."""
ADD = Shape("AddArgs", (_f("key", Kind.STR), _f("value", Kind.I32)))
SET = Shape("SetArgs", (_f("key", Kind.STR), _f("value", Kind.STR), _f("expires", Kind.I32)))
RANGE = Shape("RangeArgs", (_f("key", Kind.STR), _f("start", Kind.I32), _f("stop", Kind.I32)))
KEYS = Shape("KeysArgs", (_f("keys", Kind.STR_LIST),))
"""SetUnionArgs, SetIntersectionArgs."""

GET_RESPONSE = Shape("GetResponse", (_f("value", Kind.STR), _f("exists", Kind.BOOL)))
ADD_RESPONSE = Shape("AddResponse", (_f("value", Kind.I32),))
SET_RESPONSE = Shape("SetResponse", (_f("value", Kind.STR),))
DEL_RESPONSE = Shape("DelResponse", (_f("key", Kind.STR),))
VALUES_RESPONSE = Shape("ListRangeResponse", (_f("values", Kind.STR_LIST),))
"""ListRangeResponse and SetQueryResponse."""
LIST_RESPONSE = Shape("ListResponse", (_f("newCount", Kind.I32, "new_count"),))
SET_OP_RESPONSE = {
    # waSCC: #[serde(rename_all = "camelCase")]; actor-interfaces: #[serde(rename = "new_count")]
    "wascc": Shape("SetOperationResponse", (_f("newCount", Kind.I32, "new_count"),)),
    "wasmcloud": Shape("SetOperationResponse", (_f("new_count", Kind.I32),)),
}


def generation_of(contract_id: str) -> str:
    """``"wascc"`` for a waSCC contract id, else ``"wasmcloud"``."""
    return "wascc" if contract_id.startswith("wascc:") else "wasmcloud"


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded structure as a plain dict (lists of strings as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


# --- logging ----------------------------------------------------------------------
# waSCC: wascc-codec src/logging.rs, operation "WriteLog", #[serde(rename_all = "camelCase")]
WASCC_WRITE_LOG = Shape("WriteLogRequest", (_f("level", Kind.U32), _f("body", Kind.STR)))
WASCC_LOG_LEVELS = {0: None, 1: "error", 2: "warn", 3: "info", 4: "debug", 5: "trace"}
"""waSCC's numeric levels ("OFF"=0 … "TRACE"=5); OFF is not logged."""
# actor-interfaces logging/logging.widl: WriteLog(target, level, text): void
WASMCLOUD_WRITE_LOG = Shape(
    "WriteLogArgs", (_f("target", Kind.STR), _f("level", Kind.STR), _f("text", Kind.STR))
)

# --- extras -----------------------------------------------------------------------
# The hosts' own extras providers (wascc-host and wasmCloud 0.18 `extras.rs`) read a
# GeneratorRequest and answer a GeneratorResult (actor-interfaces schemas/extras.widl,
# member names exactly so: sequenceNumber but random_number); the wasmcloud-actor-extras
# crate (actor-interfaces extras/extras.widl, generated.rs) sends RequestGuidArgs {} /
# RequestRandomArgs {min, max} / RequestSequenceArgs {} and reads a bare String / u32 / u64.
GENERATOR_REQUEST = Shape(
    "GeneratorRequest",
    (
        _f("guid", Kind.BOOL),
        _f("sequence", Kind.BOOL),
        _f("random", Kind.BOOL),
        _f("min", Kind.U32),
        _f("max", Kind.U32),
    ),
)
GENERATOR_RESULT = Shape(
    "GeneratorResult",
    (
        _f("guid", Kind.OPT_STR),
        _f("sequenceNumber", Kind.U64, "sequence_number"),
        _f("random_number", Kind.U32),
    ),
)
RANDOM_ARGS = Shape("RequestRandomArgs", (_f("min", Kind.U32), _f("max", Kind.U32)))
GENERATOR_REQUEST_KEYS = frozenset({"guid", "sequence", "random"})
"""A map with any of these keys is a GeneratorRequest (answered with a GeneratorResult)."""


# --- messaging ----------------------------------------------------------------------
# waSCC: wascc-codec src/messaging.rs (rename_all camelCase; RequestMessage.timeout_ms
# renamed "timeout"); wasmCloud 0.1x: actor-interfaces messaging/messaging.widl,
# messaging/rust/src/generated.rs (PublishArgs, RequestArgs, PublishResponse,
# BrokerMessage).  Both: body is serde_bytes (msgpack bin).
WASCC_MESSAGING = "wascc:messaging"
BROKER_MESSAGE = Shape(
    "BrokerMessage",
    (_f("subject", Kind.STR), _f("replyTo", Kind.STR, "reply_to"), _f("body", Kind.BYTES)),
)
"""waSCC's Publish input and both generations' delivered message; wasmCloud 0.1x's
PublishArgs and Request answer have the same members."""
REQUEST_ARGS = Shape(
    "RequestArgs", (_f("subject", Kind.STR), _f("body", Kind.BYTES), _f("timeout", Kind.I64))
)
"""waSCC RequestMessage / wasmCloud 0.1x RequestArgs; timeout in milliseconds."""
PUBLISH_RESPONSE = Shape("PublishResponse", (_f("published", Kind.BOOL),))
WASCC_DELIVER_MESSAGE = "DeliverMessage"
"""What waSCC's messaging provider called on a subscribed actor (wascc-codec OP_DELIVER_MESSAGE)."""
WASMCLOUD_HANDLE_MESSAGE = "HandleMessage"
"""wasmCloud 0.1x's subscriber operation (actor-interfaces messaging generated.rs)."""

# --- telling a wasmCloud 0.1x actor from a wasmbus one ---------------------------------
# Both sign for wasmcloud:messaging / wasmcloud:httpserver, so a provider cannot tell from
# the link which operation the actor registered.  It calls the wasmbus operation; a guest
# that has no handler for it answers so without running anything (waPC guest SDKs:
# "No handler registered for function …", AssemblyScript: "Could not find function …"),
# and the provider calls the 0.1x operation instead.
_MISSING_HANDLER = ("no handler registered", "could not find function")


def is_missing_handler(exc: BaseException) -> bool:
    """True if an actor's error says it has no handler for the operation called."""
    text = str(exc).lower()
    return any(marker in text for marker in _MISSING_HANDLER)


# --- HTTP server ----------------------------------------------------------------------
# waSCC: wascc-codec src/http.rs (Request/Response, rename_all camelCase, body serde_bytes,
# header HashMap<String, String>); wasmCloud 0.1x: actor-interfaces http-server/httpserver.widl
# and http-server/rust/src/generated.rs (the same members).  Operation "HandleRequest".
WASCC_HTTP_SERVER = "wascc:http_server"
OLD_HANDLE_REQUEST = "HandleRequest"
OLD_HTTP_REQUEST = Shape(
    "Request",
    (
        _f("method", Kind.STR),
        _f("path", Kind.STR),
        _f("queryString", Kind.STR, "query_string"),
        _f("header", Kind.STR_MAP),
        _f("body", Kind.BYTES),
    ),
)
OLD_HTTP_RESPONSE = Shape(
    "Response",
    (
        _f("statusCode", Kind.U32, "status_code"),
        _f("status", Kind.STR),
        _f("header", Kind.STR_MAP),
        _f("body", Kind.BYTES),
    ),
)

WASCC_HTTP_CLIENT = "wascc:http_client"

# --- HTTP client (wasmCloud 0.1x; actor-interfaces http-client/httpclient.widl) ---------
# Request(method, url, headers: {string: string}, body: bytes): Response (as the server's)
OLD_CLIENT_REQUEST = Shape(
    "RequestArgs",
    (
        _f("method", Kind.STR),
        _f("url", Kind.STR),
        _f("headers", Kind.STR_MAP),
        _f("body", Kind.BYTES),
    ),
)
