"""Just enough of the WebAssembly binary format to find, strip and add custom sections.

Theory of operation: a Wasm binary is an 8-byte preamble (``\\0asm`` + a 4-byte
version) followed by sections, each ``id:u8  size:u32-LEB128  content[size]``.
A core module has version ``01 00 00 00``; a component has version ``0x000d``
and layer ``0x0001`` (bytes ``0d 00 01 00``).  Custom sections (id 0 in both)
start their content with a name (``u32-LEB128 length + UTF-8 bytes``); the rest
is an opaque payload.  Components nest whole binaries in sections 1 (core
module) and 4 (component).

We never interpret the other sections; we only need their boundaries.  Every
read is bounds-checked and every malformed input raises
:class:`~meshhost.errors.WasmFormatError` carrying the byte ``offset`` and a
``reason``; no ``IndexError``/``ValueError`` escapes.

LEB128 sizes may be *padded* (over-long but valid, e.g. ``80 80 80 80 00`` for
0): toolchains such as Emscripten and LLVM emit them, so we accept them and
:func:`strip_custom` / :func:`append_custom` keep every byte they do not remove
exactly as it was.  :func:`canonical_without` is the one place that rewrites:
it reproduces wasmCloud wascap's hash input (see ``proto/spec/claims.md``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from meshhost.errors import WasmFormatError

__all__ = [
    "CLAIMS_SECTION_NAMES",
    "COMPONENT_LAYER",
    "CUSTOM_SECTION_ID",
    "MAGIC",
    "MODULE_VERSION",
    "BinaryKind",
    "Section",
    "append_custom",
    "binary_kind",
    "canonical_without",
    "custom_sections",
    "encode_u32",
    "read_u32",
    "sections",
    "strip_custom",
]

MAGIC = b"\x00asm"
MODULE_VERSION = b"\x01\x00\x00\x00"
COMPONENT_LAYER = 1
HEADER_LEN = 8
CUSTOM_SECTION_ID = 0
# Custom sections that carry wascap claims: current name first, then the one
# wascap used before 0.9.  They are excluded from the module hash.
CLAIMS_SECTION_NAMES = ("wasmcloud_jwt", "jwt")

# A u32 in LEB128 takes at most ceil(32 / 7) = 5 bytes (wasm spec 5.2.2); the
# fifth byte may only carry the top 4 bits of the value.
MAX_U32_LEB_BYTES = 5
# Section ids that exist in the core spec (13 = tag, from exception handling)
# and in the component model binary format (12 = value).
MAX_MODULE_SECTION_ID = 13
MAX_COMPONENT_SECTION_ID = 12
# Component section ids whose content is itself a whole Wasm binary.
COMPONENT_CORE_MODULE_ID = 1
COMPONENT_COMPONENT_ID = 4
# Components can nest; real ones go 2-3 deep.  Bounding depth keeps recursion
# (and a hostile file) from exhausting the Python stack.
MAX_NESTING_DEPTH = 32


class BinaryKind(enum.Enum):
    MODULE = "module"
    COMPONENT = "component"


@dataclass(frozen=True, slots=True)
class Section:
    """One section's position in a binary.

    ``start`` is the offset of the id byte, ``end`` one past the last content
    byte, ``content_start`` the first byte after the size.  For custom
    sections ``name`` is the decoded name and ``payload_start`` the first byte
    after it; for other sections ``name`` is None and ``payload_start`` equals
    ``content_start``.
    """

    id: int
    start: int
    end: int
    name: str | None = None
    content_start: int = 0
    payload_start: int = 0


def _fail(offset: int, reason: str) -> WasmFormatError:
    exc = WasmFormatError(f"malformed WebAssembly binary at byte {offset}: {reason}")
    exc.offset = offset
    exc.reason = reason
    return exc


def read_u32(data: bytes, pos: int, limit: int | None = None) -> tuple[int, int]:
    """Read an unsigned LEB128 u32 at ``pos``; return ``(value, next_pos)``.

    Accepts padded (over-long) encodings up to 5 bytes; rejects truncated,
    longer than 5 bytes, or with value bits above 2**32 - 1.  ``limit`` is the
    end of the enclosing region (defaults to ``len(data)``).
    """
    end = len(data) if limit is None else limit
    value = 0
    for index in range(MAX_U32_LEB_BYTES):
        at = pos + index
        if at >= end:
            raise _fail(pos, "LEB128 integer runs past the end of its region")
        byte = data[at]
        if index == MAX_U32_LEB_BYTES - 1:
            if byte & 0x80:
                raise _fail(pos, "LEB128 integer longer than 5 bytes")
            if byte & 0x70:
                raise _fail(pos, "LEB128 integer does not fit in 32 bits")
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, at + 1
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def encode_u32(value: int) -> bytes:
    """Minimal unsigned LEB128 encoding of a u32."""
    if not 0 <= value <= 0xFFFF_FFFF:
        raise ValueError(f"{value} does not fit in a u32")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def binary_kind(data: bytes, base: int = 0) -> BinaryKind:
    """Check the 8-byte preamble; return whether it is a core module or a component."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WasmFormatError(f"a Wasm binary must be bytes, not {type(data).__name__}")
    if len(data) < HEADER_LEN:
        raise _fail(base + len(data), f"file is {len(data)} bytes, shorter than the 8-byte header")
    if bytes(data[:4]) != MAGIC:
        raise _fail(base, "missing the \\0asm magic number: this is not a WebAssembly file")
    version = bytes(data[4:8])
    if version == MODULE_VERSION:
        return BinaryKind.MODULE
    layer = int.from_bytes(version[2:4], "little")
    if layer == COMPONENT_LAYER:
        return BinaryKind.COMPONENT
    raise _fail(
        base + 4, f"unsupported version/layer {version.hex()} (module 01000000, component layer 1)"
    )


