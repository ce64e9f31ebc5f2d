"""msgpack payload decoding with limits, in the shapes wasmCloud 0.x actors use.

wasmCloud 0.x actors (Rust ``wasmbus-rpc``, TinyGo, AssemblyScript) encode
operation payloads with MessagePack:

* a structure is a map keyed by the field names of the Smithy interface
  (camelCase as declared: ``queryString``, ``statusCode``, ``replyTo``);
  ``rmp_serde::to_vec_named`` writes the fields in declaration order.  Its
  decoder also accepts the positional (array) form, so we do too;
* a bare ``String`` / ``Boolean`` / ``I32`` input or output is a bare msgpack
  value (``KeyValue.Get`` takes a msgpack string, ``KeyValue.Del`` answers a
  msgpack bool);
* ``Blob`` fields are msgpack ``bin`` (``serde_bytes``);
* optional fields are left out when absent (``skip_serializing_if``);
* an operation without output answers an empty payload;
* ``wasmbus-rpc`` >= 0.8 may put a one-byte format prefix in front:
  ``0xc1`` + msgpack (accepted) or ``0x7f`` + CBOR (refused with a clear
  error: only interfaces declaring wasmbus protocol "2" use it).

We are lenient where real guests are sloppy and strict where it matters:
missing fields take their zero value (the generated Rust code has
``#[serde(default)]`` on them), unknown keys are ignored, ``bin`` is accepted
where a string is expected if it is UTF-8 (and the reverse for blobs), and
trailing ``0x00`` bytes after the value are ignored (one real AssemblyScript
actor appends one).  Anything else raises :class:`PayloadDecodeError`, and
nothing else: this module is fuzzed to that invariant.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from meshhost.errors import PayloadDecodeError
from meshhost.wire import Limits, Reader

__all__ = [
    "MAX_COLLECTION_ITEMS",
    "MAX_DEPTH",
    "MAX_PAYLOAD_BYTES",
    "Field",
    "Kind",
    "decode_struct",
    "decode_value",
    "encode_struct",
    "encode_value",
    "unpack",
]

MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
"""Largest payload any built-in provider decodes: well above wasmCloud's 10 MiB HTTP
default, small enough that a decode never exhausts memory."""

MAX_COLLECTION_ITEMS = 1_000_000
"""Largest array or map length accepted (checked by msgpack before it allocates)."""

MAX_DEPTH = 8
"""Deepest nesting accepted; the deepest contract shape (header map) needs 3."""

CBOR_PREFIX = 0x7F
MSGPACK_PREFIX = 0xC1


class Kind(enum.Enum):
    """Smithy member types used by the wasmCloud contracts we implement."""

    STR = "String"
    OPT_STR = "String?"
    BYTES = "Blob"
    BOOL = "Boolean"
    U16 = "U16"
    U32 = "U32"
    U64 = "U64"
    I32 = "I32"
    I64 = "I64"
    STR_LIST = "list<String>"
    HEADERS = "map<String, list<String>>"
    STR_MAP = "map<String, String>"
    """The older generations' HTTP header map (one value per name)."""


_INT_RANGES: dict[Kind, tuple[int, int]] = {
    Kind.U16: (0, 0xFFFF),
    Kind.U32: (0, 0xFFFF_FFFF),
    Kind.U64: (0, 0xFFFF_FFFF_FFFF_FFFF),
    Kind.I32: (-(2**31), 2**31 - 1),
    Kind.I64: (-(2**63), 2**63 - 1),
}

_ZERO: dict[Kind, Any] = {
    Kind.STR: "",
    Kind.OPT_STR: None,
    Kind.BYTES: b"",
    Kind.BOOL: False,
    Kind.U16: 0,
    Kind.U32: 0,
    Kind.U64: 0,
    Kind.I32: 0,
    Kind.I64: 0,
    Kind.STR_LIST: (),
    Kind.HEADERS: {},
    Kind.STR_MAP: {},
}


@dataclass(frozen=True, slots=True)
class Field:
    """One structure member: its wire (Smithy) name, Python attribute and type."""

    wire: str
    attr: str
    kind: Kind


_wire = Reader(PayloadDecodeError)
_LIMITS = Limits(
    max_bytes=MAX_PAYLOAD_BYTES,
    max_array=MAX_COLLECTION_ITEMS,
    max_map=MAX_COLLECTION_ITEMS,
    max_depth=MAX_DEPTH,
    strict_map_key=False,  # rmp_serde writes any key type; we read only string keys
    trailing_zeros=True,  # one real AssemblyScript actor appends a 0x00
)


