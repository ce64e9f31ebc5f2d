"""``wasmcloud:keyvalue``: a persistent key-value store in SQLite, one database per namespace.

Operations and shapes are wasmCloud's ``KeyValue`` service (keyvalue.smithy
0.1.1); semantics follow the Redis provider wasmCloud shipped as the
reference implementation: one key space holding strings, lists and sets
(an operation on a key of the wrong kind fails, as Redis' WRONGTYPE does),
``Set`` replaces a key of any kind, a list or set that becomes empty stops
existing, ``ListRange`` indices are inclusive and may be negative (from the
end), ``Set`` with ``expires`` > 0 makes the value vanish after that many
seconds.

Durability: every write is its own transaction, committed (WAL,
``synchronous=FULL``, so fsync'd) before the answer goes back to the actor:
an acknowledged write survives a crash of the host.

Namespaces: each link gets its own database file under the provider's
directory (``<data dir>/kv/``).  The namespace is the link config value
``NAMESPACE`` if given (several links may share one), else
``<actor id>-<link name>``, so actors never see each other's data unless
their links say so.  Data outlives the link; ``del_link`` only closes the
database when no other link uses it.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from meshhost.capabilities.contracts import (
    KEYVALUE,
    GetResponse,
    IncrementRequest,
    KeysRequest,
    ListAddRequest,
    ListDelRequest,
    ListRangeRequest,
    SetAddRequest,
    SetDelRequest,
    SetRequest,
)
from meshhost.capabilities.legacy import WASCC_KEYVALUE
from meshhost.capabilities.links import LinkDefinition, LinkKey
from meshhost.capabilities.providers.base import CallContext, Provider
from meshhost.capabilities.providers.codec import Kind, decode_value, encode_value
from meshhost.capabilities.providers.kv_legacy import (
    LEGACY_KV_OPERATIONS,
    LegacyKeyValueOps,
    edit_list_rows,
)
from meshhost.datadir import make_private_dir
from meshhost.errors import LinkConfigError, ProviderError, ProviderPayloadTooLarge

__all__ = ["MAX_KEY_BYTES", "MAX_VALUE_BYTES", "KeyValueProvider", "namespace_for"]

MAX_KEY_BYTES = 8 * 1024
"""Longest key (UTF-8 bytes); far above real use, keeps indexes sane."""

MAX_VALUE_BYTES = 16 * 1024 * 1024
"""Largest string value or list/set member; bigger blobs belong in a blob store."""

NAMESPACE_KEY = "NAMESPACE"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('string', 'list', 'set')),
    value TEXT,
    expires_ms INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_items (
    key TEXT NOT NULL,
    pos INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (key, pos)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS set_items (
    key TEXT NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (key, member)
) WITHOUT ROWID;
"""


def namespace_for(link: LinkDefinition) -> str:
    """The namespace a link's data lives in (see the module docstring)."""
    configured = link.value(NAMESPACE_KEY)
    if configured is not None:
        if not configured.strip():
            raise LinkConfigError(f"{link.describe()}: {NAMESPACE_KEY} must not be empty")
        return configured
    return f"{link.actor_id}-{link.link_name}"


def _file_name(namespace: str) -> str:
    if _SAFE_NAME.match(namespace):
        return f"{namespace}.sqlite3"
    digest = hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"ns-{digest}.sqlite3"


