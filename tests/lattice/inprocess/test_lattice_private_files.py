"""A data dir is its owner's alone: every file 0600, every directory 0700, and a
host refuses to start in one that others can read (saying how to fix it)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from meshhost import config as config_mod
from meshhost.errors import DataDirNotPrivate
from meshhost.host import Host
from meshhost.identity.keyring import encode_secret
from meshhost.testing import client, make_host, signed_example
from tests.lattice.inprocess.lattice_helpers import http_request
from tests.systools import is_root, unavailable


def modes(root: Path) -> dict[str, str]:
    """Relative path -> octal mode of every file and directory under ``root`` (itself too)."""
    found = {".": f"{stat.S_IMODE(root.stat().st_mode):04o}"}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = f"{stat.S_IMODE(path.lstat().st_mode):04o}"
    return found


async def test_everything_a_host_writes_is_for_its_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual one: it must not decide the modes
    try:
        async with trio.open_nursery() as nursery:
            host = make_host(tmp_path, 0)
            await nursery.start(host.serve)
            kv, kv_id = signed_example("kvcounter")
            await client(host).request("start", module=kv)
            await client(host).request(
                "link_put",
                actor=kv_id,
                contract="wasmcloud:keyvalue",
                link_name="default",
                provider="",
                values={},
            )
            await client(host).request(
                "call",
                actor=kv_id,
                operation="HttpServer.HandleRequest",
                payload=http_request(),
                timeout_ms=10_000,
            )
            written = modes(host.data_dir)
            nursery.cancel_scope.cancel()
    finally:
        os.umask(old_umask)
    # What this test needs to have seen: the module store, the kv database and the
    # directory's log (each was 0644 or 0755 before).
    assert any(p.startswith("modules/") for p in written), written
    assert any(p.startswith("kv/") for p in written), written
    assert "directory/lww.jsonl" in written, written
    for path, mode in written.items():
        is_dir = (host.data_dir / path).is_dir()
        wanted = "0700" if is_dir else "0600"
        assert mode == wanted, f"{path} is {mode}, not {wanted}: {written}"


def _config(data_dir: Path) -> config_mod.HostConfig:
    return config_mod.load(
        overrides={
            "profile": "local",
            "data_dir": str(data_dir),
            "mdns": False,
            "bind": "127.0.0.1",
        },
        environ={},
    )


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701])
def test_a_data_dir_others_can_read_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    data_dir = tmp_path / "host"
    data_dir.mkdir()
    data_dir.chmod(mode)
    with pytest.raises(DataDirNotPrivate, match=f"chmod 700 {data_dir}$") as refused:
        Host.open(_config(data_dir), secret_text=encode_secret(bytes(32)))
    assert f"mode {mode:04o}" in str(refused.value)
    assert sorted(os.listdir(data_dir)) == []  # nothing was written into it
    data_dir.chmod(0o700)
    Host.open(_config(data_dir), secret_text=encode_secret(bytes(32)))  # now accepted


def test_a_data_dir_another_user_owns_is_refused(tmp_path: Path) -> None:
    # Mode 0700 but someone else's (made in /tmp beforehand, say): its owner
    # could swap in a host key or secret of its own, or its own control.sock.
    if not is_root():
        unavailable("needs root to give a directory to another user (chown): run the tests as root")
    data_dir = tmp_path / "host"
    data_dir.mkdir(mode=0o700)
    os.chown(data_dir, 65534, 65534)
    with pytest.raises(DataDirNotPrivate, match="belongs to uid 65534, not to this user"):
        Host.open(_config(data_dir), secret_text=encode_secret(bytes(32)))
    assert sorted(os.listdir(data_dir)) == []
    os.chown(data_dir, os.getuid(), os.getgid())
    Host.open(_config(data_dir), secret_text=encode_secret(bytes(32)))  # now accepted


def test_a_secret_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "copied.secret"
    secret.write_text(encode_secret(bytes(32)) + "\n")
    secret.chmod(0o644)
    data_dir = tmp_path / "host"
    Host.open(_config(data_dir), secret_file=secret)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(f"chmod 600 {secret}" in m and "mode 0644" in m for m in warned), warned
    caplog.clear()
    secret.chmod(0o600)
    Host.open(_config(tmp_path / "other"), secret_file=secret)
    assert not [r for r in caplog.records if "chmod 600" in r.getMessage()]


def test_up_refuses_it_in_one_line_and_exits_1(tmp_path: Path) -> None:
    data_dir = tmp_path / "host"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    env = {**os.environ, "MESHHOST_LATTICE_SECRET": encode_secret(bytes(32))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshhost",
            "up",
            "--data-dir",
            str(data_dir),
            "--no-mdns",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [
        f"error: data dir {data_dir} can be read by other users (mode 0755); it holds this "
        f"host's key and the lattice secret. Make it private: chmod 700 {data_dir}"
    ]


def test_a_data_dir_made_by_the_host_is_private_with_its_parents(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "deeper" / "host"
    old_umask = os.umask(0o022)
    try:
        Host.open(_config(data_dir), secret_text=encode_secret(bytes(32)))
    finally:
        os.umask(old_umask)
    for directory in (tmp_path / "new", tmp_path / "new" / "deeper", data_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE((data_dir / "host.seed").stat().st_mode) == 0o600
