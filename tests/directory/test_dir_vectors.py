"""Golden vectors: proto/vectors/directory.json pins the directory wire format.

Each vector's ``fields`` (JSON; ``{"$bin": hex}`` stands for msgpack bin)
must encode to exactly ``msgpack_hex`` and decode back to ``fields``.
Regenerate only when the spec changes: ``python tests/directory/test_dir_vectors.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshhost.directory.codec import (
    FullState,
    HostDelta,
    HostEntry,
    HostSection,
    LwwChunk,
    LwwDelta,
    LwwEntry,
    Message,
    SyncRequest,
    decode_any,
    encode,
)
from meshhost.directory.hlc import Stamp

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "directory.json"


def _value_in(v: Any) -> Any:
    if isinstance(v, dict):
        if set(v) == {"$bin"}:
            return bytes.fromhex(v["$bin"])
        return {k: _value_in(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_value_in(x) for x in v]
    return v


def _value_out(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"$bin": v.hex()}
    if isinstance(v, dict):
        return {k: _value_out(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_value_out(x) for x in v]
    return v


def _section_in(f: dict[str, Any]) -> HostSection:
    return HostSection(
        f["owner"],
        f["generation"],
        f["since"],
        f["upto"],
        tuple(HostEntry(e["key"], e["version"], _value_in(e["value"])) for e in f["entries"]),
    )


def _section_out(s: HostSection) -> dict[str, Any]:
    return {
        "owner": s.owner,
        "generation": s.generation,
        "since": s.since,
        "upto": s.upto,
        "entries": [
            {"key": e.key, "version": e.version, "value": _value_out(e.value)} for e in s.entries
        ],
    }


def _lww_in(f: dict[str, Any]) -> LwwEntry:
    return LwwEntry(
        f["ns"], f["key"], Stamp(f["wall_ms"], f["logical"], f["writer"]), _value_in(f["value"])
    )


def _lww_out(e: LwwEntry) -> dict[str, Any]:
    return {
        "ns": e.ns,
        "key": e.key,
        "wall_ms": e.stamp.wall_ms,
        "logical": e.stamp.logical,
        "writer": e.stamp.node,
        "value": _value_out(e.value),
    }


def message_in(kind: str, f: dict[str, Any]) -> Message:
    if kind == "host_delta":
        return HostDelta(_section_in(f))
    if kind == "lww_delta":
        return LwwDelta(tuple(_lww_in(e) for e in f["entries"]))
    if kind == "full_state":
        return FullState(
            tuple(_section_in(s) for s in f["hosts"]), tuple(_lww_in(e) for e in f["entries"])
        )
    if kind == "sync_request":
        return SyncRequest(
            tuple((d["owner"], d["generation"], d["watermark"]) for d in f["digest"])
        )
    if kind == "lww_chunk":
        stamp = Stamp(f["wall_ms"], f["logical"], f["writer"])
        return LwwChunk(f["ns"], f["key"], stamp, f["index"], f["count"], bytes.fromhex(f["data"]))
    raise AssertionError(kind)


def message_out(m: Message) -> dict[str, Any]:
    if isinstance(m, HostDelta):
        return _section_out(m.section)
    if isinstance(m, LwwDelta):
        return {"entries": [_lww_out(e) for e in m.entries]}
    if isinstance(m, FullState):
        return {
            "hosts": [_section_out(s) for s in m.hosts],
            "entries": [_lww_out(e) for e in m.entries],
        }
    if isinstance(m, SyncRequest):
        return {"digest": [{"owner": o, "generation": g, "watermark": w} for o, g, w in m.digest]}
    return {
        "ns": m.ns,
        "key": m.key,
        "wall_ms": m.stamp.wall_ms,
        "logical": m.stamp.logical,
        "writer": m.stamp.node,
        "index": m.index,
        "count": m.count,
        "data": m.data.hex(),
    }


def _load() -> list[dict[str, Any]]:
    return json.loads(VECTORS.read_text())["vectors"]


@pytest.mark.parametrize("vector", _load(), ids=lambda v: v["name"])
def test_codec_matches_golden_vector(vector):
    message = message_in(vector["kind"], vector["fields"])
    assert encode(message).hex() == vector["msgpack_hex"]
    decoded = decode_any(bytes.fromhex(vector["msgpack_hex"]))
    assert message_out(decoded) == vector["fields"]


def test_vectors_cover_every_message_type():
    kinds = {v["kind"] for v in _load()}
    assert kinds == {"host_delta", "lww_delta", "full_state", "lww_chunk", "sync_request"}


def _generate() -> None:  # pragma: no cover - run by hand when the spec changes
    host = "NAQ2HRBG7CSJQ3WVSJ4VMZFRMRSFEOBPMCMSWOC4CRT7O5KUBNTFKMGL"
    other = "NBNBXGGHQR5IYGSLTQYE7KMO5XOLD2ZXQPUQZIAYAHF4SJW5P6PV5UQ3"
    actor = "MB2ZQB6ZYZZBH5SLPJ7KXA5E2ZV3L3QPVM4GPGKN2EYAXJ5RWFOPHQZO"
    t = 1_764_000_000_000
    summary = {
        "id": actor,
        "name": "echo",
        "caps": ["wasmcloud:keyvalue", "wasmcloud:httpserver"],
        "call_alias": "demo/echo",
        "issuer": "ACOJJN6WUP4ODD75XEBKKTCCUJJCY5ZKQ56XVKYK4BEJWGVAOOQHZMCW",
        "instances": 2,
    }
    link = {
        "actor_id": actor,
        "contract_id": "wasmcloud:keyvalue",
        "link_name": "default",
        "provider_id": "VAZVC4RX54J2NVCMCW7BPCAHGGG5XZXDBXFUMDUXGESTMQEJLC3YVZWB",
        "values": {"URL": "redis://127.0.0.1:6379"},
    }
    msgs = [
        (
            "host_delta_actor",
            HostDelta(HostSection(host, t << 16, 4, 5, (HostEntry(f"actor/{actor}", 5, summary),))),
        ),
        (
            "host_delta_tombstone",
            HostDelta(HostSection(host, t << 16, 6, 7, (HostEntry(f"actor/{actor}", 7, None),))),
        ),
        (
            "host_delta_load",
            HostDelta(HostSection(host, t << 16, 7, 8, (HostEntry("load", 8, 0.25),))),
        ),
        (
            "lww_delta_link_put",
            LwwDelta(
                (LwwEntry("link", f"{actor}/wasmcloud:keyvalue/default", Stamp(t, 0, host), link),)
            ),
        ),
        (
            "lww_delta_link_tombstone",
            LwwDelta(
                (
                    LwwEntry(
                        "link",
                        f"{actor}/wasmcloud:keyvalue/default",
                        Stamp(t + 1500, 3, other),
                        None,
                    ),
                )
            ),
        ),
        (
            "lww_delta_config",
            LwwDelta(
                (LwwEntry("config", "db", Stamp(t, 1, host), {"url": "sqlite:///data/app.db"}),)
            ),
        ),
        (
            "lww_delta_manifest_bin",
            LwwDelta(
                (LwwEntry("manifest", "shop/v0.1.0", Stamp(t, 2, host), b'{"kind":"Application"}'),)
            ),
        ),
        (
            "full_state_two_hosts",
            FullState(
                (
                    HostSection(
                        host,
                        t << 16,
                        0,
                        2,
                        (
                            HostEntry("addr", 1, "10.0.0.5:4222"),
                            HostEntry("labels", 2, {"zone": "east"}),
                        ),
                    ),
                    HostSection(other, (t + 10) << 16, 0, 1, (HostEntry("version", 1, "0.1.0"),)),
                ),
                (LwwEntry("config", "db", Stamp(t, 1, host), {"url": "sqlite:///data/app.db"}),),
            ),
        ),
        ("full_state_empty", FullState((), ())),
        ("sync_request", SyncRequest(((host, t << 16, 8), (other, (t + 10) << 16, 1)))),
        (
            "lww_chunk_first_of_two",
            LwwChunk("manifest", "shop/v0.2.0", Stamp(t, 9, host), 0, 2, bytes(range(16))),
        ),
    ]
    out = {
        "description": (
            "Directory messages (proto/spec/directory.md). fields use JSON; "
            '{"$bin": hex} stands for a msgpack bin value; chunk data is hex.'
        ),
        "vectors": [
            {
                "name": name,
                "kind": _kind(m),
                "fields": message_out(m),
                "msgpack_hex": encode(m).hex(),
            }
            for name, m in msgs
        ],
    }
    VECTORS.write_text(json.dumps(out, indent=2) + "\n")


def _kind(m: Message) -> str:
    return {
        HostDelta: "host_delta",
        LwwDelta: "lww_delta",
        FullState: "full_state",
        LwwChunk: "lww_chunk",
        SyncRequest: "sync_request",
    }[type(m)]


if __name__ == "__main__":  # pragma: no cover
    _generate()
