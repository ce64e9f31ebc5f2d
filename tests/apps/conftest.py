"""Fixtures for the control-plane tests: a tiny valid Wasm module and a base manifest."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# The smallest valid WebAssembly module: magic + version 1.
WASM_MODULE = b"\x00asm\x01\x00\x00\x00"

BASE_MANIFEST = textwrap.dedent(
    """\
    apiVersion: core.oam.dev/v1beta1
    kind: Application
    metadata:
      name: shop
      annotations:
        version: v1.0.0
    spec:
      components:
        - name: web
          type: actor
          properties:
            image: ./echo.wasm
          traits:
            - type: spreadscaler
              properties:
                replicas: 4
                spread:
                  - name: east
                    requirements:
                      zone: east
                    weight: 80
                  - name: west
                    requirements:
                      zone: west
                    weight: 20
            - type: linkdef
              properties:
                target: kv
                values:
                  URL: redis://127.0.0.1:6379
        - name: kv
          type: capability
          properties:
            contract: wasmcloud:keyvalue
    """
)


@pytest.fixture
def base_manifest() -> str:
    """A valid manifest (line numbers are relied on by the broken-manifest table)."""
    return BASE_MANIFEST


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A folder holding ``echo.wasm`` (a valid module) and ``notwasm.wasm`` (text)."""
    (tmp_path / "echo.wasm").write_bytes(WASM_MODULE)
    (tmp_path / "notwasm.wasm").write_text("hello")
    return tmp_path
