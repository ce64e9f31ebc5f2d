"""The capabilities tests' driver actor (``wat/caps_actor.wat``), shared with the
lattice and monitor tests: its signed module and the request of its ``call`` op."""

from __future__ import annotations

import os
import time
from pathlib import Path

from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.runtime import wat_to_wasm
from meshhost.testing import ISSUER

CAPS_WAT = Path(__file__).resolve().parent / "wat" / "caps_actor.wat"


def frame(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
    """The ``call`` op's request: binding, namespace and operation each prefixed by
    its length in one byte, then the payload; the actor makes that host call."""
    out = b""
    for part in (binding, namespace, operation):
        out += bytes([len(part)]) + part.encode()
    return out + payload


def caps_actor(name: str, caps: tuple[str, ...]) -> tuple[bytes, str]:
    """(module, actor id): the driver actor signed by ``meshhost.testing.ISSUER`` with
    a fresh actor key, claiming ``caps``."""
    module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    wasm = sign_module(
        wat_to_wasm(CAPS_WAT.read_text()),
        issuer=ISSUER,
        subject=module,
        name=name,
        caps=caps,
        now=time.time(),
    )
    return wasm, module.public_key
