"""Fixtures for the application-op tests: a signed kvcounter module, manifests, directories."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.apps.ops.apps_helpers import BUILD, MANIFEST, Lattice


@pytest.fixture(scope="session")
def signed_module(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """The kvcounter example actor, compiled and signed once: (module bytes, M… id)."""
    spec = importlib.util.spec_from_file_location("kvcounter_build_apps", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path, actor_id = module.build(tmp_path_factory.mktemp("kvbuild"))
    return path.read_bytes(), actor_id


@pytest.fixture
def app_dir(tmp_path: Path, signed_module: tuple[bytes, str]) -> Path:
    """A folder with ``kvcounter.wasm`` (signed) and ``kvcounter.yaml``."""
    (tmp_path / "kvcounter.wasm").write_bytes(signed_module[0])
    (tmp_path / "kvcounter.yaml").write_text(MANIFEST)
    return tmp_path


@pytest.fixture
def lattice() -> Lattice:
    return Lattice()
