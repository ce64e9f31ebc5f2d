"""An acknowledged write survives `kill -9` of the host right after the answer.

Host a runs on a slow disk (``slow_disk_host.py``: every fsync takes 0.8 s),
so the writes of concurrent ``config put`` requests queue behind a running
fsync.  As soon as every CLI has its answer, a is killed with SIGKILL; its
directory log, loaded as a restart loads it, must hold every acknowledged
entry (the control API answers only once its writes are synced, issue 13.5).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from meshhost.directory import Directory, FileStore
from tests.lattice.processes.proc_lattice import ProcLattice, parallel

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PUTS = 6


def test_config_acknowledged_on_a_slow_disk_survives_kill_9_right_after(
    lattice: ProcLattice,
) -> None:
    a = lattice.add("a", start=False)
    a.program = (str(Path(__file__).with_name("slow_disk_host.py")),)
    a.start()
    lattice.wait_for(lambda: bool(a.status()), "a wrote its status")
    results = parallel(*(lambda i=i: a.cli("config", "put", f"k{i}", str(i)) for i in range(PUTS)))
    a.kill9()
    for result in results:
        result.ok()
    store = FileStore(a.data_dir / "directory")
    kept = Directory("N" + "Z" * 55, clock=time.time, store=store).items("config")
    assert kept == sorted((f"k{i}", str(i)) for i in range(PUTS))
