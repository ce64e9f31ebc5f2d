"""The monitor tests that run `meshhost up` processes use the process lattice."""

from tests.lattice.processes.proc_lattice import lattice_fixture  # noqa: F401