def unpack(payload: bytes, what: str) -> Any:
    """Decode one msgpack value from ``payload`` with size limits.

    Strips a ``0xc1`` format prefix, ignores trailing ``0x00`` bytes, and raises
    PayloadDecodeError (naming ``what``) for anything that is not exactly one
    msgpack value within the limits.
    """
    data = bytes(payload)
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadDecodeError(
            f"{what}: payload of {len(data)} bytes exceeds the {MAX_PAYLOAD_BYTES} byte limit"
        )
    if not data:
        raise PayloadDecodeError(f"{what}: empty payload, expected a msgpack value")
    if len(data) >= 2 and data[0] == CBOR_PREFIX:
        raise PayloadDecodeError(
            f"{what}: payload is CBOR (wasmbus protocol 2 prefix 0x7f); "
            "meshhost providers speak msgpack, as wasmCloud 0.x interfaces do"
        )
    if len(data) >= 2 and data[0] == MSGPACK_PREFIX:
        data = data[1:]
    return _wire.unpack(data, _LIMITS, what)


def _type_name(value: Any) -> str:
    if value is None:
        return "nil"
    return {
        bool: "bool",
        int: "integer",
        float: "float",
        str: "string",
        bytes: "bin",
        list: "array",
        dict: "map",
    }.get(type(value), type(value).__name__)


def convert(value: Any, kind: Kind, what: str) -> Any:
    """Check and convert one decoded msgpack value to ``kind``; nil becomes the zero value."""
    if value is None:
        return _ZERO[kind]
    if kind in (Kind.STR, Kind.OPT_STR):
        if isinstance(value, str):
            return value
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise PayloadDecodeError(f"{what}: expected a string, got non-UTF-8 bin") from None
    elif kind is Kind.BYTES:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, list) and all(
            type(b) is int and 0 <= b <= 255 for b in value
        ):  # rmp_serde without serde_bytes writes a Vec<u8> as an array of ints
            return bytes(value)
    elif kind is Kind.BOOL:
        if isinstance(value, bool):
            return value
    elif kind in _INT_RANGES:
        if type(value) is int:
            low, high = _INT_RANGES[kind]
            if not low <= value <= high:
                raise PayloadDecodeError(
                    f"{what}: {value} is out of range for {kind.value} ({low}..{high})"
                )
            return value
    elif kind is Kind.STR_LIST:
        if isinstance(value, list):
            return tuple(convert(item, Kind.STR, f"{what}[{i}]") for i, item in enumerate(value))
    elif kind is Kind.HEADERS:
        if isinstance(value, dict):
            headers: dict[str, tuple[str, ...]] = {}
            for key, values in value.items():
                name = convert(key, Kind.STR, f"{what} key")
                if isinstance(values, str | bytes):  # lenient: a single value
                    values = [values]
                headers[name] = convert(values, Kind.STR_LIST, f"{what}[{name!r}]")
            return headers
    elif kind is Kind.STR_MAP:
        if isinstance(value, dict):
            return {
                convert(k, Kind.STR, f"{what} key"): convert(v, Kind.STR, f"{what}[{k!r}]")
                for k, v in value.items()
            }
    raise PayloadDecodeError(f"{what}: expected {kind.value}, got {_type_name(value)}")


def decode_value(payload: bytes, kind: Kind, what: str) -> Any:
    """Decode a bare (non-structure) payload such as ``KeyValue.Get``'s key."""
    return convert(unpack(payload, what), kind, what)


def decode_struct(payload: bytes, fields: Sequence[Field], what: str) -> dict[str, Any]:
    """Decode a structure (map by wire name, or positional array) to ``{attr: value}``."""
    value = unpack(payload, what)
    return struct_from_value(value, fields, what)


def struct_from_value(value: Any, fields: Sequence[Field], what: str) -> dict[str, Any]:
    """Like decode_struct, from an already unpacked value."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for f in fields:
            out[f.attr] = convert(value.get(f.wire), f.kind, f"{what}.{f.wire}")
    elif isinstance(value, list):
        for i, f in enumerate(fields):
            raw = value[i] if i < len(value) else None
            out[f.attr] = convert(raw, f.kind, f"{what}.{f.wire}")
    else:
        raise PayloadDecodeError(f"{what}: expected a msgpack map, got {_type_name(value)}")
    return out


def _wire_value(value: Any, kind: Kind) -> Any:
    if kind is Kind.STR_LIST:
        return list(value)
    if kind is Kind.HEADERS:
        return {k: list(v) for k, v in value.items()}
    return value


def encode_struct(values: Mapping[str, Any], fields: Sequence[Field]) -> bytes:
    """Encode ``{attr: value}`` as a msgpack map in declaration order; absent optionals left out."""
    out: dict[str, Any] = {}
    for f in fields:
        value = values[f.attr]
        if value is None and f.kind is Kind.OPT_STR:
            continue
        out[f.wire] = _wire_value(value, f.kind)
    packed: bytes = msgpack.packb(out, use_bin_type=True)
    return packed


def encode_value(value: Any, kind: Kind) -> bytes:
    """Encode a bare value (string, bool, integer, list of strings)."""
    packed: bytes = msgpack.packb(_wire_value(value, kind), use_bin_type=True)
    return packed
