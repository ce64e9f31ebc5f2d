"""A host with another lattice secret (same lattice name, same mDNS service) gets nothing.

Its secret comes from `meshhost lattice new`, as a user would make it.  It
hears the lattice's mDNS records and is given a's address as a static seed,
so it really knocks: a drops its packets (counted as sealed with a wrong
key), nobody lists it, it lists nobody, and its CLI cannot reach the actor
running in the lattice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import ProcLattice, parallel, run_cli

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_a_host_with_the_wrong_secret_sees_nothing_and_is_never_seen(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    other = run_cli(["lattice", "new", "--json"], timeout_s=30).json()
    assert other["secret"] != lattice.secret and other["lattice"] == lattice.lattice_name
    (a, b), _ = lattice.start_hosts("a", "b")
    echo_path, echo_id = modules["echo"]
    a.cli("start", str(echo_path)).ok()
    addr = a.status()["addr"]
    stranger = lattice.add(
        "stranger", secret=other["secret"], extra_args=("--seed", f"{addr[0]}:{addr[1]}")
    )
    lattice.wait_for(lambda: stranger.status() is not None, "the stranger is up")
    lattice.wait_for(
        lambda: a.stat("seal.bad_auth") >= 1, "a receives (and drops) the stranger's packets"
    )
    lattice.wait_for(
        lambda: stranger.stat("mdns.other_lattice") >= 1,
        "the stranger hears (and ignores) the lattice's mDNS records",
    )
    lattice.wait_for(
        lambda: b.call(echo_id, "Echo", "x", deadline_s=3).returncode == 0,
        "the lattice itself works: b calls the echo on a",
        timeout_s=15,
    )

    seen_by_stranger, seen_by_a, seen_by_b, call, inventory = parallel(
        lambda: stranger.cli("hosts", "--json").json(),
        lambda: a.cli("hosts", "--json").json(),
        lambda: b.cli("hosts", "--json").json(),
        lambda: stranger.call(echo_id, "Echo", "x", deadline_s=3),
        lambda: stranger.cli("inventory", a.host_id),
    )
    assert [r["id"] for r in seen_by_stranger] == [stranger.host_id]
    for rows in (seen_by_a, seen_by_b):
        assert {r["id"] for r in rows} == {a.host_id, b.host_id}
    assert "no host in lattice 'default' runs actor" in call.failed_cleanly()
    assert "no live host" in inventory.failed_cleanly()
    assert stranger.alive_ids() == {stranger.host_id}
    assert stranger.host_id not in a.view() and stranger.host_id not in b.view()
    print(
        f"a dropped {a.stat('seal.bad_auth')} packets sealed with the wrong secret; "
        f"stranger ignored {stranger.stat('mdns.other_lattice')} mDNS records of the lattice"
    )
