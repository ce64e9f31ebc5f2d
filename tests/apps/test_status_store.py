"""Status rows, manifest diffs and the directory layout used by apply/delete/list."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.apps import (
    AppState,
    HostView,
    LinkSpec,
    compute_placement,
    diff,
    parse_manifest,
    placement_diff,
    status,
)
from meshhost.apps.store import (
    DEPLOYMENTS_NS,
    MANIFESTS_NS,
    AppSummary,
    DirectoryDelete,
    DirectoryPut,
    app_summaries,
    apply_writes,
    decode_link,
    delete_writes,
    deployed_manifests,
    encode_link,
    link_record_key,
)
from meshhost.errors import (
    ManifestNotFound,
    ManifestVersionConflict,
    StoredManifestInvalid,
)

HOSTS = [HostView.of(f"N{i}", {"zone": "east" if i < 3 else "west"}) for i in range(5)]


def test_status_tracks_desired_against_running(app_dir: Path, base_manifest: str) -> None:
    manifest = parse_manifest(base_manifest, base_dir=app_dir)
    desired = compute_placement([manifest], HOSTS)
    key = next(iter(desired.workloads))
    report = status(manifest, desired, {})
    assert report.state is AppState.RECONCILING
    assert report.totals() == {"web": (4, 0)}
    assert {r.state for r in report.rows} == {"starting"}
    running = desired.as_dict()
    running["N4"] = {**running.get("N4", {}), "other/app": 3}  # another app: ignored
    report = status(manifest, desired, running)
    assert report.state is AppState.DEPLOYED
    assert report.totals() == {"web": (4, 4)}
    extra_host = next(h.host_id for h in HOSTS if h.host_id not in desired)
    running[extra_host] = {key: 1}
    report = status(manifest, desired, running)
    assert report.state is AppState.RECONCILING
    (surplus,) = [r for r in report.rows if r.state != "ok"]
    assert (surplus.host_id, surplus.desired, surplus.running, surplus.state) == (
        extra_host,
        0,
        1,
        "stopping",
    )
    assert report.as_dict()["rows"][0].keys() == {
        "component",
        "key",
        "host",
        "desired",
        "running",
        "state",
    }


def test_status_fails_when_a_spread_cannot_be_placed(app_dir: Path, base_manifest: str) -> None:
    manifest = parse_manifest(base_manifest, base_dir=app_dir)
    only_east = [h for h in HOSTS if h.label_map["zone"] == "east"]
    desired = compute_placement([manifest], only_east)
    report = status(manifest, desired, desired.as_dict())
    assert report.state is AppState.FAILED
    assert report.problems == (
        "component web: spread 'west' needs 1 instance(s) but no live host has zone=west",
    )


def test_diff_names_fields_by_component(app_dir: Path, base_manifest: str) -> None:
    old = parse_manifest(base_manifest, base_dir=app_dir)
    new = parse_manifest(
        base_manifest.replace("v1.0.0", "v1.1.0")
        .replace("replicas: 4", "replicas: 6")
        .replace("URL: redis://127.0.0.1:6379", "URL: redis://10.0.0.1:6379"),
        base_dir=app_dir,
    )
    changes = {c.path: (c.kind, c.old, c.new) for c in diff(old, new)}
    assert changes == {
        "version": ("changed", "v1.0.0", "v1.1.0"),
        "components.web.instances": ("changed", "4", "6"),
        "components.web.linkdef.wasmcloud:keyvalue/default.values.URL": (
            "changed",
            "redis://127.0.0.1:6379",
            "redis://10.0.0.1:6379",
        ),
    }
    assert diff(old, old) == ()
    assert all(c.kind == "added" for c in diff(None, old))
    before = compute_placement([old], HOSTS)
    after = compute_placement([new], HOSTS)
    moves = placement_diff(before, after)
    assert sum(c.new - c.old for c in moves) == 2
    assert all(c.new >= c.old for c in moves)  # scaling up never stops anything


def test_apply_and_version_conflict(app_dir: Path, base_manifest: str) -> None:
    manifest = parse_manifest(base_manifest, base_dir=app_dir)
    writes = apply_writes(manifest, None)
    assert writes == [
        DirectoryPut(MANIFESTS_NS, "shop@v1.0.0", manifest.canonical()),
        DirectoryPut(DEPLOYMENTS_NS, "shop", b"v1.0.0"),
    ]
    assert apply_writes(manifest, manifest.canonical()) == writes  # re-apply: same
    changed = parse_manifest(base_manifest.replace("replicas: 4", "replicas: 5"), base_dir=app_dir)
    with pytest.raises(ManifestVersionConflict, match="give the changed manifest a new version"):
        apply_writes(changed, manifest.canonical())


def test_deployed_manifests_skip_missing_and_bad_records(app_dir: Path, base_manifest: str) -> None:
    manifest = parse_manifest(base_manifest, base_dir=app_dir)
    stored = [("shop@v1.0.0", manifest.canonical()), ("bad@v1", b"{not json")]
    deployments = [("shop", b"v1.0.0"), ("bad", b"v1"), ("late", b"v2")]
    found, problems = deployed_manifests(stored, deployments)
    assert found == [manifest]
    assert len(problems) == 2
    assert any(
        "'late' version 'v2' is deployed but its manifest has not arrived" in p for p in problems
    )
    assert any("not valid JSON" in p for p in problems)


def test_delete_writes() -> None:
    keys = ["shop@v1", "shop@v2", "shopping@v1"]
    assert delete_writes("shop", keys, "v2") == [
        DirectoryDelete(DEPLOYMENTS_NS, "shop"),
        DirectoryDelete(MANIFESTS_NS, "shop@v1"),
        DirectoryDelete(MANIFESTS_NS, "shop@v2"),
    ]
    assert delete_writes("shop", keys, "v2", version="v1") == [
        DirectoryDelete(MANIFESTS_NS, "shop@v1")
    ]
    with pytest.raises(ManifestNotFound, match="no application 'nope' is stored"):
        delete_writes("nope", keys, None)
    with pytest.raises(ManifestNotFound, match="has no stored version 'v9'"):
        delete_writes("shop", keys, "v2", version="v9")


def test_link_records_round_trip() -> None:
    link = LinkSpec("shop", "web", "M" + "A" * 55, "wasmcloud:keyvalue", "default", (("URL", "x"),))
    assert decode_link(encode_link(link)) == link
    assert link_record_key(link) == f"{'M' + 'A' * 55}|wasmcloud:keyvalue|default"


@given(st.binary(max_size=200))
def test_decode_link_raises_only_decode_errors(data: bytes) -> None:
    try:
        decode_link(data)
    except StoredManifestInvalid:
        pass


def test_app_list_and_get(app_dir: Path, base_manifest: str) -> None:
    rows = app_summaries(["shop@v1", "shop@v2", "blog@v1"], [("shop", b"v2"), ("late", b"v1")])
    assert rows == [
        AppSummary("blog", None, ("v1",)),
        AppSummary("late", "v1", ()),
        AppSummary("shop", "v2", ("v1", "v2")),
    ]
    manifest = parse_manifest(base_manifest, base_dir=app_dir)
    text = manifest.to_yaml()
    assert text.startswith("apiVersion: core.oam.dev/v1beta1\nkind: Application\n")
    assert parse_manifest(text, base_dir=app_dir) == manifest
