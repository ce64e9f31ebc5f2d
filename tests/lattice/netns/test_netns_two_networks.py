"""A host on two networks and no default route cannot know which address its peers reach.

b's namespace has eth0 on the bridge and a second network (10.0.9.1/24,
first in order).  It used to advertise 10.0.9.1 silently, and the lattice
simply never formed.  It must say which address it picked among which, and
how to choose; once told with --advertise, it joins.
"""

from __future__ import annotations

import pytest

from tests.lattice.netns.bridge_lattice import BridgedLattice, run_in

pytestmark = [pytest.mark.netns, pytest.mark.slow]

OTHER_NETWORK = "10.0.9.1"
"""Sorts before the bridge's 10.231.0.N, so it is the one guessed."""


def test_a_host_on_two_networks_says_which_address_it_advertises_and_joins_once_told(
    bridged: BridgedLattice,
) -> None:
    a = bridged.add("a")
    netns = bridged.attach("b")
    run_in(netns, "ip", "link", "add", "m0", "type", "veth", "peer", "name", "m1")
    run_in(netns, "ip", "addr", "add", f"{OTHER_NETWORK}/24", "dev", "m0")
    run_in(netns, "ip", "link", "set", "m0", "up")
    b = bridged.add("b", netns=netns)
    bridged.wait_for(
        lambda: b.status() is not None and "--advertise" in b.log.read_text(),
        "b is up and has warned about its address",
    )
    assert b.status()["addr"][0] == OTHER_NETWORK  # type: ignore[index]
    warning = next(line for line in b.log.read_text().splitlines() if "--advertise" in line)
    assert "no default route" in warning, warning
    assert OTHER_NETWORK in warning and bridged.addresses["b"] in warning, warning
    assert "Traceback" not in b.log.read_text()
    assert "--advertise" not in a.log.read_text()  # one network: nothing to warn about

    b.kill9()
    b.extra_args = ("--advertise", bridged.addresses["b"])
    b.start()
    bridged.wait_for(lambda: b.status() is not None, "b restarted with --advertise")
    ids = {a.host_id, b.host_id}
    bridged.wait_for(
        lambda: a.alive_ids() == ids and b.alive_ids() == ids, "a and b see each other alive"
    )
    assert b.status()["addr"][0] == bridged.addresses["b"]  # type: ignore[index]
