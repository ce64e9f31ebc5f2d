"""Key-value operations of the waSCC and wasmCloud 0.1x-0.18 generations.

Both generations call the key-value provider with the same bare operation
names and argument members (``wascc-codec`` ``src/keyvalue.rs``;
``wasmCloud/actor-interfaces`` ``keyvalue/keyvalue.widl`` and
``keyvalue/rust/src/generated.rs``); only the contract id (``wascc:keyvalue``
vs ``wasmcloud:keyvalue``) and one response member
(``SetOperationResponse.newCount`` vs ``new_count``) differ.  Each operation
maps onto the wasmbus one on the same store, so data written by an old actor
is read by a new one.  Semantics follow the reference Redis provider of
those generations (``wasmCloud/capability-providers`` ``redis/src/lib.rs``):

| operation | Redis | answer |
| --- | --- | --- |
| ``Get`` | GET | ``GetResponse {value, exists}`` |
| ``Add`` | INCRBY | ``AddResponse {value}`` (the new value) |
| ``Set`` | SET (``expires`` seconds > 0 honoured) | ``SetResponse {value}`` (the value set) |
| ``Del``, ``Clear`` | DEL (a key of any kind) | ``DelResponse {key}`` |
| ``Range`` | LRANGE (inclusive, negative from the end) | ``ListRangeResponse {values}`` |
| ``Push`` | LPUSH (to the *front*) | ``ListResponse {newCount}`` (new length) |
| ``ListItemDelete`` | LREM 0 (every occurrence) | ``ListResponse {newCount}`` (how many removed) |
| ``SetAdd`` / ``SetRemove`` | SADD / SREM | ``SetOperationResponse`` (1 or 0) |
| ``SetUnion``, ``SetIntersection``, ``SetQuery`` | SUNION, SINTER, SMEMBERS | sorted values |
| ``KeyExists`` | EXISTS | ``GetResponse {value: "", exists}`` |
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Protocol

from meshhost.capabilities import legacy as lg
from meshhost.capabilities.contracts import (
    IncrementRequest,
    ListRangeRequest,
    SetAddRequest,
    SetDelRequest,
    SetRequest,
)
from meshhost.capabilities.providers.codec import Kind, decode_value, encode_value

if TYPE_CHECKING:
    from meshhost.capabilities.providers.base import CallContext

__all__ = ["LEGACY_KV_OPERATIONS", "LegacyKeyValueOps", "edit_list_rows"]

LEGACY_KV_OPERATIONS: dict[str, str] = {
    "Get": "legacy_get",
    "Add": "legacy_add",
    "Set": "legacy_set",
    "Del": "legacy_del",
    "Clear": "legacy_del",
    "Range": "legacy_range",
    "Push": "legacy_push",
    "ListItemDelete": "legacy_list_item_delete",
    "SetAdd": "legacy_set_add",
    "SetRemove": "legacy_set_remove",
    "SetUnion": "legacy_set_union",
    "SetIntersection": "legacy_set_intersection",
    "SetQuery": "legacy_set_query",
    "KeyExists": "legacy_key_exists",
}


class _KV(Protocol):
    """What the mixin uses of :class:`KeyValueProvider`."""

    def op_get(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_set(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_del(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_contains(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_increment(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_list_range(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_set_add(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_set_del(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_set_query(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_set_union(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def op_set_intersection(self, ctx: CallContext, payload: bytes) -> bytes: ...
    def list_edit(self, ctx: CallContext, key: str, value: str, *, push_front: bool) -> int: ...
    def _key(self, ctx: CallContext, payload: bytes) -> str: ...


class LegacyKeyValueOps:
    """Mixin for :class:`KeyValueProvider`: the old operations, on its store."""

    @staticmethod
    def _what(ctx: CallContext, shape: lg.Shape) -> lg.Shape:
        return lg.Shape(f"{ctx.link.contract_id} {shape.name}", shape.fields)

    def _key(self: _KV, ctx: CallContext, payload: bytes) -> str:
        key: str = LegacyKeyValueOps._what(ctx, lg.KEY).decode(payload)["key"]
        return key

    def legacy_get(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        # GetResponse {value, exists} is the same shape in every generation
        return self.op_get(ctx, encode_value(self._key(ctx, payload), Kind.STR))

    def legacy_add(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        req = LegacyKeyValueOps._what(ctx, lg.ADD).decode(payload)
        new = decode_value(
            self.op_increment(ctx, IncrementRequest(**req).encode()), Kind.I32, "increment"
        )
        return lg.ADD_RESPONSE.encode(value=new)

    def legacy_set(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        req = LegacyKeyValueOps._what(ctx, lg.SET).decode(payload)
        self.op_set(ctx, SetRequest(req["key"], req["value"], max(req["expires"], 0)).encode())
        return lg.SET_RESPONSE.encode(value=req["value"])

    def legacy_del(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        key = self._key(ctx, payload)
        self.op_del(ctx, encode_value(key, Kind.STR))
        return lg.DEL_RESPONSE.encode(key=key)

    def legacy_range(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        req = LegacyKeyValueOps._what(ctx, lg.RANGE).decode(payload)
        values = self.op_list_range(
            ctx, ListRangeRequest(req["key"], req["start"], req["stop"]).encode()
        )
        return _values(values)

    def legacy_push(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        req = LegacyKeyValueOps._what(ctx, lg.KEY_VALUE).decode(payload)
        size = self.list_edit(ctx, req["key"], req["value"], push_front=True)
        return lg.LIST_RESPONSE.encode(new_count=size)

    def legacy_list_item_delete(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        req = LegacyKeyValueOps._what(ctx, lg.KEY_VALUE).decode(payload)
        removed = self.list_edit(ctx, req["key"], req["value"], push_front=False)
        return lg.LIST_RESPONSE.encode(new_count=removed)

    def legacy_set_add(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        req = LegacyKeyValueOps._what(ctx, lg.KEY_VALUE).decode(payload)
        count = self.op_set_add(ctx, SetAddRequest(req["key"], req["value"]).encode())
        return _set_op(ctx, count)

    def legacy_set_remove(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        req = LegacyKeyValueOps._what(ctx, lg.KEY_VALUE).decode(payload)
        count = self.op_set_del(ctx, SetDelRequest(req["key"], req["value"]).encode())
        return _set_op(ctx, count)

    def legacy_set_union(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        keys = list(LegacyKeyValueOps._what(ctx, lg.KEYS).decode(payload)["keys"])
        return _values(self.op_set_union(ctx, encode_value(keys, Kind.STR_LIST)))

    def legacy_set_intersection(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        keys = list(LegacyKeyValueOps._what(ctx, lg.KEYS).decode(payload)["keys"])
        return _values(self.op_set_intersection(ctx, encode_value(keys, Kind.STR_LIST)))

    def legacy_set_query(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        key = self._key(ctx, payload)
        return _values(self.op_set_query(ctx, encode_value(key, Kind.STR)))

    def legacy_key_exists(self: _KV, ctx: CallContext, payload: bytes) -> bytes:
        key = self._key(ctx, payload)
        exists = decode_value(
            self.op_contains(ctx, encode_value(key, Kind.STR)), Kind.BOOL, "contains"
        )
        return lg.GET_RESPONSE.encode(value="", exists=exists)


def _values(list_answer: bytes) -> bytes:
    values: Any = decode_value(list_answer, Kind.STR_LIST, "values")
    return lg.VALUES_RESPONSE.encode(values=list(values))


def _set_op(ctx: CallContext, count_answer: bytes) -> bytes:
    count = decode_value(count_answer, Kind.U32, "count")
    return lg.SET_OP_RESPONSE[lg.generation_of(ctx.link.contract_id)].encode(new_count=count)


def edit_list_rows(db: sqlite3.Connection, key: str, value: str, *, push_front: bool) -> int:
    """LPUSH (returns the new length) or LREM 0 (returns how many were removed) on list rows.

    The caller holds the transaction and has checked that ``key`` is a list
    (or absent, for a push, after creating it).
    """
    if push_front:
        (first,) = db.execute("SELECT MIN(pos) FROM list_items WHERE key = ?", (key,)).fetchone()
        db.execute(
            "INSERT INTO list_items (key, pos, value) VALUES (?, ?, ?)",
            (key, 0 if first is None else first - 1, value),
        )
        (size,) = db.execute("SELECT COUNT(*) FROM list_items WHERE key = ?", (key,)).fetchone()
        return int(size)
    removed = db.execute(
        "DELETE FROM list_items WHERE key = ? AND value = ?", (key, value)
    ).rowcount
    return int(removed)
