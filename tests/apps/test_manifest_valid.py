"""Valid manifests parse: our examples, wadm's own examples where they are in the
subset, and the canonical form round-trips and survives hostile bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.apps import (
    ComponentType,
    ScalerKind,
    decode_manifest,
    load_manifest,
    parse_manifest,
)
from meshhost.apps.manifest import actor_id_from_claims
from meshhost.errors import ManifestError, MeshError, StoredManifestInvalid

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"
WASM = b"\x00asm\x01\x00\x00\x00"

# wadm's oam/simple1.yaml (0.x: replicas, linkdef, capability contract) with the
# registry actor image swapped for a local file, and the ledblinky capability
# (a contract meshhost has no provider for) left out.
WADM_SIMPLE1 = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: my-example-app
  annotations:
    version: v0.0.1
    description: "This is my app"
spec:
  components:
    - name: userinfo
      type: actor
      properties:
        image: ./echo.wasm
      traits:
        - type: spreadscaler
          properties:
            replicas: 4
            spread:
              - name: eastcoast
                requirements:
                  zone: us-east-1
                weight: 80
              - name: westcoast
                requirements:
                  zone: us-west-1
                weight: 20
        - type: linkdef
          properties:
            target: webcap
            values:
              port: 8080

    - name: webcap
      type: capability
      properties:
        contract: wasmcloud:httpserver
        image: wasmcloud.azurecr.io/httpserver:0.13.1
        link_name: default
"""


def copy_example(name: str, folder: Path) -> Path:
    target = folder / name
    shutil.copy(EXAMPLES / name, target)
    return target


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_is_valid(name: str, tmp_path: Path) -> None:
    path = copy_example(name, tmp_path)
    manifest = load_manifest(path, check_images=False)
    assert manifest.components
    assert decode_manifest(manifest.canonical()) == manifest
    # ...and with its modules present it passes the full check too.
    for component in manifest.actors:
        module = Path(component.image.removeprefix("file://"))
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_bytes(WASM)
    checked = load_manifest(path)
    assert all(c.sha256 for c in checked.actors)
    assert checked.warnings == ()


def test_wadm_simple1_parses_with_wadm_meanings(app_dir: Path) -> None:
    manifest = parse_manifest(WADM_SIMPLE1, base_dir=app_dir)
    assert (manifest.name, manifest.version, manifest.description) == (
        "my-example-app",
        "v0.0.1",
        "This is my app",
    )
    userinfo = manifest.component("userinfo")
    assert userinfo.type is ComponentType.ACTOR
    assert userinfo.image == (app_dir / "echo.wasm").as_uri()
    assert userinfo.scaler is not None
    assert userinfo.scaler.kind is ScalerKind.SPREAD
    assert userinfo.scaler.instances == 4
    assert [(s.name, s.requirements, s.weight) for s in userinfo.scaler.spread] == [
        ("eastcoast", (("zone", "us-east-1"),), 80),
        ("westcoast", (("zone", "us-west-1"),), 20),
    ]
    (link,) = userinfo.linkdefs
    # wadm 0.x (serde_yaml 0.8) took the unquoted 8080 as the string "8080".
    assert (link.contract_id, link.link_name, link.values) == (
        "wasmcloud:httpserver",
        "default",
        (("port", "8080"),),
    )
    webcap = manifest.component("webcap")
    assert (webcap.type, webcap.contract_id) == (ComponentType.CAPABILITY, "wasmcloud:httpserver")


def test_wadm_contract_without_builtin_provider_is_refused(app_dir: Path) -> None:
    text = WADM_SIMPLE1 + (
        "    - name: ledblinky\n"
        "      type: capability\n"
        "      properties:\n"
        "        image: wasmcloud.azurecr.io/ledblinky:0.0.1\n"
        "        contract: wasmcloud:blinkenlights\n"
    )
    with pytest.raises(ManifestError, match="no built-in provider for 'wasmcloud:blinkenlights'"):
        parse_manifest(text, base_dir=app_dir)


