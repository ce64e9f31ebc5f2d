"""Benchmark: transport records through pynacl's private cffi binding vs its public API.

Run: ``python bench/records.py [--rounds 15] [--seconds 0.2]``.

``meshhost/transport/records.py`` calls libsodium through ``nacl._sodium`` so
that it encrypts in place in the output buffer and decrypts out of the
receive buffer.  The public ``nacl.bindings.crypto_aead_chacha20poly1305_ietf_*``
take and return ``bytes``, so a record costs a copy of the plaintext in, a
new ciphertext out and a copy into the output buffer (and the reverse to
open).  This prints, per record size, the time to seal and open one record
each way (median over shuffled rounds) and the ratio public / private from
the same run; a ratio near 1.00 means the private binding buys nothing.

Figures on a shared 2-core machine are noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import time
from collections.abc import Callable

from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

from meshhost.errors import NoiseError, NoiseUsageError
from meshhost.transport.noise import MAX_MESSAGE_BYTES, MAX_NONCE, TAG_BYTES, CipherState
from meshhost.transport.records import open_record, seal_record

SIZES = (100, 10 * 1024, 64 * 1024 - TAG_BYTES - 64)
_nonce = struct.Struct("<4xQ").pack
_LEN = struct.Struct("!H").pack


def seal_public(
    cipher: CipherState, out: bytearray, head: bytes, body: bytes | memoryview = b""
) -> None:
    """seal_record's contract through pynacl's public API only."""
    k, n = cipher.k, cipher.n
    if k is None or n >= MAX_NONCE:
        raise NoiseUsageError("cipher has no key or its nonce space is exhausted")
    size = len(head) + len(body)
    if size + TAG_BYTES > MAX_MESSAGE_BYTES:
        raise NoiseUsageError(f"frame of {size} bytes does not fit one Noise message")
    out += _LEN(size + TAG_BYTES)
    out += crypto_aead_chacha20poly1305_ietf_encrypt(head + bytes(body), None, _nonce(n), k)
    cipher.n = n + 1


def open_public(
    cipher: CipherState, data: bytes | bytearray, start: int, length: int
) -> memoryview:
    """open_record's contract through pynacl's public API only."""
    k, n = cipher.k, cipher.n
    if k is None or n >= MAX_NONCE:
        raise NoiseError("peer exhausted the nonce space")
    if length < TAG_BYTES or start + length > len(data):
        raise NoiseError("record is shorter than its authentication tag")
    try:
        plain = crypto_aead_chacha20poly1305_ietf_decrypt(
            bytes(memoryview(data)[start : start + length]), None, _nonce(n), k
        )
    except CryptoError:
        raise NoiseError("message failed authentication") from None
    cipher.n = n + 1
    return memoryview(plain)


Seal = Callable[[CipherState, bytearray, bytes, bytes | memoryview], None]
Open = Callable[[CipherState, bytes | bytearray, int, int], memoryview]


def _round_trip_us(seal: Seal, open_: Open, size: int, seconds: float) -> float:
    key = bytes(range(32))
    send, recv = CipherState(key), CipherState(key)
    head, body = b"h" * 8, bytes(size)
    out = bytearray()
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            del out[:]
            seal(send, out, head, body)
            plain = open_(recv, out, 2, len(out) - 2)
        count += 50
    assert bytes(plain[:8]) == head
    return elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.2)
    args = parser.parse_args()
    # Same bytes both ways before timing anything.
    a, b = CipherState(bytes(32)), CipherState(bytes(32))
    out_a, out_b = bytearray(), bytearray()
    seal_record(a, out_a, b"head", b"body")
    seal_public(b, out_b, b"head", b"body")
    assert out_a == out_b, "public and private records differ"
    ways = {"private": (seal_record, open_record), "public": (seal_public, open_public)}
    times: dict[tuple[str, int], list[float]] = {(w, s): [] for w in ways for s in SIZES}
    cells = list(times)
    for _ in range(args.rounds):
        random.shuffle(cells)
        for way, size in cells:
            seal, open_ = ways[way]
            times[way, size].append(_round_trip_us(seal, open_, size, args.seconds))
    print(f"{'record bytes':>12} {'private us':>11} {'public us':>10} {'public/private':>15}")
    for size in SIZES:
        private = statistics.median(times["private", size])
        public = statistics.median(times["public", size])
        print(f"{size:>12} {private:>11.2f} {public:>10.2f} {public / private:>15.2f}")


if __name__ == "__main__":
    main()
