"""What a new user sees when a command against a running host goes wrong: one clear line, exit 1.

One `meshhost up` process; every mistake below must end in a single
`error: ...` line that says what to do, never a traceback and never a hang.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshhost.runtime import wat_to_wasm
from tests.lattice.processes.proc_lattice import ProcLattice, parallel

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_mistakes_against_a_running_host_are_one_clear_line(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    (a,), _ = lattice.start_hosts("a")
    echo_path, echo_id = modules["echo"]
    not_wasm = tmp_path / "notes.wasm"
    not_wasm.write_text("these are my notes, not a module\n")
    unsigned = tmp_path / "unsigned.wasm"
    unsigned.write_bytes(wat_to_wasm("(module)"))
    a.cli("start", str(echo_path)).ok()

    results = parallel(
        lambda: a.cli("start", str(not_wasm)),
        lambda: a.cli("start", str(unsigned)),
        lambda: a.call("M" + "A" * 55, "Echo", "x", deadline_s=3),
        lambda: a.call(echo_id, "NoSuchOperation", "x", deadline_s=3),
        lambda: a.cli("inventory", "NZZZZZ"),
        lambda: a.cli("start", str(echo_path), "--label", "zone=nowhere"),
        lambda: a.cli("link", "del", echo_id, "wasmcloud:keyvalue"),
        lambda: a.cli("config", "get", "no.such.key"),
    )
    expected = [
        "malformed WebAssembly",
        "sign it with `meshhost claims sign`",
        "no host in lattice 'default' runs actor MAAAA",
        "unknown operation",
        "no live host 'NZZZZZ' in lattice 'default'; `meshhost hosts` lists them",
        "no live host has the labels zone=nowhere",
        "`meshhost link list`",
        "no config entry 'no.such.key'",
    ]
    for result, words in zip(results, expected, strict=True):
        line = result.failed_cleanly()
        assert words in line, result.describe()
        assert len(line.splitlines()) == 1, result.describe()

    # Contradictory placement is bad usage (exit 2); scaling to 0 what does not run is done.
    both, scale_zero = parallel(
        lambda: a.cli("start", str(echo_path), "--host", a.host_id[:6], "--label", "zone=x"),
        lambda: a.cli("scale", "M" + "B" * 55, "0"),
    )
    assert both.returncode == 2 and "--host or --label" in both.stderr, both.describe()
    scale_zero.ok()
