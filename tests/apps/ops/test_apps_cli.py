"""`meshhost apply` and `meshhost app ...` against a control socket answered by a real AppOps."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner, Result

from meshhost.apps.manifest import actor_id_from_claims, load_manifest
from meshhost.apps.ops import AppOps
from meshhost.apps.store import DEPLOYMENTS_NS, MANIFESTS_NS
from meshhost.cli import main
from meshhost.control import api
from meshhost.errors import ManifestError
from tests.apps.ops.apps_helpers import HOSTS, MANIFEST, Lattice

A, B, C = HOSTS


class FakeHost:
    """Host A of a three-host lattice: its AppOps behind a real control socket."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.lattice = Lattice()
        self.modules: dict[str, bytes] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.ops = AppOps(
            self.lattice.dirs[A],
            members=self.lattice.members(A),
            store_module=self.modules.__setitem__,
            inspect_image=actor_id_from_claims,
        )

    async def dispatch(self, op: str, args: Mapping[str, Any]) -> Any:
        self.requests.append((op, dict(args)))
        return self.ops.dispatch(op, args)

    def run(self, *argv: str) -> Result:
        return CliRunner().invoke(main, [*argv, "--data-dir", str(self.data_dir)])


@pytest.fixture
def host() -> Iterator[FakeHost]:
    # A short folder: a Unix socket path must stay under ~100 bytes.
    data_dir = Path(tempfile.mkdtemp(prefix="mhapps"))
    fake = FakeHost(data_dir)
    ready = threading.Event()
    token: list[trio.lowlevel.TrioToken] = []
    cancel = trio.CancelScope()

    async def serve() -> None:
        token.append(trio.lowlevel.current_trio_token())
        with cancel:
            async with trio.open_nursery() as nursery:
                await nursery.start(api.serve_unix, data_dir / "control.sock", fake.dispatch, {})
                ready.set()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield fake
    trio.from_thread.run_sync(cancel.cancel, trio_token=token[0])
    thread.join(10)
    shutil.rmtree(data_dir, ignore_errors=True)


def write(app_dir: Path, text: str = MANIFEST, name: str = "kvcounter.yaml") -> Path:
    path = app_dir / name
    path.write_text(text)
    return path


def test_apply_sends_canonical_manifest_and_modules(host: FakeHost, app_dir: Path) -> None:
    result = host.run("apply", str(app_dir / "kvcounter.yaml"))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deployed kvcounter v0.1.0"
    op, args = host.requests[-1]
    manifest = load_manifest(app_dir / "kvcounter.yaml", inspect_image=actor_id_from_claims)
    module = (app_dir / "kvcounter.wasm").read_bytes()
    assert op == "apply"
    assert args["manifest"] == manifest.canonical()
    assert args["modules"] == {hashlib.sha256(module).hexdigest(): module}
    assert host.modules == args["modules"]
    assert host.lattice.dirs[A].get(DEPLOYMENTS_NS, "kvcounter") == b"v0.1.0"

    again = host.run("apply", str(app_dir / "kvcounter.yaml"))
    assert again.exit_code == 0
    assert "kvcounter v0.1.0 is already deployed; nothing changed" in again.output

    v2 = write(app_dir, MANIFEST.replace("v0.1.0", "v0.2.0"), "v2.yaml")
    result = host.run("apply", str(v2), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["version"], data["previous"], data["changed"]) == ("v0.2.0", "v0.1.0", True)
    assert data["warnings"] == []


def test_apply_of_changed_content_under_same_version_fails(host: FakeHost, app_dir: Path) -> None:
    assert host.run("apply", str(app_dir / "kvcounter.yaml")).exit_code == 0
    changed = write(app_dir, MANIFEST.replace("instances: 4", "instances: 5"), "changed.yaml")
    result = host.run("apply", str(changed))
    assert result.exit_code == 1
    assert result.output.startswith(
        f"error: {changed}: metadata.annotations.version: application 'kvcounter' version "
        "'v0.1.0' is already stored with different content"
    )


def test_apply_prints_warnings(host: FakeHost, app_dir: Path) -> None:
    text = MANIFEST.replace("instances: 4", "instances: 1")
    result = host.run("apply", str(write(app_dir, text, "one.yaml")))
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "gets no instance of 1" in result.output


@pytest.mark.parametrize(
    "case_id",
    ["unknown-component-type", "registry-image", "duplicate-component", "linkdef-target-unknown"],
)
def test_broken_manifests_fail_with_the_validators_message(
    host: FakeHost, app_dir: Path, case_id: str
) -> None:
    # The table of broken manifests and its base manifest, from tests/apps.
    from tests.apps import conftest as base
    from tests.apps import test_manifest_errors as table

    [case] = [c for c in table.CASES if c[0] == case_id]
    _, old, new, line, field, words = case
    # The table edits tests/apps's base manifest, whose actor is ./echo.wasm:
    # give it the signed kvcounter module so only the table's mistake remains.
    shutil.copy(app_dir / "kvcounter.wasm", app_dir / "echo.wasm")
    path = write(app_dir, table.edit(base.BASE_MANIFEST, old, new), "broken.yaml")
    with pytest.raises(ManifestError) as info:
        load_manifest(path, inspect_image=actor_id_from_claims)
    assert (info.value.line, info.value.field) == (line, field)
    result = host.run("apply", str(path))
    assert result.exit_code == 1
    assert result.output == f"error: {info.value}\n"
    assert words in result.output
    assert host.requests == []  # refused before any host was asked
    diff = host.run("app", "diff", str(path))
    assert (diff.exit_code, diff.output) == (1, f"error: {info.value}\n")


