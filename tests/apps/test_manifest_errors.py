"""Every mistake a person makes in a manifest gets its own clear, positioned error.

Each case edits the base manifest (see conftest.py; its line numbers are
quoted in the comments) and states the line, the field path and the words
the error must contain.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshhost.apps import load_manifest, parse_manifest
from meshhost.apps.yamlsource import MAX_MANIFEST_BYTES
from meshhost.errors import LocalProtocolError, ManifestError, ManifestTooLarge


class Span(NamedTuple):
    """The text from ``start`` up to (not including) ``end``; ``None``: to the end."""

    start: str
    end: str | None


def edit(base: str, old: str | Span, new: str) -> str:
    if isinstance(old, Span):
        begin = base.index(old.start)
        finish = base.index(old.end, begin) if old.end is not None else len(base)
        return base[:begin] + new + base[finish:]
    assert base.count(old) == 1, old
    return base.replace(old, new)


# (id, old text, new text, line, field path, words in the message)
# fmt: off
CASES = [
    ("wrong-api-version", "core.oam.dev/v1beta1", "core.oam.dev/v1alpha2",
     1, "apiVersion", "must be 'core.oam.dev/v1beta1', got 'core.oam.dev/v1alpha2'"),
    ("wrong-kind", "kind: Application", "kind: Deployment",
     2, "kind", "must be 'Application', got 'Deployment'"),
    ("missing-name", "  name: shop\n", "",
     3, "metadata.name", "required field 'name' is missing"),
    ("missing-image", "        image: ./echo.wasm\n", "",
     11, "spec.components[0].properties.image", "required field 'image' is missing"),
    ("yaml-merge-key", "  annotations:\n", "  <<: {x: y}\n  annotations:\n",
     5, "metadata", "YAML merge keys ('<<') are not supported"),
    ("missing-kind", "kind: Application\n", "",
     1, "kind", "required field 'kind' is missing"),
    ("bad-name", "name: shop", "name: my shop",
     4, "metadata.name", "may contain only letters, digits, '-' and '_'"),
    ("missing-version", "    version: v1.0.0\n", "    description: hi\n",
     5, "metadata.annotations.version", "required annotation 'version' is missing"),
    ("no-annotations", "  annotations:\n    version: v1.0.0\n", "",
     3, "metadata.annotations.version", "add 'annotations: {version: v0.0.1}' under metadata"),
    ("version-latest", "version: v1.0.0", "version: latest",
     6, "metadata.annotations.version", "'latest' is not a version"),
    ("unknown-top-field", "spec:\n", "specs:\n",
     7, "specs", "unknown field 'specs'; did you mean 'spec'?"),
    ("components-not-list", Span("  components:\n", None), "  components: web\n",
     8, "spec.components", "components must be a list"),
    ("no-components", Span("  components:\n", None), "  components: []\n",
     8, "spec.components", "an application needs at least one component"),
    ("unknown-spec-field", "spec:\n", "spec:\n  policies: []\n",
     8, "spec.policies", "wadm policies are not supported"),
    ("duplicate-component", "- name: kv", "- name: web",
     31, "spec.components[1].name", "duplicate component name 'web' (first defined on line 9)"),
    ("unknown-component-type", "type: actor", "type: actr",
     10, "spec.components[0].type", "unknown component type 'actr'; did you mean 'actor'?"),
    ("misspelt-image", "        image: ./echo.wasm\n", "        imag: ./echo.wasm\n",
     12, "spec.components[0].properties.imag", "unknown field 'imag'; did you mean 'image'?"),
    ("registry-image", "image: ./echo.wasm", "image: wasmcloud.azurecr.io/echo:0.3.7",
     12, "spec.components[0].properties.image", "meshhost is offline and never pulls images"),
    ("oci-url-image", "image: ./echo.wasm", "image: oci://ghcr.io/x/echo:1",
     12, "spec.components[0].properties.image", "uses oci://"),
    ("image-not-found", "image: ./echo.wasm", "image: ./missing.wasm",
     12, "spec.components[0].properties.image", "missing.wasm' does not exist"),
    ("image-not-wasm", "image: ./echo.wasm", "image: file://./notwasm.wasm",
     12, "spec.components[0].properties.image", "is not a WebAssembly module"),
    ("image-is-number", "image: ./echo.wasm", "image: 42",
     12, "spec.components[0].properties.image", "expected an image path (text), got an integer"),
    ("memory-limit-zero", "image: ./echo.wasm", "image: ./echo.wasm\n        max_memory_mib: 0",
     13, "spec.components[0].properties.max_memory_mib",
     "max_memory_mib (MiB) must be at least 1, got 0"),
    ("cpu-limit-quoted", "image: ./echo.wasm", "image: ./echo.wasm\n        max_cpu_time_ms: '50'",
     13, "spec.components[0].properties.max_cpu_time_ms", "write 50 without quotes"),
    ("limit-misspelt", "image: ./echo.wasm", "image: ./echo.wasm\n        max_memory_mb: 8",
     13, "spec.components[0].properties.max_memory_mb", "did you mean 'max_memory_mib'?"),
    ("unknown-trait", "type: spreadscaler", "type: spreadscalar",
     14, "spec.components[0].traits[0].type", "did you mean 'spreadscaler'?"),
    ("wadm-010-link-trait", "type: linkdef", "type: link",
     26, "spec.components[0].traits[1].type", "'link' trait (WIT interfaces) is not supported"),
    ("negative-replicas", "replicas: 4", "replicas: -1",
     16, "spec.components[0].traits[0].properties.replicas",
     "instances must be at least 0, got -1"),
    ("fractional-replicas", "replicas: 4", "replicas: 2.5",
     16, "spec.components[0].traits[0].properties.replicas",
     "instances must be a whole number, got a number with a fraction"),
    ("quoted-replicas", "replicas: 4", 'replicas: "4"',
     16, "spec.components[0].traits[0].properties.replicas", "write 4 without quotes"),
    ("huge-replicas", "replicas: 4", "replicas: 1000000",
     16, "spec.components[0].traits[0].properties.replicas", "must be at most 10000"),
    ("replicas-and-instances", "replicas: 4", "replicas: 4\n            instances: 4",
     16, "spec.components[0].traits[0].properties.replicas", "either 'instances' or 'replicas'"),
    ("missing-replicas", "            replicas: 4\n", "",
     15, "spec.components[0].traits[0].properties.instances",
     "required field 'instances' (or 'replicas') is missing"),
    ("misspelt-scaler-field", "replicas: 4", "replica: 4",
     16, "spec.components[0].traits[0].properties.replica", "did you mean 'replicas'?"),
    ("negative-weight", "weight: 80", "weight: -80",
     21, "spec.components[0].traits[0].properties.spread[0].weight", "at least 0, got -80"),
    ("weights-sum-zero", ("weight: 80", "weight: 20"), ("weight: 0", "weight: 0"),
     17, "spec.components[0].traits[0].properties.spread", "weights add up to 0"),
    ("requirements-not-a-map", "              zone: east\n", "              - zone=east\n",
     19, "spec.components[0].traits[0].properties.spread[0].requirements",
     "requirements must be a mapping of names to values, got a list"),
    ("requirement-value-list", "zone: east", "zone: [east, north]",
     20, "spec.components[0].traits[0].properties.spread[0].requirements.zone",
     "values must be text, got a list"),
    ("duplicate-spread-name", "- name: west", "- name: east",
     22, "spec.components[0].traits[0].properties.spread[1].name", "duplicate spread name 'east'"),
    ("spread-not-list", Span("            spread:\n", "        - type: linkdef"),
     "            spread: east\n",
     17, "spec.components[0].traits[0].properties.spread", "spread must be a list"),
    ("linkdef-target-unknown", "target: kv", "target: kvv",
     28, "spec.components[0].traits[1].properties.target",
     "target 'kvv' is not a component of this manifest; did you mean 'kv'?"),
    ("linkdef-to-itself", "target: kv", "target: web",
     28, "spec.components[0].traits[1].properties.target", "an actor needs no link to itself"),
    ("linkdef-unknown-contract", "target: kv", "target: wasmcloud:blobstore",
     28, "spec.components[0].traits[1].properties.target", "no built-in provider for"),
    ("linkdef-values-not-map", Span("            values:\n", "    - name: kv"),
     "            values: URL\n",
     29, "spec.components[0].traits[1].properties.values", "must be a mapping"),
    ("unknown-capability-contract", "contract: wasmcloud:keyvalue", "contract: acme:teleport",
     34, "spec.components[1].properties.contract", "no built-in provider for 'acme:teleport'"),
    ("two-scalers", "        - type: linkdef\n",
     "        - type: daemonscaler\n          properties: {replicas: 1}\n        - type: linkdef\n",
     26, "spec.components[0].traits[1].type", "already has a spreadscaler"),
    ("linkdef-on-capability", "    contract: wasmcloud:keyvalue\n",
     "    contract: wasmcloud:keyvalue\n      traits:\n        - type: linkdef\n"
     "          properties: {target: web}\n",
     36, "spec.components[1].traits[0].type", "a linkdef belongs on the actor"),
    ("duplicate-yaml-key", "  name: shop\n", "  name: shop\n  name: shop2\n",
     5, "", "duplicate key 'name' (first given on line 4)"),
    ("tab-indent", "  name: shop\n", "\tname: shop\n",
     4, "", "a tab is used for indentation"),
    ("yaml-syntax", "kind: Application", "kind: Application: x",
     2, "", "invalid YAML: mapping values are not allowed here"),
    ("trait-wrong-type", Span("      traits:\n", "    - name: kv"), "      traits: spreadscaler\n",
     13, "spec.components[0].traits", "traits must be a list"),
    ("named-config", "        image: ./echo.wasm\n",
     "        image: ./echo.wasm\n        config: []\n",
     13, "spec.components[0].properties.config", "named config is not supported"),
    ("null-link-value", "URL: redis://127.0.0.1:6379", "URL:",
     30, "spec.components[0].traits[1].properties.values.URL", "values must be text"),
]
# fmt: on


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_broken_manifest_gets_its_own_error(
    app_dir: Path, base_manifest: str, old, new, line: int, field: str, words: str
) -> None:
    text = base_manifest
    pairs = zip(old, new, strict=True) if isinstance(new, tuple) else [(old, new)]
    for o, n in pairs:
        text = edit(text, o, n)
    path = app_dir / "app.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    err = info.value
    assert words in err.problem, str(err)
    assert (err.line, err.field) == (line, field), str(err)
    assert str(err).startswith(f"{path}:{line}:{err.column}: "), str(err)
    assert err.column >= 1
    assert isinstance(err, LocalProtocolError)


def test_table_has_at_least_25_distinct_messages() -> None:
    assert len(CASES) >= 25
    assert len({case[5] for case in CASES}) == len(CASES)


def test_empty_file_is_refused(app_dir: Path) -> None:
    with pytest.raises(ManifestError, match="the manifest is empty"):
        parse_manifest("# nothing here\n", base_dir=app_dir)


def test_two_documents_are_refused(app_dir: Path, base_manifest: str) -> None:
    with pytest.raises(ManifestError, match="found 2 YAML documents") as info:
        parse_manifest(base_manifest + "---\n" + base_manifest, base_dir=app_dir)
    assert info.value.line == 35


def test_top_level_list_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"a manifest is a mapping .* got a list"):
        parse_manifest("- a\n- b\n")


def test_oversized_file_is_refused_before_parsing(app_dir: Path, base_manifest: str) -> None:
    path = app_dir / "big.yaml"
    path.write_text(base_manifest + "#" * MAX_MANIFEST_BYTES)
    with pytest.raises(ManifestTooLarge, match="the limit is 65536 bytes"):
        load_manifest(path)
    with pytest.raises(ManifestTooLarge):
        parse_manifest(base_manifest + "#" * MAX_MANIFEST_BYTES)


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    with pytest.raises(ManifestTooLarge, match="more than 20000 values"):
        parse_manifest("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "text",
    ["[" * 3000 + "]" * 3000, "{a: " * 3000 + "1" + "}" * 3000, '{"a":' * 3000 + "1" + "}" * 3000],
)
def test_deep_flow_nesting_is_a_depth_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(ManifestError, match="nested more than 24 levels deep"):
        parse_manifest(text)


YAMLISH = st.text(alphabet="ab:-[]{},&*!#'\"|>?\n\t 0.", max_size=200)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), YAMLISH, YAMLISH.map(lambda t: t.encode())))
def test_any_input_parses_or_raises_a_manifest_error(data: bytes | str) -> None:
    try:
        parse_manifest(data, check_images=False)
    except ManifestError:
        pass


def test_not_utf8_is_refused_with_position() -> None:
    with pytest.raises(ManifestError, match="not UTF-8") as info:
        parse_manifest(b"apiVersion: x\nkind: \xff\n")
    assert (info.value.line, info.value.column) == (2, 7)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read the manifest: No such file"):
        load_manifest(tmp_path / "nope.yaml")


def test_sha256_mismatch_is_refused(app_dir: Path, base_manifest: str) -> None:
    pinned = "image: ./echo.wasm\n        sha256: " + "1" * 64
    text = edit(base_manifest, "image: ./echo.wasm", pinned)
    with pytest.raises(ManifestError, match="does not match the file") as info:
        parse_manifest(text, base_dir=app_dir)
    assert info.value.field == "spec.components[0].properties.sha256"


def test_signed_id_mismatch_is_refused(app_dir: Path, base_manifest: str) -> None:
    other = "M" + "A" * 55
    text = edit(base_manifest, "image: ./echo.wasm", f"image: ./echo.wasm\n        id: {other}")
    with pytest.raises(ManifestError, match="the module is signed as M"):
        parse_manifest(text, base_dir=app_dir, inspect_image=lambda _: "M" + "B" * 55)
