"""Golden vectors: proto/vectors/directory.json pins the directory wire format.

Each vector's ``fields`` (JSON; ``{"$bin": hex}`` stands for msgpack bin)
must encode to exactly ``msgpack_hex`` and decode back to ``fields``.
The keys ``sync_answers``, ``log_lines`` and ``lww_order`` pin behaviour an
independent host must match byte for byte: the FULL_STATE answer to a
SYNC_REQUEST, the persisted log line of an entry, and which of two LWW entries
wins.  Regenerate only when the spec changes:
``python tests/directory/test_dir_vectors.py``.
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
    decode_state,
    encode,
)
from meshhost.directory.hlc import Stamp
from meshhost.directory.hoststate import HostStateMap
from meshhost.directory.links import link_key, parse_link_key
from meshhost.directory.lww import LwwMap, wins
from meshhost.directory.store import entry_from_json, entry_to_json

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
    out = json.loads(VECTORS.read_text())  # keeps the other keys (the behaviour vectors below)
    out |= {
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


# --- behaviour vectors: sync answers, log lines, LWW order ---------------------------
HOST_A = "NAQ2HRBG7CSJQ3WVSJ4VMZFRMRSFEOBPMCMSWOC4CRT7O5KUBNTFKMGL"
HOST_B = "NBNBXGGHQR5IYGSLTQYE7KMO5XOLD2ZXQPUQZIAYAHF4SJW5P6PV5UQ3"
HOST_C = "NAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RSWB"
ACTOR = "MB2ZQB6ZYZZBH5SLPJ7KXA5E2ZV3L3QPVM4GPGKN2EYAXJ5RWFOPHQZO"
T = 1_764_000_000_000


def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def _answerer(answerer: str, state: FullState) -> tuple[HostStateMap, LwwMap]:
    """Host ``answerer`` (which has written nothing of its own) holding ``state``."""
    mine = next(s for s in state.hosts if s.owner == answerer)
    assert not mine.entries
    hosts = HostStateMap(answerer, mine.generation)
    for section in state.hosts:
        if section.owner != answerer:
            hosts.apply(section)
    lww = LwwMap()
    for e in state.entries:
        lww.merge(e)
    return hosts, lww


def _answer(hosts: HostStateMap, lww: LwwMap, request: SyncRequest) -> bytes:
    digest = {owner: (g, w) for owner, g, w in request.digest}
    return encode(FullState(tuple(hosts.delta(digest)), tuple(lww.entries())))


@pytest.mark.parametrize("vector", _data().get("sync_answers", []), ids=lambda v: v["name"])
def test_sync_answer_matches_golden_bytes(vector: dict[str, Any]) -> None:
    state = message_in("full_state", vector["state"])
    assert isinstance(state, FullState)
    hosts, lww = _answerer(vector["answerer"], state)
    # The answerer holds what the vector says: its answer to an empty digest is the state.
    assert encode(FullState(tuple(hosts.delta({})), tuple(lww.entries()))) == encode(state)
    request = message_in("sync_request", vector["request"])
    assert isinstance(request, SyncRequest)
    answer = _answer(hosts, lww, request)
    assert answer.hex() == vector["answer_hex"]
    assert message_out(FullState(*_decoded_parts(answer))) == vector["answer"]


def _decoded_parts(data: bytes) -> tuple[tuple[HostSection, ...], tuple[LwwEntry, ...]]:
    state = decode_state(data)
    return state.hosts, state.entries


@pytest.mark.parametrize("vector", _data().get("log_lines", []), ids=lambda v: v["name"])
def test_log_line_matches_golden_text(vector: dict[str, Any]) -> None:
    entry = _lww_in(vector["entry"])
    assert entry_to_json(entry) == vector["line"]
    assert entry_from_json(vector["line"]) == entry


@pytest.mark.parametrize("vector", _data().get("lww_order", []), ids=lambda v: v["name"])
def test_lww_winner_matches_golden(vector: dict[str, Any]) -> None:
    a, b = _lww_in(vector["a"]), _lww_in(vector["b"])
    winner = {"a": a, "b": b}[vector["winner"]]
    for first, second in ((a, b), (b, a)):
        held = LwwMap()
        held.merge(first)
        held.merge(second)
        assert held.entry(a.ns, a.key) == winner
    assert wins(winner, a if winner is b else b)


def test_every_state_vector_kind_is_present() -> None:
    data = _data()
    assert data.get("sync_answers") and data.get("log_lines") and data.get("lww_order")


@pytest.mark.parametrize("vector", _data()["link_keys"], ids=lambda v: v["name"])
def test_link_key_matches_golden(vector: dict[str, Any]) -> None:
    parts = (vector["actor_id"], vector["contract_id"], vector["link_name"])
    assert link_key(*parts) == vector["key"]
    assert parse_link_key(vector["key"]) == parts


def _generate_link_keys() -> None:  # pragma: no cover - run by hand when the spec changes
    cases = [
        ("capability_contract", ACTOR, "wasmcloud:keyvalue", "default"),
        ("call_alias", ACTOR, "wasmcloud/echo", "default"),
        ("call_alias_with_percent_and_slashed_link_name", ACTOR, "acme/50%/off", "a/b"),
        ("percent_without_slash_is_not_escaped", ACTOR, "acme:50%2Foff", "default"),
    ]
    data = _data()
    data["link_keys_description"] = (
        "link_keys: the LWW key (namespace link) of the link (actor_id, contract_id, "
        "link_name); a contract id holding '/' (a call alias) is escaped after an empty field."
    )
    data["link_keys"] = [
        {"name": n, "actor_id": a, "contract_id": c, "link_name": ln, "key": link_key(a, c, ln)}
        for n, a, c, ln in cases
    ]
    VECTORS.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _generate_state() -> None:  # pragma: no cover - run by hand when the spec changes
    ga, gb = T << 16, (T + 10) << 16
    a = HostStateMap(HOST_A, ga)
    a.set("addr", "10.0.0.5:4222")
    a.set("labels", {"zone": "east"})
    a.set(
        f"actor/{ACTOR}",
        {
            "id": ACTOR,
            "name": "echo",
            "caps": ["wasmcloud:keyvalue"],
            "call_alias": "",
            "issuer": "",
            "instances": 1,
        },
    )
    a.set(f"actor/{ACTOR}", None)
    b = HostStateMap(HOST_B, gb)
    b.set("version", "0.1.0")
    b.set("load", 0.25)
    hosts = HostStateMap(HOST_C, (T + 20) << 16)
    for section in [*a.delta({}), *b.delta({})]:
        hosts.apply(section)
    lww = LwwMap()
    lww.merge(LwwEntry("config", "db", Stamp(T, 1, HOST_A), {"url": "sqlite:///data/app.db"}))
    lww.merge(LwwEntry("config", "old", Stamp(T, 2, HOST_B), None))
    state = FullState(tuple(hosts.delta({})), tuple(lww.entries()))
    requests = [
        ("empty_digest", SyncRequest(())),
        ("same_generations", SyncRequest(((HOST_A, ga, 2), (HOST_B, gb, 2)))),
        ("asker_newer_and_older", SyncRequest(((HOST_A, ga + 1, 0), (HOST_B, gb - 1, 5)))),
        ("unknown_owner_ignored", SyncRequest(((ACTOR, 7, 7), (HOST_A, ga, 4)))),
    ]
    answers = []
    for name, request in requests:
        answer = _answer(hosts, lww, request)
        answers.append(
            {
                "name": name,
                "answerer": HOST_C,
                "state": message_out(state),
                "request": message_out(request),
                "answer_hex": answer.hex(),
                "answer": message_out(FullState(*_decoded_parts(answer))),
            }
        )
    entries = [
        (
            "link",
            LwwEntry(
                "link",
                f"{ACTOR}/wasmcloud:keyvalue/default",
                Stamp(T, 0, HOST_A),
                {
                    "actor_id": ACTOR,
                    "contract_id": "wasmcloud:keyvalue",
                    "link_name": "default",
                    "provider_id": "",
                    "values": {"NAMESPACE": "shop"},
                },
            ),
        ),
        ("tombstone", LwwEntry("config", "db", Stamp(T, 1, HOST_A), None)),
        (
            "non_ascii_and_bin",
            LwwEntry(
                "config",
                "grüße",
                Stamp(T, 2, HOST_B),
                {"text": "日本", "raw": b"\x00\xff", "n": -1, "f": 0.5},
            ),
        ),
    ]
    lines = [{"name": n, "entry": _lww_out(e), "line": entry_to_json(e)} for n, e in entries]
    pairs = [
        (
            "later_wall_ms",
            LwwEntry("config", "k", Stamp(T, 9, HOST_B), "old"),
            LwwEntry("config", "k", Stamp(T + 1, 0, HOST_A), "new"),
        ),
        (
            "same_time_greater_writer",
            LwwEntry("config", "k", Stamp(T, 3, HOST_A), "a"),
            LwwEntry("config", "k", Stamp(T, 3, HOST_B), "b"),
        ),
        (
            "equal_stamps_tombstone_wins",
            LwwEntry("config", "k", Stamp(T, 3, HOST_A), "zzz"),
            LwwEntry("config", "k", Stamp(T, 3, HOST_A), None),
        ),
        (
            "equal_stamps_greater_bytes",
            LwwEntry("config", "k", Stamp(T, 3, HOST_A), "b"),
            LwwEntry("config", "k", Stamp(T, 3, HOST_A), "ab"),
        ),
        (
            "equal_stamps_bin_beats_str",
            LwwEntry("config", "k", Stamp(T, 3, HOST_A), "zz"),
            LwwEntry("config", "k", Stamp(T, 3, HOST_A), b"a"),
        ),
    ]
    order = [
        {"name": n, "a": _lww_out(a), "b": _lww_out(b), "winner": "b" if wins(b, a) else "a"}
        for n, a, b in pairs
    ]
    data = _data()
    data["state_description"] = (
        "sync_answers: the FULL_STATE (answer_hex) that host `answerer`, holding exactly "
        "`state` (its answer to an empty digest; its own section is empty), sends for "
        "`request`. "
        "log_lines: an LWW entry and its line in lww.jsonl. lww_order: of two entries for "
        "one key, the one that wins in either arrival order."
    )
    data["sync_answers"] = answers
    data["log_lines"] = lines
    data["lww_order"] = order
    VECTORS.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _generate()
    _generate_state()
    _generate_link_keys()
