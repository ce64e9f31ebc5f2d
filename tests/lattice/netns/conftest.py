from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lattice.netns.bridge_lattice import BridgedLattice, require_bridge_tools


@pytest.fixture
def bridged(tmp_path: Path) -> Iterator[BridgedLattice]:
    """Hosts in their own namespaces on one bridge; all of it is gone after the test."""
    require_bridge_tools()
    with BridgedLattice(tmp_path) as lat:
        yield lat
        print(f"\nwaits: {lat.report_timings()}")
