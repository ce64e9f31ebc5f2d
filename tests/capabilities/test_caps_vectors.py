"""Golden encodings of the wasmCloud contract payloads (proto/vectors/capabilities.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshhost.capabilities import contracts
from meshhost.capabilities.providers.codec import Kind, decode_value, encode_value
from meshhost.capabilities.providers.numbergen import NumberGenProvider

VECTORS = json.loads(
    (Path(__file__).parents[2] / "proto" / "vectors" / "capabilities.json").read_text()
)["vectors"]

BARE = {kind.value: kind for kind in Kind}


def _python_fields(cls, fields: dict) -> dict:
    out = {}
    for f in cls.FIELDS:
        value = fields[f.attr]
        if f.kind is Kind.BYTES:
            value = bytes.fromhex(value)
        elif f.kind is Kind.HEADERS:
            value = {k: tuple(v) for k, v in value.items()}
        elif f.kind is Kind.STR_LIST:
            value = tuple(value)
        out[f.attr] = value
    return out


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_codec_matches_golden_bytes(vector: dict) -> None:
    expected = bytes.fromhex(vector["msgpack_hex"])
    if vector["kind"] == "list<U8>":  # only NumberGen.RandomBytes answers one
        values = bytes(vector["fields"]["value"])
        provider = NumberGenProvider(random_bytes=lambda n: values[:n])
        count = encode_value(len(values), Kind.U32)
        assert provider.op_bytes(None, count) == expected  # type: ignore[arg-type]
        return
    if vector["kind"] in BARE:
        kind = BARE[vector["kind"]]
        value = vector["fields"]["value"]
        decoded = decode_value(expected, kind, vector["name"])
        assert (list(decoded) if kind is Kind.STR_LIST else decoded) == value
        if not vector.get("decode_only"):
            assert encode_value(value, kind) == expected
        return
    cls = getattr(contracts, vector["kind"])
    message = cls(**_python_fields(cls, vector["fields"]))
    assert cls.decode(expected) == message
    if not vector.get("decode_only"):
        assert message.encode() == expected


def test_guid_vector_is_what_numbergen_answers() -> None:
    vector = next(v for v in VECTORS if v["name"] == "numbergen_guid_response")
    provider = NumberGenProvider(random_bytes=lambda n: bytes(range(n)))
    assert provider.op_guid(None, b"").hex() == vector["msgpack_hex"]  # type: ignore[arg-type]


def test_every_contract_message_has_a_vector() -> None:
    kinds = {v["kind"] for v in VECTORS}
    for name in contracts.__all__:
        obj = getattr(contracts, name)
        if isinstance(obj, type) and hasattr(obj, "FIELDS"):
            assert name in kinds, f"no golden vector for {name}"
