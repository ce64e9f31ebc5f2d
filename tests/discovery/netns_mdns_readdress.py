"""Run inside a fresh network namespace (see test_mdns.py): a host whose address
changes re-announces, and a peer is proposed the new address.

Host A is bound to 0.0.0.0, so it announces "every local address", here
supplied by a function the script controls; B browses.  After B was proposed
A's first address, A's address list changes and B must be proposed the new
one.  Prints a JSON report on stdout.
"""

from __future__ import annotations

import json
import sys

import trio

from meshhost.discovery.mdns import MdnsDiscovery
from meshhost.identity.keyring import Keyring

DEADLINE_S = 15.0


async def main(service_type: str) -> None:
    secret = bytes(range(32))
    current = ["127.0.0.1"]
    seen: list[tuple[str, int]] = []
    a = MdnsDiscovery(
        host_id="NHOSTA",
        addr=("0.0.0.0", 41000),
        keyring=Keyring("probe", [secret]),
        service_type=service_type,
        interfaces=["127.0.0.1"],
        address_check_interval_s=0.2,
        addresses=lambda: list(current),
    )
    b = MdnsDiscovery(
        host_id="NHOSTB",
        addr=("127.0.0.1", 41001),
        keyring=Keyring("probe", [secret]),
        service_type=service_type,
    )
    report: dict[str, object] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve, lambda addrs: None)
        await nursery.start(b.serve, seen.extend)
        with trio.move_on_after(DEADLINE_S):
            while ("127.0.0.1", 41000) not in seen:
                await trio.sleep(0.05)
        report["first"] = sorted(map(list, set(seen)))
        current[:] = ["127.0.0.9"]
        changed_at = trio.current_time()
        with trio.move_on_after(DEADLINE_S):
            while ("127.0.0.9", 41000) not in seen:
                await trio.sleep(0.05)
        report["after_change"] = sorted(map(list, set(seen)))
        report["reproposed_after_s"] = round(trio.current_time() - changed_at, 3)
        report["announcements"] = a.stats.announcements
        nursery.cancel_scope.cancel()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
