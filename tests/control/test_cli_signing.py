"""The CLI signs what needs a role with the operator key it finds, and says what to do
when it cannot (a fake host on a real control socket records what arrives)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner

from meshhost.cli import main
from meshhost.control import api
from meshhost.identity import nkeys
from meshhost.identity.operators import decode_statement, verify_request_signature

ADMIN = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes([3] * 32))
ACTOR = nkeys.KeyPair(nkeys.Prefix.MODULE, bytes([4] * 32)).public_key


class FakeHost:
    def __init__(self, data_dir: Path, *, open_lattice: bool = False) -> None:
        self.open = open_lattice
        self.admin_file = data_dir / "lattice.admin.nk"
        self.seen: list[tuple[str, dict[str, Any], Any]] = []

    async def dispatch(self, op: str, args: Mapping[str, Any], auth: Any = None) -> Any:
        self.seen.append((op, dict(args), auth))
        if op == "auth_info":
            return {
                "lattice": "lab",
                "open": self.open,
                "host": "NHOST",
                "admin_key_file": str(self.admin_file),
            }
        if op == "hosts":
            return []  # a host alone with no peer yet (what `top` asks first)
        return {
            "stopped": 1,
            "hosts": ["NHOST"],
            "kind": "revoke",
            "subject": ACTOR,
            "value": "revoked",
            "digest": "d",
        }


@pytest.fixture
def fake(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FakeHost]:
    host = FakeHost(tmp_path, open_lattice=getattr(request, "param", False))
    ready, token, cancel = threading.Event(), [], trio.CancelScope()

    async def run() -> None:
        token.append(trio.lowlevel.current_trio_token())
        with cancel:
            async with trio.open_nursery() as nursery:
                await nursery.start(api.serve_unix, tmp_path / "control.sock", host.dispatch, {})
                ready.set()

    thread = threading.Thread(target=trio.run, args=(run,), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield host
    trio.from_thread.run_sync(cancel.cancel, trio_token=token[0])
    thread.join(10)


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env or {"MESHHOST_OPERATOR_KEY": ""})


def test_the_admin_key_beside_the_secret_signs_ops_that_need_a_role(
    fake: FakeHost, tmp_path: Path
) -> None:
    fake.admin_file.write_text(ADMIN.encoded_seed + "\n")
    result = _run("stop", ACTOR, "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    op, args, auth = fake.seen[-1]
    assert op == "stop" and verify_request_signature("lab", op, args, auth)[0] == ADMIN.public_key
    result = _run("revoke", "add", ACTOR, "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    op, args, auth = fake.seen[-1]
    statement = decode_statement("lab", args["statement"])
    assert (op, statement.subject, statement.signer) == ("security_put", ACTOR, ADMIN.public_key)
    _run("hosts", "--data-dir", str(tmp_path))
    assert fake.seen[-1][2] is None  # read-only: sent unsigned, no auth_info round trip


def test_an_explicit_key_file_wins_and_a_bad_one_is_one_clear_line(
    fake: FakeHost, tmp_path: Path
) -> None:
    other = nkeys.generate(nkeys.Prefix.USER, os.urandom)
    key = tmp_path / "me.nk"
    key.write_text(f"# my key\n{other.encoded_seed}\n")
    assert (
        _run("stop", ACTOR, "--data-dir", str(tmp_path), "--operator-key", str(key)).exit_code == 0
    )
    assert fake.seen[-1][2]["key"] == other.public_key
    fake.admin_file.write_text(ADMIN.encoded_seed + "\n")
    assert _run("stop", ACTOR, "--data-dir", str(tmp_path)).exit_code == 0
    assert fake.seen[-1][2]["key"] == ADMIN.public_key  # the next command's own choice
    key.write_text(nkeys.KeyPair(nkeys.Prefix.ACCOUNT, bytes(32)).encoded_seed)
    result = _run("stop", ACTOR, "--data-dir", str(tmp_path), "--operator-key", str(key))
    assert result.exit_code == 1 and "an operator key starts with O or U" in result.output


@pytest.mark.parametrize("fake", [True], indirect=True)
def test_operators_of_an_open_lattice_are_explained(fake: FakeHost, tmp_path: Path) -> None:
    result = _run(
        "operator", "add", ADMIN.public_key, "--role", "deployer", "--data-dir", str(tmp_path)
    )
    assert result.exit_code == 1 and "has no admin key" in result.output


def test_rotate_without_an_admin_key_fails_before_asking_any_host(
    fake: FakeHost, tmp_path: Path
) -> None:
    out = tmp_path / "new.secret"
    result = _run("lattice", "rotate", "--out", str(out), "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "needs an admin operator key" in result.output
    assert [op for op, _, _ in fake.seen] == ["auth_info"]  # no keyring op was sent
    assert not out.exists()  # and no secret that no host holds was written


def test_top_and_events_take_json_as_every_read_command_does(
    fake: FakeHost, tmp_path: Path
) -> None:
    import json

    result = _run("top", "--json", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["actors"] == []
    assert "--json" in _run("events", "--help").output


def test_an_operator_key_other_users_can_read_is_warned_about(
    fake: FakeHost, tmp_path: Path
) -> None:
    key = tmp_path / "me.nk"
    key.write_text(ADMIN.encoded_seed + "\n")
    key.chmod(0o644)
    result = _run("stop", ACTOR, "--data-dir", str(tmp_path), "--operator-key", str(key))
    assert result.exit_code == 0 and "can be read by other users" in result.output
    key.chmod(0o600)
    result = _run("stop", ACTOR, "--data-dir", str(tmp_path), "--operator-key", str(key))
    assert result.exit_code == 0 and "warning" not in result.output


def test_an_actor_key_given_as_an_issuer_is_explained(fake: FakeHost, tmp_path: Path) -> None:
    fake.admin_file.write_text(ADMIN.encoded_seed + "\n")
    result = _run("issuer", "add", ACTOR, "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "an allowed issuer is an account key (A…)" in result.output
    assert f"{ACTOR[:12]}… is an actor key" in result.output