def test_wadm_kvcounter_old_typo_is_caught(app_dir: Path) -> None:
    # wadm's oam/kvcounter_old.yaml links to "keyvalue" but names the provider
    # "kvredis"; wadm 0.x accepted it and the link silently never worked.
    text = WADM_SIMPLE1.replace("target: webcap", "target: keyvalue")
    with pytest.raises(ManifestError, match="target 'keyvalue' is not a component"):
        parse_manifest(text, base_dir=app_dir)


def test_instances_and_component_type_of_newer_wadm(app_dir: Path) -> None:
    text = WADM_SIMPLE1.replace("replicas: 4", "instances: 4").replace(
        "type: actor", "type: component"
    )
    manifest = parse_manifest(text, base_dir=app_dir)
    assert manifest == parse_manifest(WADM_SIMPLE1, base_dir=app_dir)


def test_warnings_for_things_that_do_nothing(app_dir: Path) -> None:
    text = WADM_SIMPLE1.replace(
        "        - type: spreadscaler\n          properties:\n            replicas: 4\n",
        "        - type: daemonscaler\n          properties:\n            replicas: 4\n",
    )
    manifest = parse_manifest(text, base_dir=app_dir)
    assert any("weights have no effect in a daemonscaler" in w for w in manifest.warnings)
    bare = parse_manifest(WADM_SIMPLE1.split("      traits:\n")[0] + "\n", base_dir=app_dir)
    assert any("no instance of it will run" in w for w in bare.warnings)


def test_canonical_form_is_independent_of_layout(app_dir: Path) -> None:
    a = parse_manifest(WADM_SIMPLE1, base_dir=app_dir)
    flow = WADM_SIMPLE1.replace(
        "                requirements:\n                  zone: us-east-1\n",
        "                requirements: {zone: us-east-1}\n",
    ).replace("# nothing", "")
    b = parse_manifest("# a comment\n" + flow, base_dir=app_dir)
    assert a.canonical() == b.canonical()
    assert a.digest() == b.digest()
    changed = parse_manifest(WADM_SIMPLE1.replace("weight: 80", "weight: 81"), base_dir=app_dir)
    assert changed.canonical() != a.canonical()


def test_changed_module_changes_the_canonical_form(app_dir: Path) -> None:
    a = parse_manifest(WADM_SIMPLE1, base_dir=app_dir)
    (app_dir / "echo.wasm").write_bytes(WASM + b"\x00")
    b = parse_manifest(WADM_SIMPLE1, base_dir=app_dir)
    assert a.component("userinfo").sha256 != b.component("userinfo").sha256
    assert a.canonical() != b.canonical()


def test_actor_to_actor_link_uses_the_target_key(app_dir: Path) -> None:
    text = WADM_SIMPLE1 + (
        "    - name: helper\n      type: actor\n      properties:\n        image: ./echo.wasm\n"
    )
    text = text.replace("target: webcap", "target: helper")
    keys = iter(["M" + "A" * 55, "M" + "B" * 55])
    seen: dict[bytes, str] = {}

    def inspect(module: bytes) -> str:
        return seen.setdefault(module + bytes(len(seen)), next(keys))

    manifest = parse_manifest(text, base_dir=app_dir, inspect_image=inspect)
    (link,) = manifest.component("userinfo").linkdefs
    assert link.contract_id == manifest.component("helper").actor_id == "M" + "B" * 55
    plain = parse_manifest(text, base_dir=app_dir)
    assert plain.component("userinfo").linkdefs[0].contract_id == "my-example-app/helper"


def test_unsigned_module_is_reported_at_the_image(app_dir: Path) -> None:
    with pytest.raises(ManifestError, match=r"cannot use .*echo\.wasm") as info:
        parse_manifest(WADM_SIMPLE1, base_dir=app_dir, inspect_image=actor_id_from_claims)
    assert info.value.field == "spec.components[0].properties.image"
    assert info.value.line == 13


