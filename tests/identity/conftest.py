"""Fixtures for the identity tests: deterministic keys and the Wasm builders."""

from __future__ import annotations

import pytest

from meshhost.identity import nkeys
from meshhost.identity.nkeys import KeyPair, Prefix

NOW = 1_760_000_000.0  # a fixed "now" (2025-10-09) for every time check


@pytest.fixture
def now() -> float:
    return NOW


@pytest.fixture
def issuer() -> KeyPair:
    return KeyPair(Prefix.ACCOUNT, bytes(range(32)))


@pytest.fixture
def other_issuer() -> KeyPair:
    return KeyPair(Prefix.ACCOUNT, bytes(range(1, 33)))


@pytest.fixture
def subject() -> KeyPair:
    return KeyPair(Prefix.MODULE, bytes(range(100, 132)))


@pytest.fixture
def seeded_random():
    """A deterministic random_bytes(n) for jti generation."""
    counter = iter(range(1 << 30))

    def random_bytes(n: int) -> bytes:
        start = next(counter)
        return bytes((start + i) % 256 for i in range(n))

    return random_bytes


__all__ = ["NOW", "nkeys"]
