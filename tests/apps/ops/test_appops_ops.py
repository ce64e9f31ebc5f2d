"""AppOps against real in-memory directories: every op, its results and its errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from meshhost.apps.manifest import Manifest, actor_id_from_claims, load_manifest
from meshhost.apps.ops import APP_OPS, AppOps, running_from_directory
from meshhost.apps.placement import HostView, compute_placement
from meshhost.apps.store import DEPLOYMENTS_NS, MANIFESTS_NS
from meshhost.control import api
from meshhost.directory import ActorSummary
from meshhost.errors import (
    ControlArgumentError,
    ErrorCode,
    ManifestNotFound,
    ManifestVersionConflict,
    MeshError,
)
from tests.apps.ops.apps_helpers import HOSTS, MANIFEST, Lattice

A, B, C = HOSTS


class Modules:
    """A content-addressed module store like the host's."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def store(self, digest: str, module: bytes) -> None:
        assert hashlib.sha256(module).hexdigest() == digest
        self.stored[digest] = module


def load(app_dir: Path, text: str = MANIFEST) -> tuple[Manifest, dict[str, bytes]]:
    path = app_dir / "kvcounter.yaml"
    path.write_text(text)
    manifest = load_manifest(path, inspect_image=actor_id_from_claims)
    module = (app_dir / "kvcounter.wasm").read_bytes()
    return manifest, {hashlib.sha256(module).hexdigest(): module}


def ops_on(lattice: Lattice, host: str = A, **kwargs: Any) -> AppOps:
    kwargs.setdefault("inspect_image", actor_id_from_claims)
    return AppOps(lattice.dirs[host], members=lattice.members(host), **kwargs)


def apply_args(manifest: Manifest, modules: dict[str, bytes]) -> dict[str, Any]:
    return {"manifest": manifest.canonical(), "source": "kvcounter.yaml", "modules": modules}


def error_of(call: Any, *args: Any) -> MeshError:
    with pytest.raises(MeshError) as info:
        call(*args)
    return info.value


def test_results_are_plain_data_for_msgpack_and_json(lattice: Lattice, app_dir: Path) -> None:
    ops = ops_on(lattice)
    manifest, modules = load(app_dir)
    results = [
        ops.apply(apply_args(manifest, modules)),
        ops.app_list({}),
        ops.app_get({"name": "kvcounter"}),
        ops.app_status({"name": "kvcounter"}),
        ops.app_diff({"manifest": manifest.canonical()}),
        ops.app_delete({"name": "kvcounter"}),
    ]
    for result in results:
        assert api.decode_reply(api.encode_reply(result))["result"] == json.loads(
            json.dumps(result)
        )


def test_apply_stores_deploys_and_reaches_every_host(lattice: Lattice, app_dir: Path) -> None:
    store = Modules()
    ops = ops_on(lattice, store_module=store.store)
    manifest, modules = load(app_dir)
    result = ops.apply(apply_args(manifest, modules))
    assert result == {
        "app": "kvcounter",
        "version": "v0.1.0",
        "digest": manifest.digest(),
        "previous": None,
        "changed": True,
        "modules_stored": sorted(modules),
        "replaced_links": [],
        "problems": [],
    }
    assert store.stored == modules
    lattice.sync()
    for directory in lattice.dirs.values():
        assert directory.get(DEPLOYMENTS_NS, "kvcounter") == b"v0.1.0"
        assert directory.get(MANIFESTS_NS, "kvcounter@v0.1.0") == manifest.canonical()
    # Any host answers for the application once gossip has spread it.
    assert ops_on(lattice, C).app_get({"name": "kvcounter"})["digest"] == manifest.digest()


def test_reapplying_the_same_version_changes_nothing(lattice: Lattice, app_dir: Path) -> None:
    ops = ops_on(lattice)
    manifest, modules = load(app_dir)
    ops.apply(apply_args(manifest, modules))
    stamp = lattice.dirs[A].stamp_of(MANIFESTS_NS, "kvcounter@v0.1.0")
    again = ops.apply(apply_args(manifest, modules))
    assert (again["changed"], again["previous"]) == (False, "v0.1.0")
    assert lattice.dirs[A].stamp_of(MANIFESTS_NS, "kvcounter@v0.1.0") == stamp


