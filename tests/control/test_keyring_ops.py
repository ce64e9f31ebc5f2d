"""Keyring control ops on one host: install, use, remove; written to the secret file first."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import trio

from meshhost import config as config_mod
from meshhost.control.api import ControlClient, ControlError
from meshhost.control.keyops import MAX_KEYS, key_id, keyring_op
from meshhost.datadir import CONTROL_SOCKET
from meshhost.errors import ErrorCode, KeyringError, LatticeSecretError
from meshhost.host import Host
from meshhost.identity import nkeys
from meshhost.identity.keyring import encode_secret, read_secret_file
from meshhost.testing import SECRET as OLD_IN_PROCESS
from meshhost.testing import alive, make_host, wait_until

OLD, NEW = bytes([7]) * 32, bytes([8]) * 32
ADMIN_LINE = "# admin " + nkeys.generate(nkeys.Prefix.OPERATOR, lambda n: bytes([9]) * n).public_key


def open_host(tmp_path: Path, *, from_env: bool = False) -> Host:
    cfg = config_mod.load(overrides={"data_dir": str(tmp_path / "d"), "lattice": "lab"}, environ={})
    if from_env:
        return Host.open(cfg, secret_text=encode_secret(OLD))
    secret_file = tmp_path / "lattice.secret"
    secret_file.write_text(encode_secret(OLD) + "\n" + ADMIN_LINE + "\n")
    return Host.open(cfg, secret_file=secret_file)


async def test_a_rotation_on_one_host_step_by_step_with_the_file_kept_in_step(
    tmp_path: Path,
) -> None:
    host = open_host(tmp_path)
    assert host.secret_path is not None
    old_id, new_id = key_id(OLD, "lab"), key_id(NEW, "lab")
    listed = await keyring_op(host, "keyring_list", {})
    assert listed == {
        "host": host.host_id,
        "lattice": "lab",
        "primary": old_id,
        "keys": [old_id],
        "file": str(host.secret_path),
    }

    view = await keyring_op(host, "keyring_install", {"secret": encode_secret(NEW)})
    assert (view["primary"], view["keys"], view["saved"]) == (old_id, [old_id, new_id], True)
    assert read_secret_file(host.secret_path) == [OLD, NEW] == list(host.keyring.secrets)
    assert host.secret_path.stat().st_mode & 0o777 == 0o600
    again = await keyring_op(host, "keyring_install", {"secret": encode_secret(NEW)})
    assert again["keys"] == [old_id, new_id]  # idempotent

    view = await keyring_op(host, "keyring_use", {"key": new_id.upper()})
    assert view["primary"] == new_id and host.keyring.primary == NEW
    assert read_secret_file(host.secret_path) == [NEW, OLD]

    with pytest.raises(KeyringError, match="is the primary"):
        await keyring_op(host, "keyring_remove", {"key": new_id})
    view = await keyring_op(host, "keyring_remove", {"key": old_id})
    assert view["keys"] == [new_id] and read_secret_file(host.secret_path) == [NEW]
    # Comments (operators named in the file) survive every rewrite, once each.
    text = host.secret_path.read_text()
    assert text.count(ADMIN_LINE + "\n") == 1
    assert text.count("rewritten by") == 1
    assert (await keyring_op(host, "keyring_remove", {"key": old_id}))["keys"] == [new_id]


async def test_bad_requests_are_refused_and_change_nothing(tmp_path: Path) -> None:
    host = open_host(tmp_path)
    assert host.secret_path is not None
    with pytest.raises(LatticeSecretError):
        await keyring_op(host, "keyring_install", {"secret": "SLnot-a-secret"})
    with pytest.raises(KeyringError, match="needs the new secret"):
        await keyring_op(host, "keyring_install", {})
    with pytest.raises(KeyringError, match="not installed"):
        await keyring_op(host, "keyring_use", {"key": key_id(NEW, "lab")})
    with pytest.raises(KeyringError, match="key id"):
        await keyring_op(host, "keyring_use", {"key": 5})
    for i in range(MAX_KEYS - 1):
        await keyring_op(host, "keyring_install", {"secret": encode_secret(bytes([i]) * 32)})
    with pytest.raises(KeyringError, match="remove a retired one first"):
        await keyring_op(host, "keyring_install", {"secret": encode_secret(NEW)})
    assert len(read_secret_file(host.secret_path)) == MAX_KEYS == len(host.keyring.secrets)


async def test_a_file_that_cannot_be_written_fails_the_step_and_changes_nothing(
    tmp_path: Path,
) -> None:
    host = open_host(tmp_path)
    host.secret_path = tmp_path / "lattice.secret" / "inside-a-file"
    with pytest.raises(KeyringError, match="cannot write lattice secret file"):
        await keyring_op(host, "keyring_install", {"secret": encode_secret(NEW)})
    assert host.keyring.secrets == (OLD,)


async def test_a_host_with_its_secret_from_the_environment_says_it_did_not_save(
    tmp_path: Path,
) -> None:
    host = open_host(tmp_path, from_env=True)
    assert host.secret_path is None
    view = await keyring_op(host, "keyring_install", {"secret": encode_secret(NEW)})
    assert view["saved"] is False and view["file"] is None
    assert host.keyring.secrets == (OLD, NEW)


async def test_rotate_stops_at_a_step_some_host_did_not_acknowledge(tmp_path: Path) -> None:
    """Two hosts in this process; b cannot write its secret file, so `lattice rotate`
    fails at install, names b, and switches nobody (both still seal with the old key)."""
    a, b = (
        make_host(tmp_path, 0, secret=OLD_IN_PROCESS),
        make_host(tmp_path, 1, secret=OLD_IN_PROCESS),
    )
    a.secret_path = tmp_path / "a.secret"
    a.secret_path.write_text(encode_secret(OLD_IN_PROCESS) + "\n")
    b.secret_path = tmp_path / "b.secret"
    b.secret_path.mkdir()  # a directory where its file should be: the write fails
    async with trio.open_nursery() as nursery:
        a_addr = await nursery.start(a.serve)
        b.config = dataclasses.replace(b.config, seeds=(f"{a_addr[0]}:{a_addr[1]}",))
        await nursery.start(b.serve)
        ids = {a.host_id, b.host_id}
        await wait_until(lambda: alive(a) == ids == alive(b), "a and b see each other")
        done = await trio.run_process(
            [
                sys.executable,
                "-m",
                "meshhost",
                "lattice",
                "rotate",
                "--json",
                "--data-dir",
                str(a.data_dir),
                "--timeout",
                "20",
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        out, err = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == 1, (out, err)
        assert "Traceback" not in err and "step 'install' did not reach" in err
        failed = json.loads(out)["failed_step"]
        assert failed["step"] == "install", failed
        assert list(failed["failed"]) == [b.host_id], failed
        assert "cannot write lattice secret file" in failed["failed"][b.host_id]
        assert failed["acknowledged"] == [a.host_id]
        new = next(s for s in a.keyring.secrets if s != OLD_IN_PROCESS)
        assert read_secret_file(a.secret_path) == [OLD_IN_PROCESS, new]  # installed on a
        assert b.keyring.secrets == (OLD_IN_PROCESS,)
        assert a.keyring.primary == b.keyring.primary == OLD_IN_PROCESS  # no one switched
        nursery.cancel_scope.cancel()


async def test_without_an_admin_key_a_secret_holder_cannot_rotate(tmp_path: Path) -> None:
    """A lattice whose secret file names an admin: an unsigned keyring_install (what a
    holder of the secret alone can send) is denied, and the keyring and file stay."""
    cfg = config_mod.load(
        overrides={
            "data_dir": str(tmp_path / "d"),
            "lattice": "lab",
            "profile": "local",
            "bind": "127.0.0.31",
            "mdns": False,
        },
        environ={},
    )
    secret_file = tmp_path / "lattice.secret"
    secret_file.write_text(encode_secret(OLD) + "\n" + ADMIN_LINE + "\n")
    host = Host.open(cfg, secret_file=secret_file)
    before = secret_file.read_text()
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        client = ControlClient(host.data_dir / CONTROL_SOCKET)
        assert (await client.request("keyring_list"))["keys"] == [key_id(OLD, "lab")]
        with pytest.raises(ControlError) as denied:
            await client.request("keyring_install", secret=encode_secret(NEW))
        assert denied.value.code == ErrorCode.DENIED and "needs role admin" in str(denied.value)
        assert host.keyring.secrets == (OLD,) and secret_file.read_text() == before
        nursery.cancel_scope.cancel()
