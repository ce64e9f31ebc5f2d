"""Golden encodings of invocation bodies (proto/vectors/rpc.json, protocol 3).

``python tests/rpc/test_rpc_vectors.py`` regenerates the ``vectors`` part of
the file from the messages below (the control and CloudEvents parts have
their own generators).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshhost.errors import ErrorCode
from meshhost.rpc import envelope
from meshhost.rpc.envelope import Invocation, InvocationResult

PATH = Path(__file__).parents[2] / "proto" / "vectors" / "rpc.json"
VECTORS = json.loads(PATH.read_text())["vectors"]

BYTES_FIELDS = {"id", "trace_id", "payload", "parent_span"}


def _build(kind: str, fields: dict[str, object]) -> Invocation | InvocationResult:
    values = {k: bytes.fromhex(v) if k in BYTES_FIELDS else v for k, v in fields.items()}  # type: ignore[arg-type]
    if kind == "invocation":
        return Invocation(**values)  # type: ignore[arg-type]
    values["code"] = ErrorCode(values["code"])
    return InvocationResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_codec_matches_golden_bytes(vector: dict[str, object]) -> None:
    message = _build(str(vector["kind"]), vector["fields"])  # type: ignore[arg-type]
    expected = bytes.fromhex(str(vector["hex"]))
    if isinstance(message, Invocation):
        assert envelope.decode_invocation(expected) == message
        assert envelope.encode_invocation(message) == expected
    else:
        assert envelope.decode_result(expected) == message
        assert envelope.encode_result(message) == expected


def test_the_vectors_cover_both_bodies_and_the_edges() -> None:
    names = {v["name"] for v in VECTORS}
    assert {"invoke_http", "invoke_actor_to_actor_max_hops", "result_ok", "result_denied"} <= names
    assert all("hex" in v and "msgpack_hex" not in v for v in VECTORS)


def _messages() -> list[tuple[str, Invocation | InvocationResult]]:
    ids = bytes(range(16))
    return [
        (
            "invoke_http",
            Invocation(
                ids,
                "NAAAHOST",
                "",
                "MAAAACTOR",
                "HttpServer.HandleRequest",
                bytes.fromhex("81a66d6574686f64a3474554"),
                1764000000000,
                bytes(range(16, 32)),
                0,
                bytes(range(32, 40)),
                1,
            ),
        ),
        (
            "invoke_without_parent_span",  # the caller had no span: 8 zero bytes on the wire
            Invocation(
                ids, "NAAAHOST", "", "MAAAACTOR", "Echo.Call", b"", 1, bytes(range(16, 32)), 0
            ),
        ),
        (
            "invoke_actor_to_actor_max_hops",
            Invocation(
                b"\xff" * 16,
                "NBBB",
                "MCALLER",
                "MTARGET",
                "KeyValue.Increment",
                b"",
                0,
                bytes(16),
                envelope.MAX_HOPS,
            ),
        ),
        (
            "invoke_utf8_operation",
            Invocation(
                ids, "NAAAHOST", "", "MAAAACTOR", "Grüße.Senden", b"x", 2**63, ids, 1, b"\x01" * 8
            ),
        ),
        ("result_ok", InvocationResult(ids, ErrorCode.OK, bytes.fromhex("93010203"), "", "NBBB")),
        (
            "result_denied",
            InvocationResult(
                ids,
                ErrorCode.DENIED,
                b"",
                "actor M1 (echo) is not signed for wasmcloud:httpclient",
                "NBBB",
            ),
        ),
    ]


def _fields(message: Invocation | InvocationResult) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in message._fields:  # type: ignore[union-attr]
        value = getattr(message, name)
        out[name] = (
            value.hex() if isinstance(value, bytes) else int(value) if name == "code" else value
        )
    return out


def _generate() -> None:
    vectors = []
    for name, message in _messages():
        if isinstance(message, Invocation):
            kind, body = "invocation", envelope.encode_invocation(message)
        else:
            kind, body = "result", envelope.encode_result(message)
        vectors.append({"name": name, "kind": kind, "fields": _fields(message), "hex": body.hex()})
    data = json.loads(PATH.read_text())
    data["description"] = (
        "Invocation bodies of channel 1, protocol 3 (proto/spec/rpc.md): fixed big-endian "
        "header, names, payload. bytes fields are hex; hex is the whole body."
    )
    data["vectors"] = vectors
    PATH.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _generate()