def test_same_version_with_other_content_is_a_conflict(lattice: Lattice, app_dir: Path) -> None:
    ops = ops_on(lattice)
    manifest, modules = load(app_dir)
    ops.apply(apply_args(manifest, modules))
    changed, _ = load(app_dir, MANIFEST.replace("instances: 4", "instances: 6"))
    err = error_of(ops.apply, apply_args(changed, modules))
    assert isinstance(err, ManifestVersionConflict)
    assert err.code is ErrorCode.INVALID
    assert "give the changed manifest a new version" in str(err)
    # The conflict is also detected on another host once the first version reached it.
    lattice.sync()
    assert isinstance(
        error_of(ops_on(lattice, B).apply, apply_args(changed, modules)), ManifestVersionConflict
    )


def test_new_version_replaces_the_deployed_one(lattice: Lattice, app_dir: Path) -> None:
    ops = ops_on(lattice)
    v1, modules = load(app_dir)
    ops.apply(apply_args(v1, modules))
    v2, _ = load(
        app_dir, MANIFEST.replace("v0.1.0", "v0.2.0").replace("instances: 4", "instances: 2")
    )
    result = ops.apply(apply_args(v2, modules))
    assert (result["previous"], result["changed"]) == ("v0.1.0", True)
    [row] = ops.app_list({})
    assert (row["deployed"], row["versions"], row["desired"]) == ("v0.2.0", ["v0.1.0", "v0.2.0"], 2)
    # Re-deploying a stored older version is a change too (a roll-back).
    back = ops.apply(apply_args(v1, modules))
    assert (back["previous"], back["changed"]) == ("v0.2.0", True)
    assert ops.app_get({"name": "kvcounter"})["version"] == "v0.1.0"


def test_digest_mismatch_is_refused_before_anything_is_written(
    lattice: Lattice, app_dir: Path
) -> None:
    store = Modules()
    ops = ops_on(lattice, store_module=store.store)
    manifest, modules = load(app_dir)
    [(digest, module)] = modules.items()
    err = error_of(ops.apply, apply_args(manifest, {digest: module + b"\x00"}))
    assert isinstance(err, ControlArgumentError) and err.code is ErrorCode.INVALID
    assert "digest mismatch" in str(err) and digest in str(err)
    assert store.stored == {}
    assert lattice.dirs[A].items(MANIFESTS_NS) == []


def test_module_must_be_sent_unless_the_host_has_it(lattice: Lattice, app_dir: Path) -> None:
    manifest, modules = load(app_dir)
    err = error_of(ops_on(lattice).apply, apply_args(manifest, {}))
    assert err.code is ErrorCode.INVALID
    assert "module of actor 'counter'" in str(err) and "was not sent" in str(err)
    have = ops_on(lattice, has_module=lambda digest: digest in modules)
    assert have.apply(apply_args(manifest, {}))["changed"] is True


def test_unused_module_is_refused(lattice: Lattice, app_dir: Path) -> None:
    manifest, modules = load(app_dir)
    extra = b"\x00asm\x01\x00\x00\x00"
    modules[hashlib.sha256(extra).hexdigest()] = extra
    err = error_of(ops_on(lattice).apply, apply_args(manifest, modules))
    assert "no actor of the manifest uses them" in str(err)


def test_module_signed_as_another_actor_is_refused(lattice: Lattice, app_dir: Path) -> None:
    manifest, modules = load(app_dir)
    other = "M" + "A" * 55
    counter = replace(manifest.component("counter"), actor_id=other)
    forged = replace(manifest, components=(counter, manifest.component("httpserver")))
    err = error_of(ops_on(lattice).apply, apply_args(forged, modules))
    assert err.code is ErrorCode.INVALID
    assert f"but the manifest names {other}" in str(err)


def test_actor_without_digest_is_refused(lattice: Lattice, app_dir: Path) -> None:
    manifest, _ = load(app_dir)
    counter = replace(manifest.component("counter"), sha256=None)
    bare = replace(manifest, components=(counter, manifest.component("httpserver")))
    err = error_of(ops_on(lattice).apply, apply_args(bare, {}))
    assert "actor 'counter' has no sha256" in str(err)