def test_unsigned_module_is_refused_at_the_image(host: FakeHost, app_dir: Path) -> None:
    (app_dir / "kvcounter.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00")
    result = host.run("apply", str(app_dir / "kvcounter.yaml"))
    assert result.exit_code == 1
    assert "kvcounter.yaml:13:" in result.output
    assert "spec.components[0].properties.image: cannot use" in result.output


def test_usage_errors_exit_2(host: FakeHost, tmp_path: Path) -> None:
    assert host.run("apply", str(tmp_path / "missing.yaml")).exit_code == 2
    assert host.run("app", "status").exit_code == 2
    assert host.run("app", "frob").exit_code == 2


def test_no_host_running_is_a_clean_error(tmp_path: Path, app_dir: Path) -> None:
    result = CliRunner().invoke(main, ["app", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no meshhost host is running" in result.output


def test_list_get_status_delete(host: FakeHost, app_dir: Path) -> None:
    assert host.run("app", "list").output.startswith("no applications")
    assert host.run("apply", str(app_dir / "kvcounter.yaml")).exit_code == 0

    listing = host.run("app", "list")
    assert listing.exit_code == 0, listing.output
    assert "kvcounter" in listing.output and "reconciling" in listing.output
    assert "0/4" in listing.output
    [row] = json.loads(host.run("app", "list", "--json").output)
    assert (row["name"], row["deployed"], row["desired"]) == ("kvcounter", "v0.1.0", 4)

    got = host.run("app", "get", "kvcounter")
    assert got.exit_code == 0, got.output
    assert got.output.startswith("# kvcounter v0.1.0 (deployed), digest ")
    assert "instances: 4" in got.output and "sha256: " in got.output
    document = json.loads(host.run("app", "get", "kvcounter", "--json").output)["manifest"]
    assert document["metadata"]["name"] == "kvcounter"

    status = host.run("app", "status", "kvcounter")
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert lines[0] == "kvcounter v0.1.0  reconciling  (3 live host(s))"
    assert sum("starting" in line for line in lines) == 3
    assert "counter: 0 of 4 running" in status.output
    rows = json.loads(host.run("app", "status", "kvcounter", "--json").output)["rows"]
    assert {(r["host"], r["desired"]) for r in rows} == {(A, 2), (B, 1), (C, 1)}

    host.lattice.dead.add(C)
    failed = host.run("app", "status", "kvcounter")
    assert failed.exit_code == 1  # part of it runs nowhere: say so in the exit code too
    assert "failed" in failed.output.splitlines()[0]
    assert failed.output.splitlines()[-1] == (
        "error: kvcounter v0.1.0 cannot be placed: component counter: spread 'west' needs "
        "1 instance(s) but no live host has zone=west"
    )
    assert host.run("app", "status", "kvcounter", "--json").exit_code == 1
    assert "problem: component counter: spread 'west' needs 1 instance(s)" in failed.output
    assert "counter: 0 of 3 running (4 asked, 1 cannot be placed)" in failed.output

    deleted = host.run("app", "delete", "kvcounter")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.output.strip() == (
        "deleted kvcounter (versions: v0.1.0); its instances stop as hosts reconcile"
    )
    assert host.lattice.dirs[A].items(MANIFESTS_NS) == []


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("app", "status", "nope"), "no application 'nope' is deployed"),
        (("app", "get", "nope"), "no application 'nope' is stored"),
        (("app", "delete", "nope"), "no application 'nope' is stored"),
        (("app", "get", "kvcounter", "--version", "v9"), "stored versions: v0.1.0"),
    ],
)
def test_unknown_apps_exit_1(
    host: FakeHost, app_dir: Path, argv: tuple[str, ...], words: str
) -> None:
    assert host.run("apply", str(app_dir / "kvcounter.yaml")).exit_code == 0
    result = host.run(*argv)
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and words in result.output


def test_delete_one_version(host: FakeHost, app_dir: Path) -> None:
    host.run("apply", str(app_dir / "kvcounter.yaml"))
    host.run("apply", str(write(app_dir, MANIFEST.replace("v0.1.0", "v0.2.0"), "v2.yaml")))
    result = host.run("app", "delete", "kvcounter", "--version", "v0.1.0", "--json")
    assert json.loads(result.output) == {
        "app": "kvcounter",
        "deleted": ["v0.1.0"],
        "undeployed": False,
    }
    assert host.lattice.dirs[A].get(DEPLOYMENTS_NS, "kvcounter") == b"v0.2.0"


