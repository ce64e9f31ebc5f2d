"""Transport records: ``u16 length || ChaCha20-Poly1305(frame)``, on preallocated buffers.

The hot path of every session.  It uses the same IETF ChaCha20-Poly1305 as
:class:`~meshhost.transport.noise.CipherState` (same key, same counter nonce,
same state object), but calls libsodium through pynacl's own cffi binding
(``nacl._sodium``) so that it can encrypt straight into the output buffer and
decrypt straight out of the receive buffer: no temporary per message and
fewer copies of each 64 KiB chunk than
``nacl.bindings.crypto_aead_chacha20poly1305_ietf_*``, which allocate and
copy: ``bench/records.py`` measured the public API 1.2-1.5x slower per
10-64 KiB record and 2.9-3.6x per 100-byte record (seal + open, two runs).

This is the only module that imports ``nacl._sodium``; it uses ``ffi.NULL``,
``ffi.from_buffer`` and ``lib.crypto_aead_chacha20poly1305_ietf_encrypt`` /
``_decrypt``.  ``tests/transport/test_transport_private_api.py`` checks each,
and that both paths give identical bytes, against the pynacl version below
(pinned exactly in pyproject.toml).
"""

from __future__ import annotations

import struct
import threading

from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from meshhost.errors import NoiseError, NoiseUsageError
from meshhost.transport.noise import MAX_MESSAGE_BYTES, MAX_NONCE, TAG_BYTES, CipherState

__all__ = ["CHECKED_PYNACL", "open_record", "seal_record"]

CHECKED_PYNACL = "1.6.2"
"""The pynacl whose private binding this module was checked against."""

_encrypt = _lib.crypto_aead_chacha20poly1305_ietf_encrypt
_decrypt = _lib.crypto_aead_chacha20poly1305_ietf_decrypt
_NULL = _ffi.NULL
_nonce = struct.Struct("<4xQ").pack
_LEN = struct.Struct("!H").pack
_TAG_ROOM = bytes(TAG_BYTES)


class _Scratch(threading.local):
    """One decryption buffer per thread; sessions use it only synchronously."""

    def __init__(self) -> None:
        self.buf = bytearray(MAX_MESSAGE_BYTES)
        self.view = memoryview(self.buf)
        self.ptr = _ffi.from_buffer(self.buf)


_scratch = _Scratch()


def seal_record(
    cipher: CipherState, out: bytearray, head: bytes, body: bytes | memoryview = b""
) -> None:
    """Append ``u16 length || ciphertext`` of ``head + body`` to ``out``.

    The plaintext is copied once, into ``out``, and encrypted in place there
    (libsodium allows the ciphertext to overwrite the message).  Raises
    NoiseUsageError if it does not fit one Noise message or the nonce space is
    exhausted.
    """
    k = cipher.k
    n = cipher.n
    if k is None or n >= MAX_NONCE:
        raise NoiseUsageError("cipher has no key or its nonce space is exhausted")
    size = len(head) + len(body)
    clen = size + TAG_BYTES
    if clen > MAX_MESSAGE_BYTES:
        raise NoiseUsageError(f"frame of {size} bytes does not fit one Noise message")
    start = len(out) + 2
    out += _LEN(clen)
    out += head
    out += body
    out += _TAG_ROOM
    dest = _ffi.from_buffer(out)
    pos = dest + start
    _encrypt(pos, _NULL, pos, size, _NULL, 0, _NULL, _nonce(n), k)
    del dest, pos  # release the buffer export so ``out`` may grow again
    cipher.n = n + 1


def open_record(
    cipher: CipherState, data: bytes | bytearray, start: int, length: int
) -> memoryview:
    """Decrypt the ciphertext ``data[start:start+length]``.

    Returns a view of the plaintext in a per-thread scratch buffer, valid only
    until the next call: copy what you keep.  Raises NoiseError (nonce
    unchanged) if authentication fails.
    """
    k = cipher.k
    n = cipher.n
    if k is None or n >= MAX_NONCE:
        raise NoiseError("peer exhausted the nonce space")
    if length < TAG_BYTES or start + length > len(data):
        raise NoiseError("record is shorter than its authentication tag")
    scratch = _scratch
    src = _ffi.from_buffer(data)
    rc = _decrypt(scratch.ptr, _NULL, _NULL, src + start, length, _NULL, 0, _nonce(n), k)
    del src
    if rc != 0:
        raise NoiseError(
            "message failed authentication (wrong key, tampered, replayed or reordered)"
        )
    cipher.n = n + 1
    return scratch.view[: length - TAG_BYTES]