@pytest.mark.parametrize(
    ("op", "args", "words"),
    [
        ("apply", {}, "argument 'manifest' is required"),
        ("apply", {"manifest": 7}, "'manifest' must be bytes (canonical manifest JSON), got int"),
        ("apply", {"manifest": b"\xff\x00"}, "the manifest sent is not a valid canonical manifest"),
        (
            "apply",
            {"manifest": b'{"kind": "Application"}'},
            "the manifest sent is not a valid canonical manifest",
        ),
        ("apply", {"manifest": b"{}", "bogus": 1}, "unknown argument(s) bogus"),
        ("apply", {"manifest": b"{}", "source": 5}, "argument 'source' must be text, got int"),
        (
            "apply",
            {"manifest": "CANONICAL", "modules": [b"x"]},
            "'modules' must map sha256 hex to module bytes",
        ),
        (
            "apply",
            {"manifest": "CANONICAL", "modules": {"abc": b"x"}},
            "modules key 'abc' is not a sha256",
        ),
        (
            "apply",
            {"manifest": "CANONICAL", "modules": {"0" * 64: "text"}},
            "must be bytes, got str",
        ),
        ("app_list", {"name": "x"}, "unknown argument(s) name (expected: none)"),
        ("app_get", {}, "argument 'name' is required"),
        ("app_get", {"name": 3}, "argument 'name' must be text, got int"),
        ("app_get", {"name": "kvcounter", "version": ["v1"]}, "'version' must be text, got list"),
        ("app_get", {"name": ""}, "argument 'name' must be 1..512 characters"),
        ("app_status", {"name": b"kvcounter"}, "'name' must be text, got bytes"),
        ("app_delete", {"name": "x", "version": 1.5}, "'version' must be text, got float"),
        ("app_diff", {"manifest": None}, "argument 'manifest' is required"),
        ("app_diff", {"manifest": b"[]", "source": "f.yaml"}, "f.yaml"),
    ],
)
def test_bad_arguments_are_invalid(
    lattice: Lattice, app_dir: Path, op: str, args: dict[str, Any], words: str
) -> None:
    manifest, _ = load(app_dir)
    if args.get("manifest") == "CANONICAL":
        args = {**args, "manifest": manifest.canonical().decode()}
    err = error_of(ops_on(lattice).dispatch, op, args)
    assert isinstance(err, ControlArgumentError), err
    assert err.code is ErrorCode.INVALID
    assert words in str(err)


def test_args_must_be_a_map_and_ops_known(lattice: Lattice) -> None:
    ops = ops_on(lattice)
    err = error_of(ops.app_list, ["x"])
    assert "args must be a map" in str(err)
    err = error_of(ops.dispatch, "app_frobnicate", {})
    assert err.code is ErrorCode.UNSUPPORTED
    assert set(APP_OPS) == {"apply", "app_list", "app_get", "app_status", "app_delete", "app_diff"}


def test_manifest_sent_as_text_is_accepted(lattice: Lattice, app_dir: Path) -> None:
    manifest, modules = load(app_dir)
    result = ops_on(lattice).apply({"manifest": manifest.canonical().decode(), "modules": modules})
    assert result["digest"] == manifest.digest()


def test_get_versions_and_unknown_apps(lattice: Lattice, app_dir: Path) -> None:
    ops = ops_on(lattice)
    v1, modules = load(app_dir)
    ops.apply(apply_args(v1, modules))
    v2, _ = load(app_dir, MANIFEST.replace("v0.1.0", "v0.2.0"))
    ops.apply(apply_args(v2, modules))
    got = ops.app_get({"name": "kvcounter"})
    assert (got["version"], got["deployed"]) == ("v0.2.0", True)
    assert load_manifest_text(got["yaml"], app_dir) == v2
    old = ops.app_get({"name": "kvcounter", "version": "v0.1.0"})
    assert (old["version"], old["deployed"], old["manifest"]) == ("v0.1.0", False, v1.to_document())
    err = error_of(ops.app_get, {"name": "nope"})
    assert isinstance(err, ManifestNotFound) and err.code is ErrorCode.NOT_FOUND
    assert "no application 'nope' is stored" in str(err)
    err = error_of(ops.app_get, {"name": "kvcounter", "version": "v9"})
    assert "stored versions: v0.1.0, v0.2.0" in str(err)
    ops.app_delete({"name": "kvcounter", "version": "v0.2.0"})
    err = error_of(ops.app_get, {"name": "kvcounter"})
    assert "is not deployed; give --version (stored: v0.1.0)" in str(err)


