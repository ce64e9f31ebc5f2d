"""`meshhost lattice new` and `meshhost up` from the outside."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from meshhost.cli import main
from meshhost.datadir import check_private
from meshhost.identity.keyring import decode_secret, encode_secret, mdns_tag

LINE_TIMEOUT_S = 15.0


def test_lattice_new_prints_a_valid_secret_and_its_tag() -> None:
    result = CliRunner().invoke(main, ["lattice", "new", "--lattice", "lab", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    secret = decode_secret(info["secret"])
    assert info["mdns_tag"] == mdns_tag(secret, "lab")


def test_lattice_new_out_writes_a_private_file_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "lattice.secret"
    result = CliRunner().invoke(main, ["lattice", "new", "--out", str(out)])
    assert result.exit_code == 0, result.output
    secret, admin_line = out.read_text().splitlines()  # the secret, then its bootstrap admin
    assert decode_secret(secret) and admin_line.startswith("# admin O")
    assert out.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "lattice.admin.nk").stat().st_mode & 0o777 == 0o600
    assert "SL" not in result.output.replace("SLOT", "")  # the secret went only to the file
    again = CliRunner().invoke(main, ["lattice", "new", "--out", str(out)])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_lattice_new_install_makes_a_data_dir_that_up_accepts(tmp_path: Path) -> None:
    # `up` refuses a data dir others can read; the one `--install` makes must pass.
    data_dir = tmp_path / "xdg" / "meshhost" / "lat"
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(
            main, ["lattice", "new", "--lattice", "lat", "--install", "--data-dir", str(data_dir)]
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert data_dir.stat().st_mode & 0o777 == 0o700
    check_private(data_dir)


def test_up_without_a_secret_says_how_to_make_one(tmp_path: Path) -> None:
    env = {"MESHHOST_LATTICE_SECRET": ""}
    result = CliRunner().invoke(main, ["up", "--data-dir", str(tmp_path), "--no-mdns"], env=env)
    assert result.exit_code == 1
    assert "meshhost lattice new" in result.output


def test_up_with_a_mistyped_secret_says_so(tmp_path: Path) -> None:
    text = encode_secret(bytes(range(32)))
    typo = text[:10] + ("A" if text[10] != "A" else "B") + text[11:]
    env = {"MESHHOST_LATTICE_SECRET": typo}
    result = CliRunner().invoke(main, ["up", "--data-dir", str(tmp_path), "--no-mdns"], env=env)
    assert result.exit_code == 1
    assert "mistyped" in result.output


def read_event(proc: subprocess.Popen[str], kind: str) -> dict:
    deadline = time.monotonic() + LINE_TIMEOUT_S
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        record = json.loads(line)
        if record["event"] == kind:
            return record
    raise AssertionError(f"no {kind!r} event within {LINE_TIMEOUT_S} s")


def test_up_reloads_secrets_on_sighup_and_leaves_on_sigterm(tmp_path: Path) -> None:
    old, new = encode_secret(bytes(range(32))), encode_secret(bytes(range(1, 33)))
    secret_file = tmp_path / "secret"
    secret_file.write_text(old + "\n")
    argv = [
        sys.executable, "-m", "meshhost", "up", "--json", "--no-mdns",
        "--bind", "127.0.0.1", "--profile", "local",
        "--data-dir", str(tmp_path / "data"), "--secret-file", str(secret_file),
        "--status-file", str(tmp_path / "status.json"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHHOST_")}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        started = read_event(proc, "started")
        assert started["id"].startswith("N") and started["addr"].startswith("127.0.0.1:")
        status = json.loads((tmp_path / "status.json").read_text())
        assert status["host_id"] == started["id"] and status["alive"] == 1
        secret_file.write_text(f"{new}\n{old}\n")
        proc.send_signal(signal.SIGHUP)
        assert read_event(proc, "secrets_reloaded")["keys"] == 2
        secret_file.write_text("not a secret\n")
        proc.send_signal(signal.SIGHUP)
        assert "line 1" in read_event(proc, "reload_failed")["error"]
        secret_file.write_bytes(b"\xff\xfe" + old.encode())  # not UTF-8: the host lives on
        proc.send_signal(signal.SIGHUP)
        assert "is not text: the file is damaged" in read_event(proc, "reload_failed")["error"]
        proc.send_signal(signal.SIGTERM)
        read_event(proc, "stopped")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_up_on_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    env = dict(os.environ, MESHHOST_LATTICE_SECRET=encode_secret(bytes(range(32))))
    argv = [
        sys.executable, "-m", "meshhost", "up", "--no-mdns", "--bind", "127.0.0.1",
        "--port", str(port), "--data-dir", str(tmp_path),
    ]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    finally:
        taken.close()
    assert done.returncode == 1
    assert "Address already in use" in done.stderr and "Traceback" not in done.stderr


def test_up_with_a_bad_service_type_says_what_form_to_use(tmp_path: Path) -> None:
    env = {"MESHHOST_LATTICE_SECRET": encode_secret(bytes(range(32)))}
    argv = [
        "up",
        "--data-dir",
        str(tmp_path),
        "--mdns-service-type",
        "_far-too-long-name._udp.local.",
    ]
    result = CliRunner().invoke(main, argv, env=env)
    assert result.exit_code == 1
    assert "at most 15 characters" in result.output


def test_misbehaving_peers_cannot_flood_the_terminal() -> None:
    from meshhost.cli.upview import Budget

    budget = Budget(limit=2, window_s=10.0)
    assert [budget.allow(t) for t in (0, 1, 2, 3, 11, 12, 13)] == [
        True, True, False, False, True, True, False,
    ]  # fmt: skip
    assert budget.suppressed == 3


async def test_a_status_file_that_fails_while_running_is_said_once_not_fatal(
    tmp_path: Path, capsys
) -> None:
    from meshhost.cli.host import _refresh_status

    class Host:
        def status(self) -> dict:
            return {}

    path = tmp_path / "gone" / "status.json"  # e.g. a disk that filled up meanwhile
    failed = await _refresh_status(Host(), path, True, None)  # type: ignore[arg-type]
    assert failed is not None and "cannot write status file" in failed
    assert await _refresh_status(Host(), path, True, failed) == failed  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["status_failed"]
    path.parent.mkdir()
    assert await _refresh_status(Host(), path, True, failed) is None  # type: ignore[arg-type]
