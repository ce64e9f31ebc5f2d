from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lattice.netns.bridge_lattice import BridgedLattice, require_bridge_tools
from tests.lattice.processes.proc_lattice import build_modules


@pytest.fixture(scope="session")
def modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Signed example actors, built once: name -> (path of the .wasm, actor id)."""
    return build_modules(tmp_path_factory.mktemp("modules"))


@pytest.fixture
def bridged(tmp_path: Path) -> Iterator[BridgedLattice]:
    """Hosts in their own namespaces on one bridge; all of it is gone after the test."""
    require_bridge_tools()
    with BridgedLattice(tmp_path) as lat:
        yield lat
        print(f"\nwaits: {lat.report_timings()}")