def load_manifest_text(text: str, base: Path) -> Manifest:
    path = base / "roundtrip.yaml"
    path.write_text(text)
    return load_manifest(path, inspect_image=actor_id_from_claims)


def test_status_desired_vs_running_from_the_injected_view(lattice: Lattice, app_dir: Path) -> None:
    manifest, modules = load(app_dir)
    key = f"kvcounter/counter@{manifest.component('counter').sha256[:16]}"  # type: ignore[index]
    running = {A: {key: 2}, B: {key: 2}, C: {"other/x": 1}}
    ops = ops_on(lattice, running=lambda: running)
    ops.apply(apply_args(manifest, modules))
    result = ops.app_status({"name": "kvcounter"})
    rows = {(r["host"], r["desired"], r["running"], r["state"]) for r in result["rows"]}
    # 75/25 of 4: 3 over the two east hosts (2 + 1), 1 on the west host.
    assert rows == {(A, 2, 2, "ok"), (B, 1, 2, "stopping"), (C, 1, 0, "starting")}
    assert result["state"] == "reconciling"
    assert result["components"] == [
        {"component": "counter", "asked": 4, "desired": 4, "running": 4}
    ]
    assert result["hosts"] == 3
    running[B] = {key: 1}
    running[C] = {key: 1}
    assert ops.app_status({"name": "kvcounter"})["state"] == "deployed"


def test_status_reads_running_instances_from_directory_records(
    lattice: Lattice, app_dir: Path, signed_module: tuple[bytes, str]
) -> None:
    manifest, modules = load(app_dir)
    ops_on(lattice, B).apply(apply_args(manifest, modules))
    summary = ActorSummary(signed_module[1], "kvcounter")
    lattice.dirs[A].set_actor(summary, 2)
    lattice.dirs[C].set_actor(summary, 1)
    lattice.sync()
    result = ops_on(lattice, C).app_status({"name": "kvcounter"})
    got = {r["host"]: (r["desired"], r["running"]) for r in result["rows"]}
    assert got == {A: (2, 2), B: (1, 0), C: (1, 1)}
    [row] = ops_on(lattice, C).app_list({})
    assert (row["state"], row["desired"], row["running"]) == ("reconciling", 4, 3)


def test_status_fails_when_no_host_matches_a_spread(lattice: Lattice, app_dir: Path) -> None:
    manifest, modules = load(app_dir)
    ops = ops_on(lattice)
    ops.apply(apply_args(manifest, modules))
    lattice.dead.add(C)  # the only west host
    result = ops.app_status({"name": "kvcounter"})
    assert result["state"] == "failed"
    assert result["problems"] == [
        "component counter: spread 'west' needs 1 instance(s) but no live host has zone=west"
    ]
    assert {r["host"] for r in result["rows"]} == {A, B}
    assert ops.app_list({})[0]["state"] == "failed"


def test_status_of_unknown_or_undeployed_app_is_not_found(lattice: Lattice, app_dir: Path) -> None:
    ops = ops_on(lattice)
    err = error_of(ops.app_status, {"name": "kvcounter"})
    assert err.code is ErrorCode.NOT_FOUND and "no application 'kvcounter' is deployed" in str(err)
    manifest, modules = load(app_dir)
    ops.apply(apply_args(manifest, modules))
    lattice.dirs[A].delete(DEPLOYMENTS_NS, "kvcounter")
    err = error_of(ops.app_status, {"name": "kvcounter"})
    assert "is not deployed (stored versions: v0.1.0)" in str(err)


