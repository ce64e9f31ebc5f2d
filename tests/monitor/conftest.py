from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import ProcLattice, build_modules
from tests.systools import require_netns


@pytest.fixture(scope="session")
def modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Signed example actors, built once: name -> (path of the .wasm, actor id)."""
    return build_modules(tmp_path_factory.mktemp("modules"))


@pytest.fixture
def lattice(tmp_path: Path) -> Iterator[ProcLattice]:
    """A private network namespace for `meshhost up` processes; every one is killed after."""
    require_netns()
    with ProcLattice(tmp_path) as lat:
        yield lat
        print(f"\nwaits: {lat.report_timings()}")
