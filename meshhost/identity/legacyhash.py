"""The module hash of wascap 0.9.x, which wrote ``wascap_revision`` 2.

wascap 0.9 did not hash the module file: it hashed the concatenation, in file
order, of

* the content of every function body in the code section (locals and
  instructions, without the body's size prefix),
* the bytes of the *first* data segment only (not its offset expression),
* the payload (after the name) of every custom section not called ``jwt`` or
  ``wasmcloud_jwt``.

wascap 0.10.1 replaced it (revision 3) and stopped checking revision 2
hashes, so wasmCloud runs revision 2 actors - most actors signed by wash in
2022 and early 2023 - without any hash check.  Reproducing the old input lets
meshhost check those hashes instead of trusting them blindly.  It covers
less of the module than the current hash (imports and exports are outside
it), which is why it is only accepted for revision < 3 tokens.

Pure parsing; every malformed input raises WasmFormatError.
"""

from __future__ import annotations

from meshhost.errors import WasmFormatError
from meshhost.identity import wasm

__all__ = ["wascap09_hash_input"]

CODE_SECTION_ID = 10
DATA_SECTION_ID = 11
# Instructions a data segment's offset expression may hold (MVP and
# extended-const), with how their immediate is encoded.
_END = 0x0B
_LEB_IMMEDIATE = frozenset({0x23, 0x41, 0x42})  # global.get, i32.const, i64.const
_NO_IMMEDIATE = frozenset({0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E})  # i32/i64 add, sub, mul
MAX_LEB_BYTES = 10  # an i64 takes at most ceil(64 / 7) bytes


def _fail(offset: int, reason: str) -> WasmFormatError:
    return WasmFormatError(f"malformed WebAssembly binary at byte {offset}: {reason}")


def _skip_leb(data: bytes, pos: int, end: int) -> int:
    for index in range(MAX_LEB_BYTES):
        if pos + index >= end:
            raise _fail(pos, "LEB128 integer runs past the end of its section")
        if not data[pos + index] & 0x80:
            return pos + index + 1
    raise _fail(pos, "LEB128 integer longer than 10 bytes")


def _skip_const_expr(data: bytes, pos: int, end: int) -> int:
    while pos < end:
        opcode = data[pos]
        pos += 1
        if opcode == _END:
            return pos
        if opcode in _LEB_IMMEDIATE:
            pos = _skip_leb(data, pos, end)
        elif opcode not in _NO_IMMEDIATE:
            raise _fail(pos - 1, f"opcode 0x{opcode:02x} in a data segment offset")
    raise _fail(pos, "data segment offset expression has no end")


def _function_bodies(data: bytes, start: int, end: int) -> list[bytes]:
    count, pos = wasm.read_u32(data, start, end)
    bodies = []
    for _ in range(count):
        size, pos = wasm.read_u32(data, pos, end)
        if pos + size > end:
            raise _fail(pos, "function body runs past the end of the code section")
        bodies.append(data[pos : pos + size])
        pos += size
    return bodies


def _first_data_segment(data: bytes, start: int, end: int) -> bytes:
    count, pos = wasm.read_u32(data, start, end)
    if count == 0:
        raise _fail(start, "data section without segments")
    flags, pos = wasm.read_u32(data, pos, end)
    if flags == 2:
        _, pos = wasm.read_u32(data, pos, end)  # memory index
    if flags in (0, 2):
        pos = _skip_const_expr(data, pos, end)
    elif flags != 1:
        raise _fail(pos, f"data segment kind {flags} (0, 1 or 2 expected)")
    size, pos = wasm.read_u32(data, pos, end)
    if pos + size > end:
        raise _fail(pos, "data segment runs past the end of the data section")
    return data[pos : pos + size]


def wascap09_hash_input(module: bytes) -> bytes:
    """The bytes wascap 0.9 hashed for ``module`` (a core module; see the module docstring)."""
    raw = bytes(module)
    parts: list[bytes] = []
    for section in wasm.sections(raw):
        if section.id == CODE_SECTION_ID:
            parts.extend(_function_bodies(raw, section.content_start, section.end))
        elif section.id == DATA_SECTION_ID:
            parts.append(_first_data_segment(raw, section.content_start, section.end))
        elif section.name is not None and section.name not in wasm.CLAIMS_SECTION_NAMES:
            parts.append(raw[section.payload_start : section.end])
    return b"".join(parts)
