"""Test-only helpers of the in-process lattice tests: the kvcounter manifest and
HTTP request/response shapes (the hosts themselves come from ``meshhost.testing``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack

from meshhost.apps.manifest import actor_id_from_claims, load_manifest
from meshhost.modstore import sha256_hex

COUNTER_MANIFEST = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: counter
  annotations:
    version: VERSION
spec:
  components:
    - name: counter
      type: actor
      properties:
        image: ./kvcounter.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: INSTANCES
        - type: linkdef
          properties:
            target: kv
HTTP_LINK    - name: kv
      type: capability
      properties:
        contract: wasmcloud:keyvalue
HTTP_COMPONENT"""
HTTP_LINK = """\
        - type: linkdef
          properties:
            target: http
            values:
              ADDRESS: 127.0.0.1:PORT
"""
HTTP_COMPONENT = """\
    - name: http
      type: capability
      properties:
        contract: wasmcloud:httpserver
"""


def counter_manifest(instances: int, *, version: str = "v1", http_port: int | None = None) -> str:
    """A manifest of kvcounter (``./kvcounter.wasm``) linked to key-value (and HTTP)."""
    text = COUNTER_MANIFEST.replace("INSTANCES", str(instances)).replace("VERSION", version)
    http = http_port is not None
    text = text.replace("HTTP_LINK", HTTP_LINK.replace("PORT", str(http_port)) if http else "")
    return text.replace("HTTP_COMPONENT", HTTP_COMPONENT if http else "")


def http_request(path: str = "/", host_header: str = "test") -> bytes:
    """A msgpack wasmcloud:httpserver HttpRequest, as the HTTP provider sends it."""
    return msgpack.packb(
        {
            "method": "GET",
            "path": path,
            "queryString": "",
            "header": {"host": [host_header]},
            "body": b"",
        },
        use_bin_type=True,
    )


def count_of(response: bytes) -> int:
    """The counter in a kvcounter HttpResponse."""
    answer = msgpack.unpackb(response, raw=False)
    assert answer["statusCode"] == 200, answer
    return int(json.loads(answer["body"])["count"])


def manifest_args(tmp: Path, instances: int, wasm: bytes) -> dict[str, Any]:
    """The ``apply`` op's arguments for :func:`counter_manifest` ``(instances)``, with
    ``wasm`` (a signed kvcounter) written to ``tmp`` as its ``./kvcounter.wasm``."""
    (tmp / "kvcounter.wasm").write_bytes(wasm)
    path = tmp / "app.yaml"
    path.write_text(counter_manifest(instances))
    manifest = load_manifest(path, inspect_image=actor_id_from_claims)
    return {
        "manifest": manifest.canonical(),
        "source": str(path),
        "modules": {sha256_hex(wasm): wasm},
    }
