"""``wasmcloud:builtin:numbergen``: random numbers and GUIDs (numbergen.smithy).

| operation | input | output |
| --- | --- | --- |
| ``NumberGen.GenerateGuid`` | — | String, a version 4 UUID |
| ``NumberGen.RandomInRange`` | ``RangeLimit {min, max}`` (U32) | U32 in [min, max] |
| ``NumberGen.Random32`` | — | U32 |
| ``NumberGen.RandomBytes`` | U32 count | list of U8 (a msgpack array of ints) |

Like logging, wasmCloud served this in the host with no link (the claim is
still required).  Randomness comes from an injected ``random_bytes``
(``os.urandom`` by default), so tests and the simulator stay seeded.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import ClassVar

import msgpack

from meshhost.capabilities.contracts import NUMBERGEN, RangeLimit
from meshhost.capabilities.providers.base import CallContext, Provider
from meshhost.capabilities.providers.codec import Kind, decode_value, encode_value
from meshhost.errors import ProviderError, ProviderPayloadTooLarge

__all__ = ["MAX_RANDOM_BYTES", "NumberGenProvider"]

MAX_RANDOM_BYTES = 1024 * 1024
"""Largest RandomBytes answer (an array of ints costs up to 2 bytes each on the wire)."""


class NumberGenProvider(Provider):
    contract_id = NUMBERGEN
    OPERATIONS: ClassVar[dict[str, str]] = {
        "NumberGen.GenerateGuid": "op_guid",
        "NumberGen.RandomInRange": "op_in_range",
        "NumberGen.Random32": "op_random32",
        "NumberGen.RandomBytes": "op_bytes",
    }

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        super().__init__()
        self._random_bytes = random_bytes

    def _u32(self) -> int:
        return int.from_bytes(self._random_bytes(4), "little")

    def op_guid(self, ctx: CallContext, payload: bytes) -> bytes:
        guid = uuid.UUID(bytes=self._random_bytes(16), version=4)
        return encode_value(str(guid), Kind.STR)

    def op_random32(self, ctx: CallContext, payload: bytes) -> bytes:
        return encode_value(self._u32(), Kind.U32)

    def op_in_range(self, ctx: CallContext, payload: bytes) -> bytes:
        limit = RangeLimit.decode(payload)
        if limit.min > limit.max:
            raise ProviderError(
                f"NumberGen.RandomInRange: min {limit.min} is greater than max {limit.max}"
            )
        span = limit.max - limit.min + 1
        # rejection sampling: no modulo bias
        bound = (1 << 32) - (1 << 32) % span
        while True:
            value = self._u32()
            if value < bound:
                return encode_value(limit.min + value % span, Kind.U32)

    def op_bytes(self, ctx: CallContext, payload: bytes) -> bytes:
        count = decode_value(payload, Kind.U32, "NumberGen.RandomBytes count")
        if count > MAX_RANDOM_BYTES:
            raise ProviderPayloadTooLarge(
                f"NumberGen.RandomBytes: {count} bytes requested, at most {MAX_RANDOM_BYTES}"
            )
        packed: bytes = msgpack.packb(list(self._random_bytes(count)))
        return packed