def test_diff_shows_changes_and_writes_nothing(host: FakeHost, app_dir: Path) -> None:
    fresh = host.run("app", "diff", str(app_dir / "kvcounter.yaml"))
    assert fresh.exit_code == 0, fresh.output
    assert fresh.output.startswith("kvcounter: not deployed -> v0.1.0")
    assert host.lattice.dirs[A].items(MANIFESTS_NS) == []

    host.run("apply", str(app_dir / "kvcounter.yaml"))
    same = host.run("app", "diff", str(app_dir / "kvcounter.yaml"))
    assert same.output.splitlines() == ["kvcounter: v0.1.0 -> v0.1.0", "no changes"]

    text = MANIFEST.replace("v0.1.0", "v0.2.0").replace("instances: 4", "instances: 8")
    path = write(app_dir, text, "bigger.yaml")
    before = host.lattice.dirs[A].snapshot()
    result = host.run("app", "diff", str(path))
    assert result.exit_code == 0, result.output
    assert host.lattice.dirs[A].snapshot() == before
    assert result.output.startswith("kvcounter: v0.1.0 -> v0.2.0")
    assert "components.counter.instances" in result.output
    assert result.output.count("start ") == 3  # every host gains instances
    data = json.loads(host.run("app", "diff", str(path), "--json").output)
    assert {(i["host"], i["old"], i["new"]) for i in data["instances"]} == {
        (A, 2, 3),
        (B, 1, 3),
        (C, 1, 2),
    }

    conflict = write(app_dir, MANIFEST.replace("instances: 4", "instances: 8"), "conflict.yaml")
    result = host.run("app", "diff", str(conflict))
    assert result.exit_code == 0
    assert "apply would be refused:" in result.output


def test_hand_made_link_is_shown_by_diff_and_kept_unless_apply_is_forced(
    host: FakeHost, app_dir: Path
) -> None:
    from meshhost.capabilities import LinkDefinition

    path = app_dir / "kvcounter.yaml"
    actor = load_manifest(path, inspect_image=actor_id_from_claims).actors[0].actor_id
    assert actor is not None
    hand = LinkDefinition(
        actor, "wasmcloud:httpserver", "default", "builtin", {"ADDRESS": "127.0.0.1:8080"}
    )
    host.lattice.dirs[A].put_link(hand)
    diff = host.run("app", "diff", str(path))
    assert diff.exit_code == 0, diff.output
    assert "links made by hand that apply replaces (only with --force)" in diff.output
    assert "wasmcloud:httpserver" in diff.output and "PORT=8081" in diff.output
    [shown] = json.loads(host.run("app", "diff", str(path), "--json").output)["replaced_links"]
    assert (shown["old"], shown["new"]) == ({"ADDRESS": "127.0.0.1:8080"}, {"PORT": "8081"})

    refused = host.run("apply", str(path))
    assert refused.exit_code == 1
    assert refused.output.startswith("error: apply: kvcounter v0.1.0 would replace 1 link(s)")
    assert host.lattice.dirs[A].get(DEPLOYMENTS_NS, "kvcounter") is None
    assert host.lattice.dirs[A].link(actor, "wasmcloud:httpserver") == hand

    forced = host.run("apply", str(path), "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.output.splitlines() == [
        "deployed kvcounter v0.1.0",
        f"replaced link made by hand: {actor} wasmcloud:httpserver (default): "
        "ADDRESS=127.0.0.1:8080 -> PORT=8081",
    ]


def test_apply_of_an_application_that_fits_no_host_exits_1_with_the_reason(
    host: FakeHost, app_dir: Path
) -> None:
    text = MANIFEST.replace("zone: east", "zone: mars").replace("zone: west", "zone: mars")
    result = host.run("apply", str(write(app_dir, text, "mars.yaml")))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "deployed kvcounter v0.1.0",
        "error: kvcounter v0.1.0 is deployed, but cannot be placed: component counter: "
        "spread 'east' needs 3 instance(s) but no live host has zone=mars; component counter: "
        "spread 'west' needs 1 instance(s) but no live host has zone=mars",
    ]
    status = host.run("app", "status", "kvcounter")
    assert status.exit_code == 1 and "no live host has zone=mars" in status.output


def test_diff_and_list_print_values_with_brackets_as_they_are(
    host: FakeHost, app_dir: Path
) -> None:
    assert host.run("apply", str(app_dir / "kvcounter.yaml")).exit_code == 0
    text = MANIFEST.replace("v0.1.0", "v0.2.0").replace('"8081"', '"[bold]8082"')
    result = host.run("app", "diff", str(write(app_dir, text, "brackets.yaml")))
    assert result.exit_code == 0, result.output
    assert "[bold]8082" in result.output and "\\[" not in result.output
    listing = host.run("app", "list")
    assert "v0.1.0" in listing.output and "\\" not in listing.output
