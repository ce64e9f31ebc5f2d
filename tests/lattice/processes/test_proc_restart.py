"""A host restarted on its data dir rejoins with its links and key-value data intact.

kvcounter runs on a with a key-value link and counts to 2; a is killed
with SIGKILL and restarted at once (same data dir, so same host key), before
the others can declare it dead (a crash loop under a supervisor): the lattice
takes the new incarnation, `link list` on it still shows the link, and the counter
started again on it goes on from 2.  Then every other host is stopped and a
is killed and restarted alone: what it shows now can only come from its own
disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import (
    CliResult,
    HostProc,
    ProcLattice,
    http_request_payload,
    kv_count,
    parallel,
)

pytestmark = [pytest.mark.netns, pytest.mark.slow]

OPERATION = "HttpServer.HandleRequest"


def count_from(
    lattice: ProcLattice, caller: HostProc, actor: str, request: str, what: str
) -> CliResult:
    """The first answered call from ``caller`` (polling while the actor's location spreads)."""
    answered: list[CliResult] = []
    last: list[CliResult] = []

    def check() -> bool:
        last[:] = [caller.call(actor, OPERATION, request, deadline_s=3)]
        if last[0].returncode == 0:
            answered.append(last[0])
        return bool(answered)

    try:
        lattice.wait_for(check, what, timeout_s=15)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast call: {last[0].describe()}") from None
    return answered[0]


def test_a_restarted_host_rejoins_with_its_links_and_kv_data(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    (a, b, c), _ = lattice.start_hosts("a", "b", "c")
    kv_path, kv_id = modules["kvcounter"]
    request = http_request_payload(tmp_path / "request.msgpack")
    a.cli("start", str(kv_path)).ok()
    a.cli("link", "put", kv_id, "wasmcloud:keyvalue").ok()
    first = count_from(lattice, b, kv_id, request, "b's call to the counter on a is answered")
    assert kv_count(first) == 1 and first.json()["host"] == a.host_id
    assert kv_count(b.call(kv_id, OPERATION, request)) == 2

    a_id = a.host_id
    a.kill9()
    a.start()
    ids = {a_id, b.host_id, c.host_id}
    rejoin_s = lattice.wait_for(
        lambda: all(h.alive_ids() == ids for h in (a, b, c)),
        "the restarted host (same key) is alive in every view",
    )
    print(f"host restarted after kill -9 alive in every view {rejoin_s:.2f} s after its start")
    assert a.status()["host_id"] == a_id

    expected = [(kv_id, "wasmcloud:keyvalue", "default")]
    assert a.links() == expected
    # The restart stopped the actor: the others must not keep the old incarnation's list.
    lattice.wait_for(
        lambda: {r["id"]: r["actors"] for r in b.cli("hosts", "--json").json()}.get(a_id) == 0,
        "b sees no actor on the restarted host",
    )
    a.cli("start", str(kv_path)).ok()
    again = count_from(lattice, b, kv_id, request, "b reaches the counter started again on a")
    assert again.json()["host"] == a_id
    assert kv_count(again) == 3, "the counter did not go on from its kv data"

    # Everyone else goes away; a is killed and comes back alone: only its disk remains.
    assert parallel(b.terminate, c.terminate) == [0, 0]
    a.kill9()
    a.start()
    lattice.wait_for(lambda: a.status() is not None, "a restarted alone")
    assert a.links() == expected
    a.cli("start", str(kv_path)).ok()
    alone = a.call(kv_id, OPERATION, request)
    assert alone.json()["host"] == a_id and kv_count(alone) == 4
