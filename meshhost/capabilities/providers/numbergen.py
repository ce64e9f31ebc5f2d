"""``wasmcloud:builtin:numbergen``: random numbers and GUIDs (numbergen.smithy).

| operation | input | output |
| --- | --- | --- |
| ``NumberGen.GenerateGuid`` | — | String, a version 4 UUID |
| ``NumberGen.RandomInRange`` | ``RangeLimit {min, max}`` (U32) | U32 in [min, max] |
| ``NumberGen.Random32`` | — | U32 |
| ``NumberGen.RandomBytes`` | U32 count | list of U8 (a msgpack array of ints) |

Like logging, wasmCloud served this in the host with no link (the claim is
still required).

The older generations' "extras" are served too, also without a link
(``legacy.py``): ``wascc:extras`` and ``wasmcloud:extras`` operations
``RequestGuid``, ``RequestRandom`` (min ≤ n < max, as the hosts'
``gen_range(min..max)``), ``RequestSequence`` (per actor, from 0, kept in
memory).  A request map holding ``guid``/``sequence``/``random`` is the hosts'
``GeneratorRequest`` and gets a ``GeneratorResult``; otherwise it is the
wasmcloud-actor-extras crate's ``{}`` / ``{min, max}`` and gets a bare
String / u32 / u64.  Randomness comes from an injected ``random_bytes``
(``os.urandom`` by default), so tests and the simulator stay seeded.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import msgpack

from meshhost.capabilities import legacy as lg
from meshhost.capabilities.contracts import NUMBERGEN, RangeLimit
from meshhost.capabilities.providers.base import CallContext, Provider
from meshhost.capabilities.providers.codec import Kind, decode_value, encode_value, unpack
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
        "RequestGuid": "legacy_guid",
        "RequestRandom": "legacy_random",
        "RequestSequence": "legacy_sequence",
    }
    CONTRACT_ALIASES = (lg.WASCC_EXTRAS, lg.WASMCLOUD_EXTRAS)

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        super().__init__()
        self._random_bytes = random_bytes
        self._sequences: dict[str, int] = {}
        self._sequence_lock = threading.Lock()

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

    # --- waSCC / wasmCloud 0.1x extras ------------------------------------------------

    def _generator_request(self, ctx: CallContext, payload: bytes) -> dict[str, Any] | None:
        """The hosts' GeneratorRequest, or None for the actor crate's argument maps."""
        value = unpack(payload, f"{ctx.link.contract_id} request") if payload else {}
        if isinstance(value, dict) and lg.GENERATOR_REQUEST_KEYS & value.keys():
            return lg.GENERATOR_REQUEST.decode(payload)
        return None

    def _result(self, guid: str | None = None, sequence: int = 0, random: int = 0) -> bytes:
        return lg.GENERATOR_RESULT.encode(guid=guid, sequence_number=sequence, random_number=random)

    def legacy_guid(self, ctx: CallContext, payload: bytes) -> bytes:
        guid = str(uuid.UUID(bytes=self._random_bytes(16), version=4))
        if self._generator_request(ctx, payload) is not None:
            return self._result(guid=guid)
        return encode_value(guid, Kind.STR)

    def legacy_random(self, ctx: CallContext, payload: bytes) -> bytes:
        request = self._generator_request(ctx, payload)
        if request is not None and not request["random"]:
            return self._result()  # the hosts answered GeneratorResult::default()
        args = request or lg.RANDOM_ARGS.decode(payload)
        if args["min"] >= args["max"]:
            raise ProviderError(
                f"RequestRandom: min {args['min']} must be less than max {args['max']} "
                "(the range excludes max)"
            )
        n = decode_value(
            self.op_in_range(ctx, RangeLimit(args["min"], args["max"] - 1).encode()),
            Kind.U32,
            "random",
        )
        return self._result(random=n) if request is not None else encode_value(n, Kind.U32)

    def legacy_sequence(self, ctx: CallContext, payload: bytes) -> bytes:
        request = self._generator_request(ctx, payload)
        with self._sequence_lock:
            n = self._sequences.get(ctx.actor.actor_id, 0)
            self._sequences[ctx.actor.actor_id] = n + 1
        return self._result(sequence=n) if request is not None else encode_value(n, Kind.U64)
