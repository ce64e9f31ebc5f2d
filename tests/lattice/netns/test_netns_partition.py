"""A partition and a crash in a lattice of three namespaces on a bridge (default profile).

a is cut off (its port taken off the bridge: every packet in and out of its
eth0 lost, mDNS included).  Both sides must notice; meanwhile c makes a link and a
starts an actor.  After the cut is removed the lattice re-forms by itself
and both changes reach the other side.  Then a is killed with SIGKILL: b
and c notice and keep serving the actor from c.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.lattice.netns.bridge_lattice import BridgedLattice
from tests.lattice.processes.proc_lattice import HostProc

pytestmark = [pytest.mark.netns, pytest.mark.slow]

LINK = ("wasmcloud:keyvalue", "default")


def views_agree(hosts: tuple[HostProc, ...], alive: set[str]) -> bool:
    return all(h.alive_ids() == alive for h in hosts)


def test_a_partition_is_detected_heals_by_itself_and_a_kill_9_leaves_the_others_serving(
    bridged: BridgedLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    (a, b, c), formed_s = bridged.start_hosts("a", "b", "c")
    ids = {h.host_id for h in (a, b, c)}
    echo_path, echo_id = modules["echo"]
    kv_path, kv_id = modules["kvcounter"]
    c.cli("start", str(echo_path)).ok()

    bridged.cut("a")
    cut_at = time.monotonic()
    noticed: dict[str, float] = {}  # side -> seconds after the cut it first saw the other dead

    def both_sides_notice() -> bool:
        if b.view().get(a.host_id) == "dead" and c.view().get(a.host_id) == "dead":
            noticed.setdefault("b and c", time.monotonic() - cut_at)
        if set(a.view().values()) == {"alive", "dead"} and a.alive_ids() == {a.host_id}:
            noticed.setdefault("a", time.monotonic() - cut_at)
        return len(noticed) == 2

    bridged.wait_for(both_sides_notice, "b and c declare a dead and a declares b and c dead")
    print(
        f"partition detected by b and c in {noticed['b and c']:.2f} s, by a in {noticed['a']:.2f} s"
    )

    # Each side changes something the other cannot hear about yet.
    a.cli("start", str(kv_path)).ok()
    c.cli("link", "put", kv_id, LINK[0]).ok()
    assert "runs actor" in b.call(kv_id, "Echo", deadline_s=2).failed_cleanly()
    assert a.links() == []

    bridged.heal("a")
    healed_at = time.monotonic()
    bridged.wait_for(lambda: views_agree((a, b, c), ids), "all three see all three alive again")
    reformed_s = time.monotonic() - healed_at
    expected = [(kv_id, *LINK)]
    bridged.wait_for(lambda: a.links() == expected, "the link made on c during the cut reaches a")

    def actor_on_a_known_everywhere() -> bool:
        return all(
            {r["id"]: r["actors"] for r in h.cli("hosts", "--json").json()}.get(a.host_id) == 1
            for h in (b, c)
        )

    bridged.wait_for(actor_on_a_known_everywhere, "b and c list the actor a started during the cut")
    converged_s = time.monotonic() - healed_at
    print(
        f"after the heal: lattice re-formed in {reformed_s:.2f} s, "
        f"links and actors converged in {converged_s:.2f} s"
    )
    assert b.links() == expected and c.links() == expected

    # kill -9 of a: b and c notice and keep serving; the echo lives on c.
    a.cli("start", str(echo_path)).ok()
    a.kill9()
    killed_at = time.monotonic()
    bridged.wait_for(
        lambda: b.view().get(a.host_id) == "dead" and c.view().get(a.host_id) == "dead",
        "b and c declare the killed a dead",
    )
    print(f"kill -9 detected by b and c in {time.monotonic() - killed_at:.2f} s")
    for _ in range(3):
        answer = b.call(echo_id, "Echo", "still here").json()
        assert answer["host"] == c.host_id
        assert bytes.fromhex(answer["payload"]) == b"still here"
    assert views_agree((b, c), {b.host_id, c.host_id})
    print(f"formed in {formed_s:.2f} s (process start included)")
