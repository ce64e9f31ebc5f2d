"""Golden control messages (proto/vectors/rpc.json, key "control"): the control
request, reply and event maps of proto/spec/rpc.md, and their Unix-socket framing.

``fields`` use JSON with ``{"$bin": hex}`` for a msgpack bin value.  Regenerate
only when the spec changes: ``python tests/control/test_control_api_vectors.py``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from meshhost.control import api, hostops
from meshhost.errors import ErrorCode
from meshhost.membership.events import MemberJoined
from meshhost.membership.state import Member, MemberState

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "rpc.json"
ACTOR = "MB2ZQB6ZYZZBH5SLPJ7KXA5E2ZV3L3QPVM4GPGKN2EYAXJ5RWFOPHQZO"
HOST = "NAQ2HRBG7CSJQ3WVSJ4VMZFRMRSFEOBPMCMSWOC4CRT7O5KUBNTFKMGL"


def _in(v: Any) -> Any:
    if isinstance(v, dict):
        if set(v) == {"$bin"}:
            return bytes.fromhex(v["$bin"])
        return {k: _in(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_in(x) for x in v]
    return v


def _out(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"$bin": v.hex()}
    if isinstance(v, dict):
        return {k: _out(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_out(x) for x in v]
    return v


def _encode(kind: str, fields: dict[str, Any]) -> bytes:
    if kind == "control_request":
        return api.encode_request(fields["op"], _in(fields["args"]))
    if kind == "control_reply":
        return api.encode_reply(_in(fields["result"]))
    if kind == "control_error":
        error = api.ControlError(ErrorCode(fields["code"]), fields["error"])
        return api.encode_reply(error=error)
    if kind == "control_event":
        return api.encode_event(_in(fields["event"]))
    raise AssertionError(kind)


def _load() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text()).get("control", [])
    return vectors


@pytest.mark.parametrize("vector", _load(), ids=lambda v: v["name"])
def test_control_message_matches_golden_bytes(vector: dict[str, Any]) -> None:
    body = bytes.fromhex(vector["msgpack_hex"])
    assert _encode(vector["kind"], vector["fields"]) == body
    assert bytes.fromhex(vector["framed_hex"]) == struct.pack(">I", len(body)) + body
    fields = vector["fields"]
    if vector["kind"] == "control_request":
        assert api.decode_request(body) == (fields["op"], _in(fields["args"]))
    elif vector["kind"] == "control_error":
        with pytest.raises(api.ControlError) as failed:
            api.decode_reply(body)
        assert (failed.value.code, str(failed.value)) == (fields["code"], fields["error"])
    else:
        key = "result" if vector["kind"] == "control_reply" else "event"
        assert api.decode_reply(body) == {"ok": True, key: _in(fields[key])}


def test_event_vectors_are_what_the_events_stream_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostops.time, "time", lambda: 1764000000.0)
    joined = MemberJoined(Member(HOST, ("127.0.0.1", 4222), MemberState.ALIVE, 1, b""))
    started = {"kind": "actor_started", "actor": ACTOR, "host": HOST, "name": "echo", "count": 2}
    for name, event in (("event_host_joined", joined), ("event_actor_started", started)):
        vector = next(v for v in _load() if v["name"] == name)
        assert api.encode_event(hostops.event_to_dict(event)).hex() == vector["msgpack_hex"]


def test_vectors_cover_every_control_message_kind() -> None:
    kinds = {v["kind"] for v in _load()}
    assert kinds == {"control_request", "control_reply", "control_error", "control_event"}


def _generate() -> None:  # pragma: no cover - run by hand when the spec changes
    module = bytes.fromhex("0061736d01000000")
    link = {
        "actor": ACTOR,
        "contract": "wasmcloud:keyvalue",
        "link_name": "default",
        "provider": "",
        "values": {"NAMESPACE": "shop"},
    }
    messages: list[tuple[str, str, dict[str, Any]]] = [
        ("request_hosts", "control_request", {"op": "hosts", "args": {}}),
        (
            "request_start",
            "control_request",
            {"op": "start", "args": {"module": module, "count": 2}},
        ),
        (
            "request_call",
            "control_request",
            {
                "op": "call",
                "args": {
                    "actor": ACTOR,
                    "operation": "Echo.Echo",
                    "payload": b"hi",
                    "timeout_ms": 2000,
                },
            },
        ),
        (
            "request_link_put",
            "control_request",
            {
                "op": "link_put",
                "args": {
                    "actor": ACTOR,
                    "contract": "wasmcloud:keyvalue",
                    "values": {"NAMESPACE": "shop"},
                },
            },
        ),
        ("reply_link_put", "control_reply", {"result": link}),
        (
            "reply_call",
            "control_reply",
            {
                "result": {
                    "payload": b"hi",
                    "host": HOST,
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                }
            },
        ),
        (
            "request_call_traceparent",
            "control_request",
            {
                "op": "call",
                "args": {
                    "actor": ACTOR,
                    "operation": "Echo.Echo",
                    "payload": b"hi",
                    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                },
            },
        ),
        (
            "request_trace",
            "control_request",
            {"op": "trace", "args": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}},
        ),
        ("request_spans_last", "control_request", {"op": "spans", "args": {"last": 5}}),
        (
            "reply_trace",
            "control_reply",
            {
                "result": {
                    "traces": [
                        {
                            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                            "spans": [
                                {
                                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                                    "span_id": "a3ce929d0e0e4736",
                                    "parent_id": "00f067aa0ba902b7",
                                    "name": "call Echo.Echo",
                                    "kind": "client",
                                    "host": HOST,
                                    "start_ns": 1764000000000000000,
                                    "end_ns": 1764000000001500000,
                                    "status": "ok",
                                    "attributes": {
                                        "actor": ACTOR,
                                        "operation": "Echo.Echo",
                                        "answered_by": HOST,
                                    },
                                }
                            ],
                        }
                    ],
                    "hosts": [HOST],
                    "unanswered": [],
                }
            },
        ),
        ("reply_module_get", "control_reply", {"result": module}),
        ("reply_nil", "control_reply", {"result": None}),
        (
            "error_unknown_op",
            "control_error",
            {"code": int(ErrorCode.UNSUPPORTED), "error": "unknown control op 'nope'"},
        ),
        (
            "error_invalid_count",
            "control_error",
            {
                "code": int(ErrorCode.INVALID),
                "error": "argument 'count' must be a whole number from 1 to 1000",
            },
        ),
        (
            "event_host_joined",
            "control_event",
            {
                "event": {
                    "kind": "host_joined",
                    "at_unix_ms": 1764000000000,
                    "host": HOST,
                    "address": "127.0.0.1:4222",
                    "incarnation": 1,
                }
            },
        ),
        (
            "event_actor_started",
            "control_event",  # as event_to_dict orders a control event
            {
                "event": {
                    "at_unix_ms": 1764000000000,
                    "kind": "actor_started",
                    "actor": ACTOR,
                    "host": HOST,
                    "name": "echo",
                    "count": 2,
                }
            },
        ),
    ]
    vectors = []
    for name, kind, fields in messages:
        body = _encode(kind, _out(fields))
        vectors.append(
            {
                "name": name,
                "kind": kind,
                "fields": _out(fields),
                "msgpack_hex": body.hex(),
                "framed_hex": (struct.pack(">I", len(body)) + body).hex(),
            }
        )
    data = json.loads(VECTORS.read_text())
    data["control"] = vectors
    data["control_description"] = (
        "Control requests, replies and events (proto/spec/rpc.md, 'Control'): msgpack maps, "
        'keys in the order shown; fields use JSON with {"$bin": hex} for a msgpack bin; '
        "framed_hex is the Unix-socket form (4-byte big-endian length + body)."
    )
    VECTORS.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _generate()
