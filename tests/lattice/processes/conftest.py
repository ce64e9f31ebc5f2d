"""`meshhost up` processes in one private network namespace (see proc_lattice)."""

from tests.lattice.processes.proc_lattice import lattice_fixture  # noqa: F401
