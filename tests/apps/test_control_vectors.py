"""proto/vectors/control.json: the directory records of the control plane."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack

from meshhost.apps import decode_manifest
from meshhost.apps.manifest import parse_manifest
from meshhost.apps.store import decode_link, encode_link, link_record_key, manifest_key

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "proto" / "vectors" / "control.json").read_text()
)


def by_name(name: str) -> dict:  # type: ignore[type-arg]
    return next(v for v in VECTORS if v["name"] == name)


def test_manifest_record() -> None:
    vector = by_name("manifest record")
    # The document (as a person could have written it in JSON) gives the same bytes.
    manifest = parse_manifest(json.dumps(vector["fields"]), check_images=False)
    assert manifest.canonical().decode() == vector["canonical"]
    assert manifest.digest() == vector["blake2b_256"]
    assert msgpack.packb(manifest.canonical(), use_bin_type=True).hex() == vector["msgpack_hex"]
    stored = msgpack.unpackb(bytes.fromhex(vector["msgpack_hex"]))
    assert decode_manifest(stored) == manifest
    assert manifest_key(manifest.name, manifest.version) == vector["key"]


def test_deployment_record() -> None:
    vector = by_name("deployment record")
    value = vector["fields"]["version"].encode()
    assert msgpack.packb(value, use_bin_type=True).hex() == vector["msgpack_hex"]


def test_link_record() -> None:
    vector = by_name("link record")
    stored = msgpack.unpackb(bytes.fromhex(vector["msgpack_hex"]))
    link = decode_link(stored)
    assert encode_link(link).decode() == vector["canonical"]
    assert json.loads(vector["canonical"]) == vector["fields"]
    assert link_record_key(link) == vector["key"]
