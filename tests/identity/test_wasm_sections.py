"""The Wasm section parser: sections, strip, append, canonical form, and bad input."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import MeshError, WasmFormatError
from meshhost.identity import wasm
from tests.identity.fixtures.mh_wasmgen import (
    BASE_MODULE,
    BASE_SECTIONS,
    COMPONENT_HEADER,
    HEADER,
    NAME_SECTION,
    assemble,
    canonical,
    custom,
    leb,
    modules,
)

CLAIMS = ("jwt", "wasmcloud_jwt")


def test_base_module_sections_are_listed_in_order_with_custom_names() -> None:
    found = wasm.sections(BASE_MODULE)
    assert [s.id for s in found] == [1, 3, 5, 7, 10, 0]
    assert found[-1].name == "name"
    assert found[0].start == 8 and found[-1].end == len(BASE_MODULE)
    # Sections tile the file exactly.
    assert all(a.end == b.start for a, b in itertools.pairwise(found))


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        (b"\x00", 0),
        (b"\x80\x00", 0),
        (b"\x80\x80\x80\x80\x00", 0),
        (b"\xe5\x8e\x26", 624485),
        (b"\xff\xff\xff\xff\x0f", 2**32 - 1),
    ],
)
def test_read_u32_accepts_minimal_and_padded_encodings(encoded: bytes, value: int) -> None:
    assert wasm.read_u32(encoded, 0) == (value, len(encoded))


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        (b"", "past the end"),
        (b"\x80", "past the end"),
        (b"\x80\x80\x80\x80\x80\x00", "longer than 5 bytes"),
        (b"\xff\xff\xff\xff\x1f", "does not fit in 32 bits"),
    ],
)
def test_read_u32_rejects_truncated_overlong_and_oversized(encoded: bytes, reason: str) -> None:
    with pytest.raises(WasmFormatError) as info:
        wasm.read_u32(encoded, 0)
    assert reason in info.value.reason  # type: ignore[attr-defined]
    assert info.value.offset == 0  # type: ignore[attr-defined]


def test_encode_u32_is_minimal() -> None:
    assert wasm.encode_u32(0) == b"\x00"
    assert wasm.encode_u32(127) == b"\x7f"
    assert wasm.encode_u32(128) == b"\x80\x01"
    assert wasm.encode_u32(2**32 - 1) == b"\xff\xff\xff\xff\x0f"


def test_strip_custom_removes_both_claims_names_and_keeps_padded_bytes() -> None:
    sections = [
        custom("jwt", b"old"),
        *BASE_SECTIONS,
        custom("wasmcloud_jwt", b"new"),
        NAME_SECTION,
        custom("wasmcloud_jwt", b"again"),
    ]
    widths = [5, 3, 1, 5, 2, 4, 1, 5, 2]
    module = assemble(sections, widths)
    drop = {0, 6, 8}  # indexes of the claims sections above
    kept = [(s, w) for i, (s, w) in enumerate(zip(sections, widths, strict=True)) if i not in drop]
    expected = assemble([s for s, _ in kept], [w for _, w in kept])
    assert wasm.strip_custom(module, CLAIMS) == expected
    assert wasm.custom_sections(module, "wasmcloud_jwt") == [b"new", b"again"]
    assert wasm.custom_sections(module, "jwt") == [b"old"]


def test_append_custom_keeps_input_bytes_and_adds_one_section() -> None:
    padded = assemble(list(BASE_SECTIONS), [5, 5, 5, 5, 5])
    out = wasm.append_custom(padded, "wasmcloud_jwt", b"token")
    assert out.startswith(padded)
    assert wasm.custom_sections(out, "wasmcloud_jwt") == [b"token"]


def test_canonical_drops_claims_and_minimises_sizes() -> None:
    sections = [*BASE_SECTIONS, custom("wasmcloud_jwt", b"x" * 200), NAME_SECTION]
    module = assemble(sections, [5, 4, 3, 2, 1, 5, 5])
    want = canonical([*BASE_SECTIONS, NAME_SECTION])
    assert wasm.canonical_without(module, CLAIMS) == want


def test_component_custom_sections_and_nested_module_are_canonicalised() -> None:
    inner = assemble([*BASE_SECTIONS, custom("jwt", b"nested")], [5, 1, 1, 1, 1, 1])
    component = assemble(
        [(1, inner), custom("wasmcloud_jwt", b"tok"), custom("keep", b"k")],
        [5, 1, 1],
        header=COMPONENT_HEADER,
    )
    assert wasm.binary_kind(component) is wasm.BinaryKind.COMPONENT
    assert [s.id for s in wasm.sections(component)] == [1, 0, 0]
    assert wasm.custom_sections(component, "wasmcloud_jwt") == [b"tok"]
    want_inner = canonical(list(BASE_SECTIONS))
    want = canonical([(1, want_inner), custom("keep", b"k")], header=COMPONENT_HEADER)
    assert wasm.canonical_without(component, CLAIMS) == want


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 8-byte header"),
        (b"\x00asm\x01\x00", "shorter than the 8-byte header"),
        (b"\x7fELF\x01\x00\x00\x00", "magic"),
        (b"\x00asm\x02\x00\x00\x00", "unsupported version"),
        (HEADER + b"\x0e\x00", "unknown section id 14"),
        (COMPONENT_HEADER + b"\x0d\x00", "unknown section id 13"),
        (HEADER + b"\x01", "bad section size"),
        (HEADER + b"\x01\x80\x80\x80\x80\x80\x00", "bad section size"),
        (HEADER + b"\x01\x05\x00", "claims 5 bytes but only 1 remain"),
        (HEADER + b"\x00\x00", "bad custom section name length"),
        (HEADER + b"\x00\x02\x05a", "name runs past the section end"),
        (HEADER + b"\x00\x03\x02\xff\xfe", "not valid UTF-8"),
    ],
)
def test_malformed_binaries_raise_wasm_format_error_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(WasmFormatError) as info:
        wasm.sections(data)
    assert reason in str(info.value)
    assert isinstance(info.value.offset, int)  # type: ignore[attr-defined]


def test_error_offset_points_at_the_bad_section() -> None:
    data = BASE_MODULE + b"\x01\x7f\x00"
    with pytest.raises(WasmFormatError) as info:
        wasm.sections(data)
    assert info.value.offset == len(BASE_MODULE)  # type: ignore[attr-defined]


def test_nested_binary_errors_report_absolute_offsets() -> None:
    component = assemble([(1, b"\x00asm\x01\x00\x00\x00\x01\x09")], header=COMPONENT_HEADER)
    with pytest.raises(WasmFormatError) as info:
        wasm.canonical_without(component, CLAIMS)
    assert info.value.offset == 8 + 2 + 8  # type: ignore[attr-defined]


def test_every_truncation_of_a_module_is_rejected() -> None:
    for cut in range(len(BASE_MODULE)):
        prefix = BASE_MODULE[:cut]
        try:
            found = wasm.sections(prefix)
        except WasmFormatError:
            continue
        # Cutting exactly at a section boundary leaves a shorter valid binary.
        assert (cut == 8 and found == []) or found[-1].end == cut


@given(modules())
def test_generated_modules_parse_and_strip_to_themselves(generated) -> None:  # type: ignore[no-untyped-def]
    module, sections = generated
    found = wasm.sections(module)
    assert [s.id for s in found] == [sid for sid, _ in sections]
    assert wasm.strip_custom(module, CLAIMS) == module
    assert wasm.canonical_without(module, CLAIMS) == canonical(sections)


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_wasm_format_error(data: bytes) -> None:
    try:
        wasm.sections(data)
        wasm.canonical_without(data, CLAIMS)
        wasm.strip_custom(data, CLAIMS)
    except WasmFormatError:
        pass


@given(st.binary(max_size=120), st.sampled_from([HEADER, COMPONENT_HEADER]))
def test_random_bodies_after_a_valid_header_raise_only_mesh_errors(
    body: bytes, header: bytes
) -> None:
    try:
        wasm.canonical_without(header + body, CLAIMS)
    except MeshError as exc:
        assert isinstance(exc, WasmFormatError)


def test_deep_component_nesting_is_bounded() -> None:
    inner = HEADER
    for _ in range(wasm.MAX_NESTING_DEPTH + 2):
        inner = COMPONENT_HEADER + b"\x04" + leb(len(inner)) + inner
    with pytest.raises(WasmFormatError, match="nested more than"):
        wasm.canonical_without(inner, CLAIMS)


def test_strip_custom_defaults_to_the_claims_sections() -> None:
    signed = wasm.append_custom(wasm.append_custom(BASE_MODULE, "jwt", b"a"), "wasmcloud_jwt", b"b")
    assert wasm.strip_custom(signed) == BASE_MODULE
    assert wasm.canonical_without(signed) == BASE_MODULE
