"""A transport in a process with a low open-file limit: prints its port, serves until killed.

argv: SOFT_LIMIT.  Used by test_transport_tcp.py (the limit is per process, so
the silent connections the test opens must not count against it).
"""

from __future__ import annotations

import resource
import sys

import trio

from meshhost.config import TransportConfig
from meshhost.transport.pool import Transport
from tests.transport.transport_pair import PSK, host_key, seeded_random_bytes


async def echo(peer_id: str, channel: int, payload: bytes) -> bytes:
    return payload


async def main(soft: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    transport = Transport(
        host_key(1), "tcp-test", PSK, TransportConfig(), echo, random_bytes=seeded_random_bytes(1)
    )
    async with trio.open_nursery() as nursery:
        addr = await nursery.start(transport.serve, "127.0.0.1", 0)
        print(addr[1], flush=True)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