def test_lone_surrogate_escape_is_refused_not_a_crash_later() -> None:
    # A record is ASCII JSON, so "\\ud800" is valid bytes; it decodes to a lone
    # surrogate that no UTF-8 text holds, and placement's hash of a spread name (or
    # the canonical form) would raise UnicodeEncodeError on every host reading it.
    import json

    document = {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "shop", "annotations": {"version": "v1"}},
        "spec": {
            "components": [
                {
                    "name": "web",
                    "type": "actor",
                    "properties": {"image": "file:///srv/web.wasm"},
                    "traits": [
                        {
                            "type": "spreadscaler",
                            "properties": {
                                "instances": 3,
                                "spread": [{"name": "x\ud800", "weight": 1}],
                            },
                        }
                    ],
                }
            ]
        },
    }
    with pytest.raises(StoredManifestInvalid, match=r"spread\[0\]\.name: holds a lone surrogate"):
        decode_manifest(json.dumps(document).encode())
    with pytest.raises(ManifestError, match="lone surrogate"):
        parse_manifest(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\n"
            'metadata: {name: a, annotations: {version: v1, description: "x\\udc80"}}\n'
            "spec: {components: [{name: kv, type: capability, "
            "properties: {contract: wasmcloud:keyvalue}}]}\n"
        )
    document["spec"]["components"][0]["traits"][0]["properties"]["spread"][0]["name"] = "x\u00e9"
    assert decode_manifest(json.dumps(document).encode()).actors[0].scaler


@given(st.binary(max_size=300))
def test_decode_manifest_raises_only_decode_errors_on_random_bytes(data: bytes) -> None:
    try:
        decode_manifest(data)
    except StoredManifestInvalid:
        pass


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "apiVersion",
                        "kind",
                        "metadata",
                        "spec",
                        "name",
                        "components",
                        "type",
                        "properties",
                        "image",
                        "x",
                    ]
                ),
                children,
                max_size=4,
            )
        ),
        max_leaves=30,
    )
)
def test_decode_manifest_on_random_json_shapes(document: object) -> None:
    import json

    try:
        decode_manifest(json.dumps(document).encode())
    except StoredManifestInvalid:
        pass


@given(st.text(max_size=400))
def test_parse_manifest_raises_only_manifest_errors_on_random_text(text: str) -> None:
    try:
        parse_manifest(text, check_images=False)
    except ManifestError:
        pass
    except MeshError as exc:  # pragma: no cover - a clear failure message
        raise AssertionError(f"unexpected error type {type(exc).__name__}") from exc


@given(
    st.data(),
    st.text(alphabet=" -:{}[]\n\t#&*!|>'\"0a1.,@%", max_size=6),
)
def test_mutated_manifest_parses_or_raises_manifest_error(data: st.DataObject, junk: str) -> None:
    start = data.draw(st.integers(0, len(WADM_SIMPLE1)))
    end = data.draw(st.integers(start, min(len(WADM_SIMPLE1), start + 8)))
    text = WADM_SIMPLE1[:start] + junk + WADM_SIMPLE1[end:]
    try:
        parse_manifest(text, check_images=False)
    except ManifestError as exc:
        assert str(exc)


def test_unquoted_scalars_are_taken_as_written(app_dir: Path) -> None:
    text = WADM_SIMPLE1.replace("version: v0.0.1", "version: 1.10").replace(
        "port: 8080", "port: 0080\n              since: 2024-05-01\n              tls: false"
    )
    manifest = parse_manifest(text, base_dir=app_dir)
    assert manifest.version == "1.10"
    (link,) = manifest.component("userinfo").linkdefs
    assert dict(link.values) == {"port": "0080", "since": "2024-05-01", "tls": "false"}
