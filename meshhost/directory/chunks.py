"""Splitting large LWW values into piggyback-sized pieces, and joining them.

A deployed manifest (1-3 KiB, up to 64 KiB) does not fit in one SWIM packet
(~1200 bytes), and push-pull alone would take minutes to reach a large
lattice.  So a large entry travels as ``LWW_CHUNK`` pieces, each its own
broadcast; a receiver buffers pieces per (ns, key, stamp) and merges the entry
once every piece is there.  Buffers are bounded in count and size; a value
whose pieces never all arrive is repaired by push-pull.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from meshhost.directory.codec import (
    MAX_CHUNKS,
    MAX_VALUE_BYTES,
    LwwChunk,
    LwwEntry,
    decode_value,
    encode,
    encode_value,
)
from meshhost.errors import DirectoryDecodeError, DirectoryValueError

__all__ = ["MAX_PARTIAL_VALUES", "MIN_CHUNK_DATA_BYTES", "Reassembler", "split"]

MAX_PARTIAL_VALUES = 32
"""Large values being reassembled at once; a few manifests deployed together."""
MIN_CHUNK_DATA_BYTES = 128
"""Smallest piece worth its header.  A signed entry's pieces carry its ~125-byte
signature each, leaving ~230 bytes of a 460-byte piece for data (a value over
MAX_CHUNKS pieces spreads by push-pull only)."""


def split(entry: LwwEntry, max_message_bytes: int) -> list[LwwChunk]:
    """Pieces of ``entry`` whose encoded messages are each <= ``max_message_bytes``.

    Returns [] when the header alone leaves less than MIN_CHUNK_DATA_BYTES
    (enormous keys); such an entry spreads by push-pull only.
    """
    if entry.value is None:
        raise DirectoryValueError("tombstones are small; they are never chunked")
    data = encode_value(entry.value)
    probe = LwwChunk(entry.ns, entry.key, entry.stamp, MAX_CHUNKS - 1, MAX_CHUNKS, b"", entry.auth)
    # +5: the largest bin header msgpack may need for the data
    room = max_message_bytes - len(encode(probe)) - 5
    if room < MIN_CHUNK_DATA_BYTES:
        return []
    count = -(-len(data) // room)
    if count > MAX_CHUNKS:
        return []
    return [
        LwwChunk(
            entry.ns, entry.key, entry.stamp, i, count, data[i * room : (i + 1) * room], entry.auth
        )
        for i in range(count)
    ]


@dataclass(slots=True)
class _Partial:
    count: int
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Buffers pieces until a value is complete."""

    def __init__(self, max_values: int = MAX_PARTIAL_VALUES) -> None:
        self._partials: OrderedDict[tuple[str, str, object, object], _Partial] = OrderedDict()
        self._max_values = max_values

    def __len__(self) -> int:
        return len(self._partials)

    def add(self, chunk: LwwChunk) -> LwwEntry | None:
        """Store one piece; returns the whole entry when this piece completes it.

        Raises DirectoryDecodeError when the pieces disagree or the joined
        bytes are not a valid value.
        """
        # the signature is part of the identity: a piece with another (forged) one
        # cannot spoil the pieces of the real entry
        ident = (chunk.ns, chunk.key, chunk.stamp, chunk.auth)
        partial = self._partials.get(ident)
        if partial is None:
            partial = self._partials[ident] = _Partial(chunk.count)
            while len(self._partials) > self._max_values:
                self._partials.popitem(last=False)
        elif partial.count != chunk.count:
            del self._partials[ident]
            raise DirectoryDecodeError("pieces of one chunked value disagree on their count")
        if chunk.index in partial.parts:
            return None
        partial.size += len(chunk.data)
        if partial.size > MAX_VALUE_BYTES:
            del self._partials[ident]
            raise DirectoryDecodeError(f"chunked value exceeds {MAX_VALUE_BYTES} bytes")
        partial.parts[chunk.index] = chunk.data
        if len(partial.parts) < partial.count:
            return None
        del self._partials[ident]
        data = b"".join(partial.parts[i] for i in range(partial.count))
        value = decode_value(data, "chunked value")
        if value is None:
            raise DirectoryDecodeError("a chunked value cannot be a tombstone")
        return LwwEntry(chunk.ns, chunk.key, chunk.stamp, value, chunk.auth)

    def has(self, chunk: LwwChunk) -> bool:
        """True when this piece is already buffered."""
        partial = self._partials.get((chunk.ns, chunk.key, chunk.stamp, chunk.auth))
        return partial is not None and chunk.index in partial.parts

    def discard(self, ns: str, key: str) -> None:
        """Drop pieces of every version of (ns, key) (we hold a newer one)."""
        for ident in [i for i in self._partials if i[0] == ns and i[1] == key]:
            del self._partials[ident]
