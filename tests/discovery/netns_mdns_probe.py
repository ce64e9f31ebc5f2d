"""Run inside a fresh network namespace (see test_mdns.py): mDNS hosts find each other.

Starts three hosts of lattice "probe" and one with another secret, all in
this process on loopback, waits until each of the three has been proposed
the two others, then lets the odd one browse a little longer and prints a
JSON report on stdout.  Exit code 0 means the report was written.
"""

from __future__ import annotations

import json
import sys

import trio

from meshhost.discovery.mdns import MdnsDiscovery
from meshhost.identity.keyring import Keyring

DEADLINE_S = 20.0


async def main(service_type: str) -> None:
    secret, other = bytes(range(32)), bytes(range(1, 33))
    hosts = [(f"NHOST{i}", ("127.0.0.1", 40000 + i), secret) for i in range(3)]
    hosts.append(("NOTHER", ("127.0.0.1", 40009), other))
    seen: dict[str, set[tuple[str, int]]] = {h[0]: set() for h in hosts}
    discoveries = {}
    async with trio.open_nursery() as nursery:
        for host_id, addr, key in hosts:
            disc = MdnsDiscovery(
                host_id=host_id,
                addr=addr,
                keyring=Keyring.create("probe", [key]),
                service_type=service_type,
            )
            discoveries[host_id] = disc
            await nursery.start(disc.serve, lambda addrs, h=host_id: seen[h].update(addrs))
        started = trio.current_time()
        with trio.move_on_after(DEADLINE_S):
            while not all(len(seen[h[0]]) >= 2 for h in hosts[:3]):
                await trio.sleep(0.05)
        found_after_s = trio.current_time() - started
        # Give the odd host as long again to (wrongly) see anyone.
        await trio.sleep(min(found_after_s, 2.0))
        report = {
            "found_after_s": round(found_after_s, 3),
            "seen": {k: sorted(map(list, v)) for k, v in seen.items()},
            "stats": {
                k: {s: getattr(d.stats, s) for s in d.stats.__slots__}
                for k, d in discoveries.items()
            },
        }
        nursery.cancel_scope.cancel()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
