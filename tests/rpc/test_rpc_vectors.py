"""Golden encodings of invocation envelopes (proto/vectors/rpc.json)."""

import json
from pathlib import Path

import pytest

from meshhost.errors import ErrorCode
from meshhost.rpc import envelope
from meshhost.rpc.envelope import Invocation, InvocationResult

VECTORS = json.loads((Path(__file__).parents[2] / "proto" / "vectors" / "rpc.json").read_text())[
    "vectors"
]

BYTES_FIELDS = {"id", "trace_id", "payload", "parent_span"}


def _build(kind: str, fields: dict[str, object]) -> Invocation | InvocationResult:
    values = {k: bytes.fromhex(v) if k in BYTES_FIELDS else v for k, v in fields.items()}
    if kind == "invocation":
        return Invocation(**values)  # type: ignore[arg-type]
    values["code"] = ErrorCode(values["code"])
    return InvocationResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_codec_matches_golden_bytes(vector: dict[str, object]) -> None:
    message = _build(str(vector["kind"]), vector["fields"])  # type: ignore[arg-type]
    expected = bytes.fromhex(str(vector["msgpack_hex"]))
    if isinstance(message, Invocation):
        assert envelope.decode_invocation(expected) == message
        if vector.get("decode_only"):  # an older host's form: read, never written
            assert envelope.encode_invocation(message) != expected
            return
        assert envelope.encode_invocation(message) == expected
        assert envelope.decode_invocation(expected) == message
    else:
        assert envelope.encode_result(message) == expected
        assert envelope.decode_result(expected) == message