def _check_size(text: str, limit: int, what: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ProviderPayloadTooLarge(f"{what} of {size} bytes exceeds the {limit} byte limit")


class _Store:
    """One namespace: a SQLite database shared by the worker threads (serialized by a lock)."""

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        # SQLite gives its -wal and -shm files the database file's mode: make that 0600.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed before returning (or rolled back on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def kind(self, db: sqlite3.Connection, key: str) -> str | None:
        """Kind of ``key`` (None if absent); removes the key if it has expired."""
        row = db.execute("SELECT kind, expires_ms FROM keys WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] is not None and row[1] <= self.now_ms():
            self.drop(db, key)
            return None
        return str(row[0])

    def expect(self, db: sqlite3.Connection, key: str, kind: str) -> bool:
        """True if ``key`` exists as ``kind``; False if absent; ProviderError if another kind."""
        found = self.kind(db, key)
        if found is not None and found != kind:
            raise ProviderError(f"key {key!r} holds a {found}, not a {kind}")
        return found is not None

    @staticmethod
    def drop(db: sqlite3.Connection, key: str) -> bool:
        gone = db.execute("DELETE FROM keys WHERE key = ?", (key,)).rowcount > 0
        db.execute("DELETE FROM list_items WHERE key = ?", (key,))
        db.execute("DELETE FROM set_items WHERE key = ?", (key,))
        return gone


class KeyValueProvider(LegacyKeyValueOps, Provider):
    """wasmbus ``KeyValue.*`` operations, plus the bare ones (``Add``, ``Push``…) of
    waSCC (``wascc:keyvalue``) and wasmCloud 0.1x-0.18 (``kv_legacy``)."""

    contract_id = KEYVALUE
    CONTRACT_ALIASES = (WASCC_KEYVALUE,)
    OPERATIONS: ClassVar[dict[str, str]] = {
        **LEGACY_KV_OPERATIONS,
        "KeyValue.Get": "op_get",
        "KeyValue.Set": "op_set",
        "KeyValue.Del": "op_del",
        "KeyValue.Contains": "op_contains",
        "KeyValue.Increment": "op_increment",
        "KeyValue.Keys": "op_keys",
        "KeyValue.ListAdd": "op_list_add",
        "KeyValue.ListDel": "op_list_del",
        "KeyValue.ListRange": "op_list_range",
        "KeyValue.ListClear": "op_list_clear",
        "KeyValue.SetAdd": "op_set_add",
        "KeyValue.SetDel": "op_set_del",
        "KeyValue.SetQuery": "op_set_query",
        "KeyValue.SetUnion": "op_set_union",
        "KeyValue.SetIntersection": "op_set_intersection",
        "KeyValue.SetClear": "op_set_clear",
    }

    def __init__(self, directory: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        """Keep databases under ``directory`` (the host's ``<data dir>/kv``)."""
        super().__init__()
        self.directory = Path(directory)
        self._clock = clock
        self._lock = threading.Lock()
        self._stores: dict[str, _Store] = {}
        self._link_ns: dict[LinkKey, str] = {}

    # --- links and stores -------------------------------------------------

    def _store(self, link: LinkDefinition) -> _Store:
        namespace = namespace_for(link)
        with self._lock:
            self._link_ns[link.key] = namespace
            store = self._stores.get(namespace)
            if store is None:
                try:
                    make_private_dir(self.directory)
                    store = _Store(self.directory / _file_name(namespace), self._clock)
                except (OSError, sqlite3.Error) as exc:
                    raise ProviderError(
                        f"cannot open key-value namespace {namespace!r} in {self.directory}: "
                        f"{exc}; check that it is a writable directory"
                    ) from exc
                self._stores[namespace] = store
            return store

    async def on_put_link(self, link: LinkDefinition) -> None:
        self._store(link)

    async def on_del_link(self, link: LinkDefinition) -> None:
        with self._lock:
            namespace = self._link_ns.pop(link.key, None)
            if namespace is None or namespace in self._link_ns.values():
                return
            store = self._stores.pop(namespace, None)
        if store is not None:
            store.close()

    def close(self) -> None:
        """Close every database (the data stays on disk)."""
        with self._lock:
            stores = list(self._stores.values())
            self._stores.clear()
            self._link_ns.clear()
        for store in stores:
            store.close()

    async def aclose(self) -> None:
        self.close()

    def namespaces_open(self) -> list[str]:
        with self._lock:
            return sorted(self._stores)

    # --- strings -----------------------------------------------------------

    def op_get(self, ctx: CallContext, payload: bytes) -> bytes:
        key = decode_value(payload, Kind.STR, "KeyValue.Get key")
        store = self._store(ctx.link)
        with store.tx() as db:
            if not store.expect(db, key, "string"):
                return GetResponse("", False).encode()
            row = db.execute("SELECT value FROM keys WHERE key = ?", (key,)).fetchone()
        return GetResponse(row[0], True).encode()

    def op_set(self, ctx: CallContext, payload: bytes) -> bytes:
        req = SetRequest.decode(payload)
        _check_size(req.key, MAX_KEY_BYTES, "key")
        _check_size(req.value, MAX_VALUE_BYTES, "value")
        store = self._store(ctx.link)
        expires = store.now_ms() + req.expires * 1000 if req.expires else None
        with store.tx() as db:
            store.drop(db, req.key)
            db.execute(
                "INSERT INTO keys (key, kind, value, expires_ms) VALUES (?, 'string', ?, ?)",
                (req.key, req.value, expires),
            )
        return b""

    def op_del(self, ctx: CallContext, payload: bytes) -> bytes:
        key = decode_value(payload, Kind.STR, "KeyValue.Del key")
        store = self._store(ctx.link)
        with store.tx() as db:
            existed = store.kind(db, key) is not None
            store.drop(db, key)
        return encode_value(existed, Kind.BOOL)

    def op_contains(self, ctx: CallContext, payload: bytes) -> bytes:
        key = decode_value(payload, Kind.STR, "KeyValue.Contains key")
        store = self._store(ctx.link)
        with store.tx() as db:
            exists = store.kind(db, key) is not None
        return encode_value(exists, Kind.BOOL)

    def op_increment(self, ctx: CallContext, payload: bytes) -> bytes:
        req = IncrementRequest.decode(payload)
        _check_size(req.key, MAX_KEY_BYTES, "key")
        store = self._store(ctx.link)
        with store.tx() as db:
            if store.expect(db, req.key, "string"):
                current = db.execute("SELECT value FROM keys WHERE key = ?", (req.key,)).fetchone()
                try:
                    value = int(current[0].strip())
                except ValueError:
                    raise ProviderError(
                        f"key {req.key!r} holds {current[0][:40]!r}, which is not an integer"
                    ) from None
                new = value + req.value
                if not -(2**31) <= new < 2**31:
                    raise ProviderError(
                        f"incrementing key {req.key!r} by {req.value} gives {new}, "
                        "outside the I32 range the contract returns"
                    )
                db.execute("UPDATE keys SET value = ? WHERE key = ?", (str(new), req.key))
            else:
                new = req.value
                db.execute(
                    "INSERT INTO keys (key, kind, value) VALUES (?, 'string', ?)",
                    (req.key, str(new)),
                )
        return encode_value(new, Kind.I32)

    def op_keys(self, ctx: CallContext, payload: bytes) -> bytes:
        req = KeysRequest.decode(payload) if payload else KeysRequest()
        store = self._store(ctx.link)
        now = store.now_ms()
        with store.tx() as db:
            rows = db.execute(
                "SELECT key FROM keys WHERE (expires_ms IS NULL OR expires_ms > ?)"
                " AND key GLOB ? ORDER BY key",
                (now, req.glob_expression or "*"),
            ).fetchall()
        return encode_value([r[0] for r in rows], Kind.STR_LIST)

    # --- lists -------------------------------------------------------------

    def op_list_add(self, ctx: CallContext, payload: bytes) -> bytes:
        req = ListAddRequest.decode(payload)
        _check_size(req.list_name, MAX_KEY_BYTES, "list name")
        _check_size(req.value, MAX_VALUE_BYTES, "list value")
        store = self._store(ctx.link)
        with store.tx() as db:
            if not store.expect(db, req.list_name, "list"):
                db.execute("INSERT INTO keys (key, kind) VALUES (?, 'list')", (req.list_name,))
            (last,) = db.execute(
                "SELECT MAX(pos) FROM list_items WHERE key = ?", (req.list_name,)
            ).fetchone()
            db.execute(
                "INSERT INTO list_items (key, pos, value) VALUES (?, ?, ?)",
                (req.list_name, 0 if last is None else last + 1, req.value),
            )
            (size,) = db.execute(
                "SELECT COUNT(*) FROM list_items WHERE key = ?", (req.list_name,)
            ).fetchone()
        return encode_value(size, Kind.U32)

    def op_list_del(self, ctx: CallContext, payload: bytes) -> bytes:
        req = ListDelRequest.decode(payload)
        store = self._store(ctx.link)
        with store.tx() as db:
            if not store.expect(db, req.list_name, "list"):
                return encode_value(False, Kind.BOOL)
            row = db.execute(
                "SELECT MIN(pos) FROM list_items WHERE key = ? AND value = ?",
                (req.list_name, req.value),
            ).fetchone()
            if row[0] is None:
                return encode_value(False, Kind.BOOL)
            db.execute("DELETE FROM list_items WHERE key = ? AND pos = ?", (req.list_name, row[0]))
            self._drop_if_empty(db, req.list_name, "list_items")
        return encode_value(True, Kind.BOOL)

    def op_list_range(self, ctx: CallContext, payload: bytes) -> bytes:
        req = ListRangeRequest.decode(payload)
        store = self._store(ctx.link)
        with store.tx() as db:
            if not store.expect(db, req.list_name, "list"):
                return encode_value([], Kind.STR_LIST)
            (size,) = db.execute(
                "SELECT COUNT(*) FROM list_items WHERE key = ?", (req.list_name,)
            ).fetchone()
            start = req.start + size if req.start < 0 else req.start
            stop = req.stop + size if req.stop < 0 else req.stop
            start = max(start, 0)
            stop = min(stop, size - 1)
            if start > stop:
                return encode_value([], Kind.STR_LIST)
            rows = db.execute(
                "SELECT value FROM list_items WHERE key = ? ORDER BY pos LIMIT ? OFFSET ?",
                (req.list_name, stop - start + 1, start),
            ).fetchall()
        return encode_value([r[0] for r in rows], Kind.STR_LIST)

    def op_list_clear(self, ctx: CallContext, payload: bytes) -> bytes:
        name = decode_value(payload, Kind.STR, "KeyValue.ListClear list name")
        return self._clear(ctx, name, "list")

    # --- sets --------------------------------------------------------------

    def op_set_add(self, ctx: CallContext, payload: bytes) -> bytes:
        req = SetAddRequest.decode(payload)
        _check_size(req.set_name, MAX_KEY_BYTES, "set name")
        _check_size(req.value, MAX_VALUE_BYTES, "set member")
        store = self._store(ctx.link)
        with store.tx() as db:
            if not store.expect(db, req.set_name, "set"):
                db.execute("INSERT INTO keys (key, kind) VALUES (?, 'set')", (req.set_name,))
            added = db.execute(
                "INSERT OR IGNORE INTO set_items (key, member) VALUES (?, ?)",
                (req.set_name, req.value),
            ).rowcount
        return encode_value(added, Kind.U32)

    def op_set_del(self, ctx: CallContext, payload: bytes) -> bytes:
        req = SetDelRequest.decode(payload)
        store = self._store(ctx.link)
        with store.tx() as db:
            if not store.expect(db, req.set_name, "set"):
                return encode_value(0, Kind.U32)
            removed = db.execute(
                "DELETE FROM set_items WHERE key = ? AND member = ?", (req.set_name, req.value)
            ).rowcount
            self._drop_if_empty(db, req.set_name, "set_items")
        return encode_value(removed, Kind.U32)

    def op_set_query(self, ctx: CallContext, payload: bytes) -> bytes:
        name = decode_value(payload, Kind.STR, "KeyValue.SetQuery set name")
        store = self._store(ctx.link)
        with store.tx() as db:
            members = self._members(store, db, name)
        return encode_value(sorted(members), Kind.STR_LIST)

    def op_set_union(self, ctx: CallContext, payload: bytes) -> bytes:
        names = decode_value(payload, Kind.STR_LIST, "KeyValue.SetUnion set names")
        store = self._store(ctx.link)
        result: set[str] = set()
        with store.tx() as db:
            for name in names:
                result |= self._members(store, db, name)
        return encode_value(sorted(result), Kind.STR_LIST)

    def op_set_intersection(self, ctx: CallContext, payload: bytes) -> bytes:
        names = decode_value(payload, Kind.STR_LIST, "KeyValue.SetIntersection set names")
        if not names:
            raise ProviderError("KeyValue.SetIntersection needs at least one set name")
        store = self._store(ctx.link)
        with store.tx() as db:
            result = self._members(store, db, names[0])
            for name in names[1:]:
                result &= self._members(store, db, name)
        return encode_value(sorted(result), Kind.STR_LIST)

    def op_set_clear(self, ctx: CallContext, payload: bytes) -> bytes:
        name = decode_value(payload, Kind.STR, "KeyValue.SetClear set name")
        return self._clear(ctx, name, "set")

    def list_edit(self, ctx: CallContext, key: str, value: str, *, push_front: bool) -> int:
        """Old generations' ``Push`` (LPUSH: new length) / ``ListItemDelete`` (LREM 0: removed)."""
        if push_front:
            _check_size(key, MAX_KEY_BYTES, "list name")
            _check_size(value, MAX_VALUE_BYTES, "list value")
        store = self._store(ctx.link)
        with store.tx() as db:
            if not store.expect(db, key, "list"):
                if not push_front:
                    return 0
                db.execute("INSERT INTO keys (key, kind) VALUES (?, 'list')", (key,))
            count = edit_list_rows(db, key, value, push_front=push_front)
            if not push_front:
                self._drop_if_empty(db, key, "list_items")
        return count

    # --- helpers -----------------------------------------------------------

    def _clear(self, ctx: CallContext, name: str, kind: str) -> bytes:
        store = self._store(ctx.link)
        with store.tx() as db:
            existed = store.expect(db, name, kind)
            if existed:
                store.drop(db, name)
        return encode_value(existed, Kind.BOOL)

    @staticmethod
    def _members(store: _Store, db: sqlite3.Connection, name: str) -> set[str]:
        if not store.expect(db, name, "set"):
            return set()
        rows = db.execute("SELECT member FROM set_items WHERE key = ?", (name,)).fetchall()
        return {r[0] for r in rows}

    @staticmethod
    def _drop_if_empty(db: sqlite3.Connection, key: str, table: str) -> None:
        (count,) = db.execute(f"SELECT COUNT(*) FROM {table} WHERE key = ?", (key,)).fetchone()
        if count == 0:
            db.execute("DELETE FROM keys WHERE key = ?", (key,))
