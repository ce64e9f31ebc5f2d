"""`meshhost claims sign` and `meshhost claims inspect` through click's CliRunner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshhost.cli import main
from meshhost.identity import claims, nkeys, wasm
from meshhost.identity.nkeys import KeyPair, Prefix
from tests.identity.fixtures.mh_wasmgen import BASE_MODULE

ISSUER = KeyPair(Prefix.ACCOUNT, bytes(range(32)))
SUBJECT = KeyPair(Prefix.MODULE, bytes(range(100, 132)))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MESHHOST_ISSUER_SEED", raising=False)
    monkeypatch.delenv("MESHHOST_SUBJECT_SEED", raising=False)
    (tmp_path / "actor.wasm").write_bytes(BASE_MODULE)
    (tmp_path / "issuer.nk").write_text(ISSUER.encoded_seed + "\n")
    (tmp_path / "subject.nk").write_text(SUBJECT.encoded_seed + "\n")
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_sign_then_inspect_table(workdir: Path) -> None:
    result = run(
        "claims", "sign", str(workdir / "actor.wasm"),
        "--issuer", str(workdir / "issuer.nk"),
        "--subject", str(workdir / "subject.nk"),
        "--name", "echo", "--cap", "wasmcloud:keyvalue", "-c", "wasmcloud:httpserver",
        "--tag", "demo", "--rev", "4", "--ver", "0.3.4", "--call-alias", "demo/echo",
        "--expires-in", "30d", "--not-before", "0s",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    signed_path = workdir / "actor_s.wasm"
    signed = signed_path.read_bytes()
    assert signed.startswith(BASE_MODULE)
    c = claims.verify_module(signed, now=c_now(signed))
    assert c.subject == SUBJECT.public_key and c.issuer == ISSUER.public_key
    assert c.caps == ("wasmcloud:keyvalue", "wasmcloud:httpserver")
    assert c.expires is not None and c.expires - c.issued_at == 30 * 86400
    assert c.not_before == c.issued_at
    assert ISSUER.encoded_seed not in result.output and SUBJECT.encoded_seed not in result.output

    shown = run("claims", "inspect", str(signed_path))
    assert shown.exit_code == 0, shown.output
    for text in (SUBJECT.public_key, ISSUER.public_key, "echo", "wasmcloud:keyvalue", "demo",
                 "0.3.4", "demo/echo", "VALID", "in 29 days"):  # fmt: skip
        assert text in shown.output
    assert "INVALID" not in shown.output


def c_now(signed: bytes) -> float:
    return float(claims.extract_claims(signed).issued_at)


def test_inspect_json_and_exit_code_for_tampered_module(workdir: Path) -> None:
    out = workdir / "signed.wasm"
    signed = run("claims", "sign", str(workdir / "actor.wasm"), "--out", str(out), "--name", "x",
                 env={"MESHHOST_ISSUER_SEED": ISSUER.encoded_seed})  # fmt: skip
    assert signed.exit_code == 0, signed.output
    good = json.loads(run("claims", "inspect", str(out), "--json").output)
    assert good["valid"] is True and good["status"] == "VALID"
    assert good["claims"]["issuer"] == ISSUER.public_key
    assert good["claims"]["subject"].startswith("M")

    data = bytearray(out.read_bytes())
    data[BASE_MODULE.index(bytes.fromhex("412a0b")) + 1] ^= 1
    out.write_bytes(bytes(data))
    bad = run("claims", "inspect", str(out), "--json")
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["valid"] is False and report["error"] == "ClaimsHashMismatch"
    assert report["computed_hash"] == claims.module_hash(bytes(data))
    assert report["computed_hash"] != report["claims"]["module_hash"]
    table = run("claims", "inspect", str(out))
    assert table.exit_code == 1 and "INVALID" in table.output and "changed after" in table.output
    assert claims.module_hash(bytes(data)) in table.output


def test_inspect_unsigned_and_non_wasm_files_exit_1(workdir: Path) -> None:
    unsigned = run("claims", "inspect", str(workdir / "actor.wasm"))
    assert unsigned.exit_code == 1 and "ClaimsMissing" in unsigned.output
    junk = workdir / "junk.wasm"
    junk.write_bytes(b"MZ\x90\x00 this is not wasm")
    report = run("claims", "inspect", str(junk), "--json")
    assert report.exit_code == 1
    assert json.loads(report.output)["error"] == "ClaimsModuleMalformed"


def test_inspect_with_issuer_allow_list(workdir: Path) -> None:
    out = workdir / "signed.wasm"
    run("claims", "sign", str(workdir / "actor.wasm"), "-o", str(out), "-n", "x",
        "--issuer", str(workdir / "issuer.nk"))  # fmt: skip
    other = KeyPair(Prefix.ACCOUNT, bytes(32)).public_key
    assert run("claims", "inspect", str(out), "--allowed-issuer", ISSUER.public_key).exit_code == 0
    refused = run("claims", "inspect", str(out), "--allowed-issuer", other)
    assert refused.exit_code == 1 and "IssuerNotAllowed" in refused.output


def test_not_yet_valid_module_is_invalid(workdir: Path) -> None:
    out = workdir / "later.wasm"
    run("claims", "sign", str(workdir / "actor.wasm"), "-o", str(out), "-n", "x",
        "--issuer", str(workdir / "issuer.nk"), "--not-before", "2h")  # fmt: skip
    result = run("claims", "inspect", str(out))
    assert result.exit_code == 1 and "ClaimsNotYetValid" in result.output


def test_generated_subject_seed_is_saved_only_when_asked(workdir: Path) -> None:
    out = workdir / "a.wasm"
    result = run("claims", "sign", str(workdir / "actor.wasm"), "-o", str(out), "-n", "x",
                 "--issuer", str(workdir / "issuer.nk"))  # fmt: skip
    assert result.exit_code == 0
    assert not list(workdir.glob("*_module.nk"))
    issuer_file = str(workdir / "issuer.nk")
    result = run("claims", "sign", str(workdir / "actor.wasm"), "-o", str(workdir / "b.wasm"),
                 "-n", "x", "--issuer", issuer_file, "--save-subject", "--json")  # fmt: skip
    info = json.loads(result.output)
    seed_file = Path(info["subject_seed_file"])
    assert seed_file == workdir / "b_module.nk"
    assert os.stat(seed_file).st_mode & 0o777 == 0o600
    saved = nkeys.from_seed(seed_file.read_text().strip(), Prefix.MODULE)
    assert saved.public_key == info["subject"]
    assert saved.encoded_seed not in result.output


def test_resign_replaces_claims(workdir: Path) -> None:
    out = workdir / "s.wasm"
    run("claims", "sign", str(workdir / "actor.wasm"), "-o", str(out), "-n", "first",
        "--issuer", str(workdir / "issuer.nk"))  # fmt: skip
    run("claims", "sign", str(out), "-o", str(workdir / "s2.wasm"), "-n", "second",
        "--issuer", str(workdir / "issuer.nk"))  # fmt: skip
    data = (workdir / "s2.wasm").read_bytes()
    assert len(wasm.custom_sections(data, "wasmcloud_jwt")) == 1
    assert claims.extract_claims(data).name == "second"


def test_bad_seed_files_fail_cleanly(workdir: Path) -> None:
    missing = run("claims", "sign", str(workdir / "actor.wasm"), "-n", "x",
                  "--issuer", str(workdir / "nope.nk"))  # fmt: skip
    assert missing.exit_code == 2 and "cannot read issuer seed file" in missing.output
    (workdir / "garbage.nk").write_text("SAnot-a-seed")
    garbage = run("claims", "sign", str(workdir / "actor.wasm"), "-n", "x",
                  "--issuer", str(workdir / "garbage.nk"))  # fmt: skip
    assert garbage.exit_code == 1 and "error:" in garbage.output
    wrong_kind = run("claims", "sign", str(workdir / "actor.wasm"), "-n", "x",
                     "--issuer", str(workdir / "subject.nk"))  # fmt: skip
    assert wrong_kind.exit_code == 1 and "account" in wrong_kind.output
    none_given = run("claims", "sign", str(workdir / "actor.wasm"), "-n", "x")
    assert none_given.exit_code == 2 and "MESHHOST_ISSUER_SEED" in none_given.output
    assert not (workdir / "actor_s.wasm").exists()


def test_a_lattice_secret_or_other_seed_kind_is_named_as_such(workdir: Path) -> None:
    secret = workdir / "lattice.secret"
    assert run("lattice", "new", "--out", str(secret)).exit_code == 0
    sign = ("claims", "sign", str(workdir / "actor.wasm"), "-n", "x")
    line = run(*sign, "--issuer", str(secret)).output.strip()
    assert line == (
        f"error: issuer seed ({secret}): this is a lattice secret (SL...), not a key seed; "
        "expected an account seed (SA...): the lattice secret only lets hosts join, it cannot "
        "sign"
    ), line
    line = run(*sign, "--issuer", str(workdir / "subject.nk")).output.strip()
    assert line.endswith("expected an account seed (SA...), got a module (actor) seed (SM...)")
    result = run(*sign, "--subject", str(secret), env={"MESHHOST_ISSUER_SEED": ISSUER.encoded_seed})
    assert result.exit_code == 1
    assert f"subject seed ({secret}): this is a lattice secret (SL...)" in result.output
    assert not (workdir / "actor_s.wasm").exists()


def test_bad_durations_and_modules_are_usage_errors(workdir: Path) -> None:
    result = run("claims", "sign", str(workdir / "actor.wasm"), "-n", "x",
                 "--issuer", str(workdir / "issuer.nk"), "--expires-in", "soon")  # fmt: skip
    assert result.exit_code == 2 and "not a duration" in result.output
    missing = run("claims", "inspect", str(workdir / "missing.wasm"))
    assert missing.exit_code == 2 and "cannot read module" in missing.output
    (workdir / "bad.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00\x01\x09")
    bad = run("claims", "sign", str(workdir / "bad.wasm"), "-n", "x",
              "--issuer", str(workdir / "issuer.nk"))  # fmt: skip
    assert bad.exit_code == 1 and "malformed WebAssembly" in bad.output


def test_absurd_duration_fails_cleanly(workdir: Path) -> None:
    huge = "99999999999999999999d"
    result = run("claims", "sign", str(workdir / "actor.wasm"), "-n", "x",
                 "--issuer", str(workdir / "issuer.nk"), "--expires-in", huge)  # fmt: skip
    assert result.exit_code == 1 and "shorter duration" in result.output
