"""wasmcloud:builtin:numbergen: claim needed, no link; seeded randomness."""

from __future__ import annotations

import random
import uuid

import msgpack
import pytest

from meshhost.capabilities import NUMBERGEN, Dispatcher, NumberGenProvider
from meshhost.capabilities.contracts import RangeLimit
from meshhost.errors import NotSignedForCapability, ProviderError


@pytest.fixture
def gen(make_actor):
    rng = random.Random(7)
    d = Dispatcher(providers=[NumberGenProvider(random_bytes=rng.randbytes)])
    actor = make_actor((NUMBERGEN,))

    def call(op: str, payload: bytes = b""):
        return msgpack.unpackb(d.host_call(actor, "", NUMBERGEN, f"NumberGen.{op}", payload))

    return d, call


def test_guid_is_a_version_4_uuid(gen):
    _, call = gen
    guid = uuid.UUID(call("GenerateGuid"))
    assert guid.version == 4 and str(guid) != call("GenerateGuid")


def test_random_in_range_is_inclusive_and_covers_the_range(gen):
    _, call = gen
    seen = {call("RandomInRange", RangeLimit(0, 4).encode()) for _ in range(200)}
    assert seen == {0, 1, 2, 3, 4}
    assert call("RandomInRange", RangeLimit(7, 7).encode()) == 7
    with pytest.raises(ProviderError, match="min 5 is greater than max 4"):
        call("RandomInRange", RangeLimit(5, 4).encode())


def test_random32_and_bytes(gen):
    _, call = gen
    assert 0 <= call("Random32") < 2**32
    data = call("RandomBytes", msgpack.packb(16))
    assert isinstance(data, list) and len(data) == 16 and all(0 <= b < 256 for b in data)


def test_numbergen_needs_the_claim(gen, make_actor):
    d, _ = gen
    with pytest.raises(
        NotSignedForCapability, match="is not signed for wasmcloud:builtin:numbergen"
    ):
        d.host_call(make_actor(()), "", NUMBERGEN, "NumberGen.Random32", b"")