def test_deployment_whose_manifest_has_not_arrived_is_waiting(lattice: Lattice) -> None:
    lattice.dirs[A].put(DEPLOYMENTS_NS, "later", b"v3")
    ops = ops_on(lattice)
    [row] = ops.app_list({})
    assert (row["name"], row["deployed"], row["state"]) == ("later", "v3", "waiting")
    assert "has not arrived yet" in row["problems"][0]
    err = error_of(ops.app_status, {"name": "later"})
    assert err.code is ErrorCode.NOT_FOUND and "cannot be read on this host" in str(err)


def test_delete_everything_or_one_version(lattice: Lattice, app_dir: Path) -> None:
    ops = ops_on(lattice)
    v1, modules = load(app_dir)
    ops.apply(apply_args(v1, modules))
    v2, _ = load(app_dir, MANIFEST.replace("v0.1.0", "v0.2.0"))
    ops.apply(apply_args(v2, modules))
    assert ops.app_delete({"name": "kvcounter", "version": "v0.1.0"}) == {
        "app": "kvcounter",
        "deleted": ["v0.1.0"],
        "undeployed": False,
    }
    assert ops.app_list({})[0]["deployed"] == "v0.2.0"
    lattice.sync()
    # Deleting from another host works the same, and spreads back.
    result = ops_on(lattice, B).app_delete({"name": "kvcounter"})
    assert result == {"app": "kvcounter", "deleted": ["v0.2.0"], "undeployed": True}
    lattice.sync()
    assert ops.app_list({}) == []
    err = error_of(ops.app_delete, {"name": "kvcounter"})
    assert err.code is ErrorCode.NOT_FOUND
    err = error_of(ops.app_delete, {"name": "ghost", "version": "v1"})
    assert "no application 'ghost' version 'v1' is stored" in str(err)


def test_diff_shows_fields_and_instances_and_writes_nothing(
    lattice: Lattice, app_dir: Path
) -> None:
    ops = ops_on(lattice)
    v1, modules = load(app_dir)
    first = ops.app_diff({"manifest": v1.canonical()})
    assert first["deployed"] is None and first["conflict"] is None
    assert {c["kind"] for c in first["changes"]} == {"added"}
    assert sum(i["new"] for i in first["instances"]) == 4
    ops.apply(apply_args(v1, modules))
    before = lattice.dirs[A].snapshot()
    v2, _ = load(
        app_dir, MANIFEST.replace("v0.1.0", "v0.2.0").replace("instances: 4", "instances: 8")
    )
    result = ops.app_diff({"manifest": v2.canonical(), "source": "kvcounter.yaml"})
    assert lattice.dirs[A].snapshot() == before
    changes = {c["path"]: (c["old"], c["new"], c["kind"]) for c in result["changes"]}
    assert changes == {
        "version": ("v0.1.0", "v0.2.0", "changed"),
        "components.counter.instances": ("4", "8", "changed"),
    }
    moves = {(i["host"], i["component"], i["old"], i["new"]) for i in result["instances"]}
    # 8 at 75/25: 6 east over two hosts (3 + 3), 2 west.
    assert moves == {(A, "counter", 2, 3), (B, "counter", 1, 3), (C, "counter", 1, 2)}
    assert result["deployed"] == "v0.1.0" and result["problems"] == []
    same_version, _ = load(app_dir, MANIFEST.replace("instances: 4", "instances: 8"))
    assert (
        "already stored with different content"
        in ops.app_diff({"manifest": same_version.canonical()})["conflict"]
    )


def test_diff_reports_what_cannot_be_placed(lattice: Lattice, app_dir: Path) -> None:
    manifest, _ = load(app_dir, MANIFEST.replace("zone: west", "zone: north"))
    result = ops_on(lattice).app_diff({"manifest": manifest.canonical()})
    assert result["problems"] == [
        "component counter: spread 'west' needs 1 instance(s) but no live host has zone=north"
    ]


