"""The Noise core replays every cacophony vector byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshhost.transport.noise import CipherState, HandshakeState

VECTORS_PATH = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "noise-vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text())["vectors"]
SUPPORTED = ("NN", "XX", "IK", "NNpsk0", "XXpsk3", "IKpsk2")


def _fixed(hex_key: str) -> Callable[[int], bytes]:
    keys = [bytes.fromhex(hex_key)]

    def random_bytes(n: int) -> bytes:
        assert n == 32 and keys, "the handshake asked for more ephemeral keys than expected"
        return keys.pop()

    return random_bytes


def _side(vector: dict[str, Any], prefix: str, initiator: bool) -> HandshakeState:
    def opt(name: str) -> bytes | None:
        value = vector.get(f"{prefix}_{name}")
        return bytes.fromhex(value) if value else None

    return HandshakeState(
        vector["protocol_name"],
        initiator=initiator,
        prologue=bytes.fromhex(vector[f"{prefix}_prologue"]),
        s=opt("static"),
        rs=opt("remote_static"),
        psks=[bytes.fromhex(p) for p in vector.get(f"{prefix}_psks", [])],
        random_bytes=_fixed(vector[f"{prefix}_ephemeral"]),
    )


def test_vector_file_covers_every_supported_pattern_with_both_hashes() -> None:
    names = {v["protocol_name"] for v in VECTORS}
    for pattern in SUPPORTED:
        for hash_name in ("BLAKE2b", "SHA256"):
            assert f"Noise_{pattern}_25519_ChaChaPoly_{hash_name}" in names


@pytest.mark.parametrize("vector", VECTORS, ids=[v["protocol_name"] for v in VECTORS])
def test_vector_replays_exactly(vector: dict[str, Any]) -> None:
    init = _side(vector, "init", initiator=True)
    resp = _side(vector, "resp", initiator=False)
    ciphers: dict[bool, tuple[CipherState, CipherState]] = {}
    for i, msg in enumerate(vector["messages"]):
        payload = bytes.fromhex(msg["payload"])
        expected = bytes.fromhex(msg["ciphertext"])
        init_writes = i % 2 == 0
        if not init.complete:
            writer, reader = (init, resp) if init_writes else (resp, init)
            assert writer.is_my_turn and not reader.is_my_turn
            assert writer.write_message(payload).hex() == expected.hex()
            assert reader.read_message(expected) == payload
            if init.complete:
                assert resp.complete
                assert init.handshake_hash.hex() == vector["handshake_hash"]
                assert resp.handshake_hash.hex() == vector["handshake_hash"]
                ciphers = {True: init.split(), False: resp.split()}
            continue
        send, _ = ciphers[init_writes]
        _, receive = ciphers[not init_writes]
        assert send.encrypt_with_ad(b"", payload).hex() == expected.hex()
        assert receive.decrypt_with_ad(b"", expected) == payload
    assert ciphers, "the vector never completed its handshake"
