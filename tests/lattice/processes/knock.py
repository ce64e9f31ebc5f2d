"""Knock on a host's TCP port with handshake message 1s; run inside the test's namespace.

``python knock.py HOST PORT LATTICE MODE ...`` prints one JSON object:

* ``stranger N SECRET``: N connections (64 at a time), each sending a message 1
  made with SECRET (one the host does not hold) and reading until the host
  closes; ``{"connections", "bytes_back", "closed", "hung"}``.
* ``replay SECRET``: one message 1 made with the lattice's SECRET, sent on two
  connections one after the other; ``{"first", "second"}`` = bytes each got back.
* ``garbage N SECRET``: N connections (64 at a time) of every kind that is
  not a handshake, each closed for writing once sent: random bytes, a length
  prefix promising more than follows, a valid message 1 cut short, and
  nothing at all; ``{"connections", "bytes_back", "closed", "hung"}``.
* ``burst N SECRET``: N connections at once, each with a fresh, valid message 1;
  ``{"answered", "silent", "hung"}`` (answered = got message 2 back).

Only loopback addresses are ever given to it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from meshhost.identity.keyring import NOISE_PSK, decode_secret, derive
from meshhost.transport.handshake import prologue
from meshhost.transport.noise import HandshakeState
from meshhost.transport.session import PROTOCOL_NAME

READ_S = 10.0
"""A host that neither answers nor closes within this long is counted as hanging."""


def message_1(secret_text: str, lattice: str) -> bytes:
    psk = derive(decode_secret(secret_text), NOISE_PSK, lattice)
    hs = HandshakeState(
        PROTOCOL_NAME,
        initiator=True,
        prologue=prologue(lattice),
        s=os.urandom(32),
        psks=[psk],
        random_bytes=os.urandom,
    )
    msg = hs.write_message(b"")
    return len(msg).to_bytes(2, "big") + msg


def exchange(
    addr: tuple[str, int], record: bytes, *, until_eof: bool, half_close: bool = False
) -> tuple[int, bool]:
    """Send ``record`` (then end our side, if ``half_close``); return (bytes received,
    whether the host closed in time).  Without ``until_eof``, return as soon as any
    byte arrives."""
    received = 0
    with socket.create_connection(addr, timeout=READ_S) as sock:
        try:
            sock.sendall(record)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            return 0, True  # closed before we even wrote: refused at accept
        deadline = time.monotonic() + READ_S
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return received, False
            except OSError:
                return received, True  # reset: closed
            if not data:
                return received, True
            received += len(data)
            if not until_eof:
                return received, True
        return received, False


def main() -> None:
    host, port, lattice, mode, *rest = sys.argv[1:]
    addr = (host, int(port))
    if mode == "stranger":
        n, secret = int(rest[0]), rest[1]
        records = [message_1(secret, lattice) for _ in range(16)]
        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(
                pool.map(
                    lambda i: exchange(addr, records[i % len(records)], until_eof=True), range(n)
                )
            )
        print(
            json.dumps(
                {
                    "connections": n,
                    "bytes_back": sum(r[0] for r in results),
                    "closed": sum(r[1] for r in results),
                    "hung": sum(not r[1] for r in results),
                }
            )
        )
    elif mode == "garbage":
        n, valid = int(rest[0]), message_1(rest[1], lattice)
        shapes = [
            os.urandom(64),
            (4000).to_bytes(2, "big") + os.urandom(10),
            valid[: len(valid) // 2],
            b"",
        ]
        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(
                pool.map(
                    lambda i: exchange(
                        addr, shapes[i % len(shapes)], until_eof=True, half_close=True
                    ),
                    range(n),
                )
            )
        print(
            json.dumps(
                {
                    "connections": n,
                    "bytes_back": sum(r[0] for r in results),
                    "closed": sum(r[1] for r in results),
                    "hung": sum(not r[1] for r in results),
                }
            )
        )
    elif mode == "replay":
        record = message_1(rest[0], lattice)
        first, _ = exchange(addr, record, until_eof=False)
        second, closed = exchange(addr, record, until_eof=True)
        print(json.dumps({"first": first, "second": second, "second_closed": closed}))
    elif mode == "burst":
        n, secret = int(rest[0]), rest[1]
        records = [message_1(secret, lattice) for _ in range(n)]
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(lambda r: exchange(addr, r, until_eof=False), records))
        print(
            json.dumps(
                {
                    "answered": sum(r[0] > 0 for r in results),
                    "silent": sum(r[0] == 0 and r[1] for r in results),
                    "hung": sum(not r[1] for r in results),
                }
            )
        )
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