def test_running_attribution_when_two_keys_share_an_actor(
    lattice: Lattice, app_dir: Path, signed_module: tuple[bytes, str]
) -> None:
    # A module upgrade in progress: the same actor id under two component keys.
    manifest, _ = load(app_dir)
    counter = manifest.component("counter")
    newer = replace(
        manifest,
        version="v2",
        components=(replace(counter, sha256="f" * 64), manifest.component("httpserver")),
    )
    views = [HostView.of(h, labels) for h, labels in lattice.dirs[A].host_labels().items()]
    desired = compute_placement([newer], views)
    old_key = f"kvcounter/counter@{counter.sha256[:16]}"  # type: ignore[index]
    new_key = "kvcounter/counter@" + "f" * 16
    workloads = dict(desired.workloads)
    workloads[old_key] = replace(workloads[new_key], key=old_key, sha256=counter.sha256)
    lattice.dirs[A].set_actor(ActorSummary(signed_module[1]), 3)  # A should run 2 of new_key
    lattice.dirs[B].set_actor(ActorSummary("M" + "B" * 55), 5)  # not a managed actor
    lattice.sync()
    running = running_from_directory(lattice.dirs[C], workloads, desired)
    assert running == {A: {new_key: 2, old_key: 1}}


def test_module_store_failure_is_unavailable_and_writes_nothing(
    lattice: Lattice, app_dir: Path
) -> None:
    def full_disk(digest: str, module: bytes) -> None:
        raise OSError(28, "No space left on device")

    manifest, modules = load(app_dir)
    err = error_of(ops_on(lattice, store_module=full_disk).apply, apply_args(manifest, modules))
    assert err.code is ErrorCode.UNAVAILABLE
    assert "No space left on device; nothing was applied" in str(err)
    assert lattice.dirs[A].items(DEPLOYMENTS_NS) == []


def test_daemon_components_have_no_asked_total(lattice: Lattice, app_dir: Path) -> None:
    text = MANIFEST.replace("type: spreadscaler", "type: daemonscaler").replace(
        "instances: 4", "instances: 2"
    )
    manifest, modules = load(app_dir, text)
    ops = ops_on(lattice)
    ops.apply(apply_args(manifest, modules))
    [total] = ops.app_status({"name": "kvcounter"})["components"]
    assert total == {"component": "counter", "asked": None, "desired": 6, "running": 0}


def test_unreadable_manifest_record_from_a_peer_is_reported(lattice: Lattice) -> None:
    lattice.dirs[B].put(MANIFESTS_NS, "broken@v1", b"{not json")
    lattice.dirs[B].put(DEPLOYMENTS_NS, "broken", b"v1")
    lattice.sync()
    ops = ops_on(lattice)
    [row] = ops.app_list({})
    assert (row["name"], row["state"]) == ("broken", "waiting")
    assert "not valid JSON" in row["problems"][0]
    err = error_of(ops.app_get, {"name": "broken"})
    assert isinstance(err, MeshError) and "not valid JSON" in str(err)
    assert ops.app_delete({"name": "broken"}) == {
        "app": "broken",
        "deleted": ["v1"],
        "undeployed": True,
    }


def test_exact_counts_replace_derived_ones_only_for_their_hosts(
    lattice: Lattice, app_dir: Path, signed_module: tuple[bytes, str]
) -> None:
    manifest, modules = load(app_dir)
    key = f"kvcounter/counter@{manifest.component('counter').sha256[:16]}"  # type: ignore[index]
    summary = ActorSummary(signed_module[1], "kvcounter")
    lattice.dirs[A].set_actor(summary, 1)  # A also runs one instance by hand
    lattice.dirs[C].set_actor(summary, 1)
    lattice.sync()
    ops = ops_on(lattice, running=lambda: {A: {key: 0}})  # A knows: none is managed
    ops.apply(apply_args(manifest, modules))
    rows = {r["host"]: r["running"] for r in ops.app_status({"name": "kvcounter"})["rows"]}
    assert rows == {A: 0, B: 0, C: 1}


