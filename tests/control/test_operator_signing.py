"""The operator signing formats (proto/spec/operators.md) against proto/vectors/operators.json,
the request check (time window, replay, roles) and the evaluation of security statements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshhost.control.authz import OP_ROLES, Authorizer, required_role
from meshhost.control.security import SECURITY_NS, LatticeSecurity
from meshhost.directory import Directory
from meshhost.directory.codec import FullState, LwwEntry, encode
from meshhost.directory.hlc import Stamp
from meshhost.errors import DecodeError, IdentityError, NotAuthorized, SignatureError
from meshhost.identity import nkeys
from meshhost.identity.operators import (
    Role,
    StatementKind,
    bootstrap_admins,
    canonical,
    decode_statement,
    evaluate,
    request_signing_bytes,
    sign_request,
    sign_statement,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "proto" / "vectors" / "operators.json").read_text()
)
LATTICE = "default"
ADMIN = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes(range(32)))
DEPLOYER = nkeys.KeyPair(nkeys.Prefix.USER, bytes(range(32, 64)))
NOW = 1_765_000_000_000
ACTOR = nkeys.KeyPair(nkeys.Prefix.MODULE, bytes([7] * 32)).public_key
ISSUER = nkeys.KeyPair(nkeys.Prefix.ACCOUNT, bytes([9] * 32)).public_key


def _args(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"bin"}:
            return bytes.fromhex(value["bin"])
        return {k: _args(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("vector", VECTORS["requests"], ids=lambda v: v["op"])
def test_request_signing_bytes_and_signature_match_the_vectors(vector: dict[str, Any]) -> None:
    pair = nkeys.from_seed(vector["seed"])
    args, nonce = _args(vector["args"]), bytes.fromhex(vector["nonce"])
    assert pair.public_key == vector["key"]
    signed = request_signing_bytes(
        vector["lattice"], vector["op"], args, vector["key"], vector["ts_ms"], nonce
    )
    assert signed.hex() == vector["signing_bytes"]
    auth = sign_request(
        pair, vector["lattice"], vector["op"], args, ts_ms=vector["ts_ms"], nonce=nonce
    )
    assert auth["sig"].hex() == vector["sig"]
    nkeys.verify(vector["key"], signed, bytes.fromhex(vector["sig"]))


@pytest.mark.parametrize("vector", VECTORS["statements"], ids=lambda v: v["kind"])
def test_statements_match_the_vectors_and_decode(vector: dict[str, Any]) -> None:
    statement = sign_statement(
        nkeys.from_seed(vector["seed"]),
        vector["lattice"],
        StatementKind(vector["kind"]),
        vector["subject"],
        vector["value"],
        vector["at_ms"],
    )
    assert statement.body.hex() == vector["body"]
    assert statement.signature.hex() == vector["sig"]
    assert statement.encoded().hex() == vector["encoded"]
    assert statement.digest == vector["digest"]
    assert decode_statement(vector["lattice"], bytes.fromhex(vector["encoded"])) == statement


def test_canonical_sorts_map_keys_by_their_encoding_and_refuses_other_types() -> None:
    assert canonical({"bb": 1, "a": 2, "c": 3}) == bytes.fromhex(
        "83a161 02 a163 03 a26262 01".replace(" ", "")
    )
    assert canonical(1.5) == bytes.fromhex("cb3ff8000000000000")
    with pytest.raises(DecodeError):
        canonical({1: 2})
    with pytest.raises(DecodeError):
        canonical(object())


def test_a_statement_from_another_lattice_or_altered_does_not_decode() -> None:
    statement = sign_statement(ADMIN, LATTICE, StatementKind.REVOKE, ACTOR, "revoked", NOW)
    with pytest.raises(SignatureError):
        decode_statement("other", statement.encoded())
    tampered = statement.encoded().replace(b"revoked", b"nonexxx")
    with pytest.raises((DecodeError, SignatureError)):
        decode_statement(LATTICE, tampered)
    for junk in (b"", b"\x92\xc4\x00\xc4\x00", b"\xff" * 2000, "text"):
        with pytest.raises(DecodeError):
            decode_statement(LATTICE, junk)


def test_statement_subjects_and_values_are_checked() -> None:
    with pytest.raises(IdentityError, match="value is one of"):
        sign_statement(ADMIN, LATTICE, StatementKind.ROLE, DEPLOYER.public_key, "king", NOW)
    with pytest.raises(IdentityError, match=r"operator key \(O… or U…\)"):
        sign_statement(ADMIN, LATTICE, StatementKind.ROLE, ACTOR, "admin", NOW)
    with pytest.raises(IdentityError, match="operator key"):
        sign_statement(
            nkeys.KeyPair(nkeys.Prefix.ACCOUNT, bytes(32)),
            LATTICE,
            StatementKind.REVOKE,
            ACTOR,
            "revoked",
            NOW,
        )


# -- the request check -------------------------------------------------------------------


def _state(*statements: Any) -> Any:
    return evaluate([ADMIN.public_key], statements)


def _auth(
    pair: nkeys.KeyPair, op: str, args: dict[str, Any], ts: int = NOW, nonce: bytes = b"n" * 16
) -> dict[str, Any]:
    return sign_request(pair, LATTICE, op, args, ts_ms=ts, nonce=nonce)


def test_roles_unsigned_other_role_and_deny_by_default() -> None:
    authz = Authorizer(LATTICE)
    grant = sign_statement(ADMIN, LATTICE, StatementKind.ROLE, DEPLOYER.public_key, "deployer", NOW)
    state = _state(grant)
    assert authz.check("hosts", {}, None, state, NOW) is None  # read-only: the secret is enough
    with pytest.raises(
        NotAuthorized,
        match=r"'start' needs role deployer: .*not signed.*"
        r"meshhost operator add KEY --role deployer",
    ):
        authz.check("start", {}, None, state, NOW)
    args = {"actor": ACTOR}
    assert (
        authz.check("stop", args, _auth(DEPLOYER, "stop", args), state, NOW) == DEPLOYER.public_key
    )
    with pytest.raises(NotAuthorized, match=r"needs role admin: operator U.* has role deployer"):
        authz.check(
            "link_put", args, _auth(DEPLOYER, "link_put", args, nonce=b"m" * 16), state, NOW
        )
    assert required_role("some_new_op") == Role.ADMIN  # an op nobody declared needs admin
    assert OP_ROLES["metrics"] is None and OP_ROLES["trace"] is None


def test_a_request_is_bound_to_its_op_args_lattice_time_and_nonce() -> None:
    authz = Authorizer(LATTICE)
    state = _state()
    args = {"key": "k", "value": "v"}
    auth = _auth(ADMIN, "config_put", args)
    with pytest.raises(NotAuthorized, match="signature is not valid"):
        authz.check("config_put", {"key": "k", "value": "other"}, auth, state, NOW)
    with pytest.raises(NotAuthorized, match="signature is not valid"):
        authz.check("config_del", args, auth, state, NOW)
    with pytest.raises(NotAuthorized, match="signature is not valid"):
        Authorizer("other").check("config_put", args, auth, state, NOW)
    with pytest.raises(NotAuthorized, match="away from this host's clock"):
        authz.check("config_put", args, auth, state, NOW + 121_000)
    assert authz.check("config_put", args, auth, state, NOW + 1000) == ADMIN.public_key
    with pytest.raises(NotAuthorized, match=r"already received here \(a replay\)"):
        authz.check("config_put", args, auth, state, NOW + 2000)
    for bad in ("x", {"key": ADMIN.public_key}, {**auth, "sig": b"x" * 63}):
        with pytest.raises(NotAuthorized, match="not valid"):
            authz.check("config_put", args, bad, state, NOW)


def test_nonces_are_forgotten_only_once_their_requests_are_stale() -> None:
    authz = Authorizer(LATTICE, max_skew_ms=1000, max_nonces=2)
    state = _state()
    for i in range(2):
        authz.check(
            "config_del", {}, _auth(ADMIN, "config_del", {}, nonce=bytes([i]) * 16), state, NOW
        )
    with pytest.raises(NotAuthorized, match="too many"):
        authz.check("config_del", {}, _auth(ADMIN, "config_del", {}, nonce=b"z" * 16), state, NOW)
    late = _auth(ADMIN, "config_del", {}, ts=NOW + 1500, nonce=b"z" * 16)
    assert authz.check("config_del", {}, late, state, NOW + 1500) == ADMIN.public_key


def test_an_open_lattice_without_admins_needs_no_signature() -> None:
    state = evaluate([], [])
    assert state.open
    assert Authorizer(LATTICE).check("link_put", {}, None, state, NOW) is None


# -- evaluation -----------------------------------------------------------------------------


def test_rotation_a_new_admin_removes_the_first_and_the_removed_one_counts_no_more() -> None:
    new = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes([5] * 32))
    add = sign_statement(ADMIN, LATTICE, StatementKind.ROLE, new.public_key, "admin", NOW)
    remove = sign_statement(new, LATTICE, StatementKind.ROLE, ADMIN.public_key, "none", NOW + 1)
    late = sign_statement(ADMIN, LATTICE, StatementKind.REVOKE, ACTOR, "revoked", NOW + 2)
    for order in ([add, remove, late], [late, remove, add]):
        state = evaluate([ADMIN.public_key], order)
        assert state.roles == {new.public_key: Role.ADMIN}
        assert state.revoked == frozenset() and state.ignored == 1


def test_latest_statement_about_a_subject_wins_revoke_and_undo() -> None:
    revoke = sign_statement(ADMIN, LATTICE, StatementKind.REVOKE, ACTOR, "revoked", NOW)
    undo = sign_statement(ADMIN, LATTICE, StatementKind.REVOKE, ACTOR, "none", NOW + 5)
    allow = sign_statement(ADMIN, LATTICE, StatementKind.ISSUER, ISSUER, "allow", NOW)
    assert _state(revoke).revoked == {ACTOR}
    assert _state(undo, revoke, allow).revoked == frozenset()
    assert _state(allow).issuers == {ISSUER}
    rogue = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes([6] * 32))
    forged = sign_statement(rogue, LATTICE, StatementKind.ROLE, rogue.public_key, "admin", NOW)
    assert _state(forged).role_of(rogue.public_key) == Role.NONE


def test_bootstrap_admins_come_from_admin_lines_of_the_secret_file() -> None:
    text = f"SLAAA\n# rotating\n# admin {ADMIN.public_key}\n"
    assert bootstrap_admins(text) == [ADMIN.public_key]
    with pytest.raises(IdentityError, match="line 2"):
        bootstrap_admins(f"SL\n# admin {ACTOR}\n")


# -- admission into the directory -------------------------------------------------------------


def test_the_directory_admits_only_statements_signed_by_an_admin_under_their_digest() -> None:
    directory = Directory("NHOST", clock=lambda: NOW / 1000)
    security = LatticeSecurity(LATTICE, [ADMIN.public_key], directory)
    directory.admit = security.admit
    good = sign_statement(ADMIN, LATTICE, StatementKind.REVOKE, ACTOR, "revoked", NOW)
    rogue = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes([6] * 32))
    forged = sign_statement(rogue, LATTICE, StatementKind.REVOKE, ISSUER, "revoked", NOW)
    stamp = Stamp(NOW + 10, 0, "NPEER")
    assert not security.admit(LwwEntry(SECURITY_NS, forged.digest, stamp, forged.encoded()))
    assert not security.admit(LwwEntry(SECURITY_NS, "wrongkey", stamp, good.encoded()))
    assert not security.admit(LwwEntry(SECURITY_NS, good.digest, stamp, None))  # no tombstones
    assert security.admit(LwwEntry(SECURITY_NS, good.digest, stamp, good.encoded()))
    # with an admin, other namespaces need an operator's signature too (test_signed_entries.py)
    assert not security.admit(LwwEntry("link", "x", stamp, b"anything"))
    directory.merge_remote_state(
        "NPEER",
        encode(
            FullState(
                (),
                (
                    LwwEntry(SECURITY_NS, forged.digest, stamp, forged.encoded()),
                    LwwEntry(SECURITY_NS, good.digest, stamp, good.encoded()),
                ),
            )
        ),
    )
    security.changed()
    assert security.state().revoked == {ACTOR}
    assert directory.refused_entries == 1
    assert security.refusal(ACTOR, ISSUER) is not None
    assert (
        security.refusal(nkeys.KeyPair(nkeys.Prefix.MODULE, bytes(32)).public_key, ISSUER) is None
    )


def test_a_grant_and_its_grantees_statement_in_one_merge_are_both_admitted() -> None:
    directory = Directory("NHOST", clock=lambda: NOW / 1000)
    security = LatticeSecurity(LATTICE, [ADMIN.public_key], directory)
    directory.admit = security.admit
    new = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes([5] * 32))
    grant = sign_statement(ADMIN, LATTICE, StatementKind.ROLE, new.public_key, "admin", NOW)
    revoke = sign_statement(new, LATTICE, StatementKind.REVOKE, ACTOR, "revoked", NOW + 1)
    stamp = Stamp(NOW + 10, 0, "NPEER")
    state = encode(
        FullState(
            (),
            tuple(LwwEntry(SECURITY_NS, st.digest, stamp, st.encoded()) for st in (grant, revoke)),
        )
    )
    directory.merge_remote_state("NPEER", state)
    directory.merge_remote_state("NPEER", state)  # again: what we hold is admitted as is
    security.changed()
    assert security.state().revoked == {ACTOR} and directory.refused_entries == 0