def _as_bytes(data: bytes) -> bytes:
    # bytes(5) would silently make five zero bytes; only accept real buffers.
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"a Wasm binary must be bytes, not {type(data).__name__}")
    return bytes(data)


def _sections(data: bytes, base: int) -> tuple[BinaryKind, list[Section]]:
    kind = binary_kind(data, base)
    max_id = MAX_MODULE_SECTION_ID if kind is BinaryKind.MODULE else MAX_COMPONENT_SECTION_ID
    found: list[Section] = []
    pos = HEADER_LEN
    total = len(data)
    while pos < total:
        section_id = data[pos]
        if section_id > max_id:
            raise _fail(base + pos, f"unknown section id {section_id} in a {kind.value}")
        try:
            size, content_start = read_u32(data, pos + 1)
        except WasmFormatError as exc:
            raise _fail(base + pos + 1, f"bad section size: {exc.reason}") from None
        end = content_start + size
        if end > total:
            raise _fail(
                base + pos,
                f"section {section_id} claims {size} bytes but only {total - content_start} remain",
            )
        name: str | None = None
        payload_start = content_start
        if section_id == CUSTOM_SECTION_ID:
            try:
                name_len, name_start = read_u32(data, content_start, end)
            except WasmFormatError as exc:
                raise _fail(
                    base + content_start,
                    f"bad custom section name length: {exc.reason}",
                ) from None
            payload_start = name_start + name_len
            if payload_start > end:
                raise _fail(base + content_start, "custom section name runs past the section end")
            try:
                name = bytes(data[name_start:payload_start]).decode("utf-8")
            except UnicodeDecodeError:
                raise _fail(base + name_start, "custom section name is not valid UTF-8") from None
        found.append(
            Section(
                section_id, base + pos, base + end, name, base + content_start, base + payload_start
            )
        )
        pos = end
    return kind, found


def sections(data: bytes) -> list[Section]:
    """List the top-level sections of a module or component, in file order.

    Offsets are absolute in ``data``.  Raises WasmFormatError on any malformed
    preamble, section header or custom section name.
    """
    return _sections(_as_bytes(data), 0)[1]


def custom_sections(data: bytes, name: str) -> list[bytes]:
    """Payloads of every top-level custom section called ``name``, in file order."""
    raw = _as_bytes(data)
    return [raw[s.payload_start : s.end] for s in _sections(raw, 0)[1] if s.name == name]


def strip_custom(data: bytes, names: Iterable[str] = CLAIMS_SECTION_NAMES) -> bytes:
    """Remove every top-level custom section whose name is in ``names``
    (by default the claims sections ``wasmcloud_jwt`` and ``jwt``).

    Every other byte is kept exactly as it was, including padded LEB128 sizes
    and the order of the remaining sections.
    """
    raw = _as_bytes(data)
    drop = frozenset(names)
    kept = [raw[:HEADER_LEN]]
    for section in _sections(raw, 0)[1]:
        if section.name is not None and section.name in drop:
            continue
        kept.append(raw[section.start : section.end])
    return b"".join(kept)


def append_custom(data: bytes, name: str, payload: bytes) -> bytes:
    """Return ``data`` with a custom section ``name`` carrying ``payload`` appended.

    The input is validated first; its bytes are kept as they are.
    """
    raw = _as_bytes(data)
    _sections(raw, 0)
    name_bytes = name.encode("utf-8")
    content = encode_u32(len(name_bytes)) + name_bytes + bytes(payload)
    if len(content) > 0xFFFF_FFFF:
        raise WasmFormatError("custom section too large for a u32 size")
    return raw + bytes([CUSTOM_SECTION_ID]) + encode_u32(len(content)) + content


def canonical_without(data: bytes, names: Iterable[str] = CLAIMS_SECTION_NAMES) -> bytes:
    """Re-encode a binary the way wasmCloud's wascap (revision 3) does before hashing.

    Custom sections named in ``names`` are dropped at every nesting level;
    every other section is re-emitted as ``id + minimal LEB128 size +
    content`` with its content bytes untouched; core modules (id 1) and
    components (id 4) nested in a component are canonicalised recursively.
    For a binary whose section sizes are already minimal this equals
    :func:`strip_custom` of it.
    """
    return _canonical(_as_bytes(data), 0, frozenset(names), 0)


def _canonical(data: bytes, base: int, drop: frozenset[str], depth: int) -> bytes:
    if depth > MAX_NESTING_DEPTH:
        raise _fail(base, f"components nested more than {MAX_NESTING_DEPTH} deep")
    kind, found = _sections(data, base)
    view = memoryview(data)  # slices without copying; one copy happens in join()
    out: list[bytes | memoryview] = [data[:HEADER_LEN]]
    for section in found:
        if section.name is not None and section.name in drop:
            continue
        content: bytes | memoryview = view[section.content_start - base : section.end - base]
        if kind is BinaryKind.COMPONENT and section.id in (
            COMPONENT_CORE_MODULE_ID,
            COMPONENT_COMPONENT_ID,
        ):
            content = _canonical(bytes(content), section.content_start, drop, depth + 1)
        out.append(bytes([section.id]) + encode_u32(len(content)))
        out.append(content)
    return b"".join(out)
