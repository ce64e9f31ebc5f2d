"""pynacl's private cffi binding, used only by meshhost/transport/records.py: each name
asserted here, and its in-place sealing checked against pynacl's public AEAD, so a
pynacl upgrade that changes it fails here loudly (issue 13, point 7)."""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

import pytest
from nacl import _sodium
from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
)

from meshhost.errors import NoiseError
from meshhost.transport import records
from meshhost.transport.noise import TAG_BYTES, CipherState
from meshhost.transport.records import CHECKED_PYNACL, open_record, seal_record

MESHHOST = Path(records.__file__).parents[1]


def _nonce(n: int) -> bytes:
    return bytes(4) + n.to_bytes(8, "little")


def test_the_installed_pynacl_is_the_one_checked() -> None:
    installed = version("pynacl")
    assert installed == CHECKED_PYNACL, (
        f"pynacl {installed} is installed but meshhost/transport/records.py was checked "
        f"against {CHECKED_PYNACL}: re-run this file's checks of nacl._sodium, then raise "
        "CHECKED_PYNACL with the pin in pyproject.toml"
    )
    assert f'"pynacl=={CHECKED_PYNACL}"' in (MESHHOST.parent / "pyproject.toml").read_text()


def test_every_private_name_used_exists() -> None:
    for name in (
        "crypto_aead_chacha20poly1305_ietf_encrypt",
        "crypto_aead_chacha20poly1305_ietf_decrypt",
    ):
        assert callable(getattr(_sodium.lib, name)), name
    assert _sodium.ffi.NULL is not None
    buf = bytearray(4)
    assert _sodium.ffi.typeof(_sodium.ffi.from_buffer(buf)).cname == "char[]"


def test_only_records_imports_the_private_binding() -> None:
    users = sorted(
        str(p.relative_to(MESHHOST))
        for p in MESHHOST.rglob("*.py")
        if "nacl._sodium" in p.read_text() or "from nacl import _sodium" in p.read_text()
    )
    assert users == ["transport/records.py"]


@pytest.mark.parametrize("size", [0, 1, 100, 10 * 1024, 65535 - TAG_BYTES - 8])
def test_sealing_in_place_gives_the_public_apis_bytes_and_opens_them(size: int) -> None:
    key, head, body = os.urandom(32), os.urandom(8), os.urandom(size)
    send, recv = CipherState(key), CipherState(key)
    out = bytearray(b"prefix")
    for n in range(2):  # the second seal grows ``out``: the buffer export was released
        start = len(out)
        seal_record(send, out, head, body)
        sealed = bytes(out[start + 2 :])
        assert int.from_bytes(out[start : start + 2], "big") == len(sealed)
        assert sealed == crypto_aead_chacha20poly1305_ietf_encrypt(
            head + body, None, _nonce(n), key
        )
        plain = open_record(recv, out, start + 2, len(sealed))
        assert bytes(plain) == head + body
        assert (
            crypto_aead_chacha20poly1305_ietf_decrypt(sealed, None, _nonce(n), key) == head + body
        )
    assert (send.n, recv.n) == (2, 2)


def test_a_tampered_record_fails_and_leaves_the_nonce() -> None:
    key = os.urandom(32)
    send, recv = CipherState(key), CipherState(key)
    out = bytearray()
    seal_record(send, out, b"head", b"body")
    out[5] ^= 1
    with pytest.raises(NoiseError, match="failed authentication"):
        open_record(recv, out, 2, len(out) - 2)
    assert recv.n == 0