def test_appops_imports_neither_trio_nor_the_host() -> None:
    code = (
        "import sys, meshhost.apps.ops; "
        "print(sorted({'trio', 'meshhost.host', 'wasmtime'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_errors_travel_with_their_wire_codes(lattice: Lattice) -> None:
    ops = ops_on(lattice)
    for call, args, code in [
        (ops.app_get, {"name": 1}, ErrorCode.INVALID),
        (ops.app_get, {"name": "nope"}, ErrorCode.NOT_FOUND),
    ]:
        err = error_of(call, args)
        with pytest.raises(api.ControlError) as info:
            api.decode_reply(api.encode_reply(error=err))
        assert (info.value.code, str(info.value)) == (code, str(err))


def _hand_link(lattice: Lattice, manifest: Manifest, values: dict[str, str]) -> None:
    from meshhost.capabilities import LinkDefinition

    actor = manifest.actors[0].actor_id
    assert actor is not None
    lattice.dirs[A].put_link(
        LinkDefinition(actor, "wasmcloud:httpserver", "default", "builtin", values)
    )


def test_apply_refuses_to_replace_a_link_made_by_hand_unless_forced(
    lattice: Lattice, app_dir: Path
) -> None:
    # #12: an ADDRESS link made with `link put` silently became the manifest's PORT.
    manifest, modules = load(app_dir)
    _hand_link(lattice, manifest, {"ADDRESS": "127.0.0.1:8080"})
    ops = ops_on(lattice)
    [shown] = ops.app_diff({"manifest": manifest.canonical()})["replaced_links"]
    assert (shown["contract"], shown["link_name"], shown["old"], shown["new"]) == (
        "wasmcloud:httpserver",
        "default",
        {"ADDRESS": "127.0.0.1:8080"},
        {"PORT": "8081"},
    )
    before = lattice.dirs[A].snapshot()
    err = error_of(ops.apply, apply_args(manifest, modules))
    assert err.code is ErrorCode.INVALID
    assert "would replace 1 link(s) made by hand" in str(err)
    assert "ADDRESS=127.0.0.1:8080 -> PORT=8081" in str(err) and "--force" in str(err)
    assert lattice.dirs[A].snapshot() == before  # nothing was applied
    result = ops.apply({**apply_args(manifest, modules), "force": True})
    assert result["replaced_links"] == [shown]
    assert lattice.dirs[A].get(DEPLOYMENTS_NS, "kvcounter") == b"v0.1.0"
    with pytest.raises(ControlArgumentError, match="'force' must be a boolean"):
        ops.apply({**apply_args(manifest, modules), "force": "yes"})


def test_links_the_application_wrote_itself_are_not_reported(
    lattice: Lattice, app_dir: Path
) -> None:
    from meshhost.apps.placement import LinkSpec
    from meshhost.apps.store import LINKS_NS, encode_link, link_record_key

    manifest, modules = load(app_dir)
    ops = ops_on(lattice)
    ops.apply(apply_args(manifest, modules))
    # what the reconciler does for the app's link: the definition plus its record
    actor = manifest.actors[0].actor_id
    spec = LinkSpec(
        "kvcounter", "counter", actor, "wasmcloud:httpserver", "default", (("PORT", "8081"),)
    )
    _hand_link(lattice, manifest, {"PORT": "8081"})
    lattice.dirs[A].put(LINKS_NS, link_record_key(spec), encode_link(spec))
    v2, _ = load(app_dir, MANIFEST.replace("v0.1.0", "v0.2.0").replace('"8081"', '"8082"'))
    assert ops.app_diff({"manifest": v2.canonical()})["replaced_links"] == []
    assert ops.apply(apply_args(v2, modules))["replaced_links"] == []
    # changed by hand since the application wrote it: reported again
    _hand_link(lattice, manifest, {"PORT": "9000"})
    v3, _ = load(app_dir, MANIFEST.replace("v0.1.0", "v0.3.0"))
    [shown] = ops.app_diff({"manifest": v3.canonical()})["replaced_links"]
    assert shown["old"] == {"PORT": "9000"}


def test_apply_reports_an_application_that_cannot_be_placed_anywhere(
    lattice: Lattice, app_dir: Path
) -> None:
    text = MANIFEST.replace("zone: east", "zone: mars").replace("zone: west", "zone: mars")
    manifest, modules = load(app_dir, text)
    result = ops_on(lattice).apply(apply_args(manifest, modules))
    assert result["changed"] and result["problems"] == [
        "component counter: spread 'east' needs 3 instance(s) but no live host has zone=mars",
        "component counter: spread 'west' needs 1 instance(s) but no live host has zone=mars",
    ]
