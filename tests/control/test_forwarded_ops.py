"""A control op sent to a host over the lattice (transport channel 3) is checked by that
host: a peer holding only the secret cannot forge, alter, replay or re-route one."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from meshhost.cli.hostclient import sign_entries
from meshhost.control.api import CHANNEL, ControlError, decode_reply, encode_request
from meshhost.control.authz import OP_ROLES
from meshhost.errors import ErrorCode
from meshhost.host import Host
from meshhost.identity import nkeys
from meshhost.identity.operators import sign_request
from meshhost.testing import make_host

ADMIN = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes([1] * 32))


def admin_host(tmp: Path, i: int, seeds: tuple[str, ...] = ()) -> Host:
    """Host ``i`` of a lattice whose bootstrap admin is ``ADMIN``."""
    host = make_host(tmp, i, seeds=seeds)
    host.bootstrap_admins = (ADMIN.public_key,)
    return host


def signed(op: str, args: dict[str, Any], pair: nkeys.KeyPair = ADMIN) -> dict[str, Any]:
    return sign_request(pair, "lab", op, args, ts_ms=int(time.time() * 1000), nonce=os.urandom(16))


async def test_the_applying_host_refuses_unsigned_forged_altered_replayed_and_rerouted_ops(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a = admin_host(tmp_path, 0)
        addr = await nursery.start(a.serve)
        b = admin_host(tmp_path, 1, seeds=(f"{addr[0]}:{addr[1]}",))
        await nursery.start(b.serve)
        with trio.fail_after(20):
            while b.host_id not in a.alive_ids():
                await trio.sleep(0.05)

        async def send(
            op: str, args: dict[str, Any], auth: Any = None, route: str | None = None
        ) -> Any:
            reply = await a.send_to_host(
                b.host_id, CHANNEL, encode_request(op, args, auth=auth, route=route), 10
            )
            return decode_reply(reply).get("result")

        # a secret holder is refused every op that changes the lattice, told which role
        for op, role in sorted(OP_ROLES.items(), key=lambda item: item[0]):
            if role is not None:
                with pytest.raises(ControlError, match=f"needs role {role.label}: "):
                    await send(op, {})
        args = {"key": "greeting", "value": "hello"}
        with pytest.raises(ControlError, match="needs role admin: this request was not"):
            await send("config_put", args)
        rogue = nkeys.generate(nkeys.Prefix.OPERATOR, os.urandom)
        with pytest.raises(ControlError, match="has no role"):
            await send("config_put", args, signed("config_put", args, rogue))
        auth = signed("config_put", args)
        with pytest.raises(ControlError, match="signature is not valid"):
            await send("config_put", {**args, "value": "forged"}, auth)
        # the applying host asks the operator to sign the entry it will write (its stamp)
        with pytest.raises(ControlError, match="must sign") as asked:
            await send("config_put", args, auth)
        assert asked.value.code == ErrorCode.SIGN and asked.value.sign is not None
        assert b.directory.config_get("greeting") is None
        args = {**args, "entry_sigs": sign_entries(ADMIN, "lab", asked.value.sign)}
        auth = signed("config_put", args)
        assert await send("config_put", args, auth) == {"key": "greeting"}
        assert b.directory.config_get("greeting") == "hello"
        entry = b.directory.entry("config", "greeting")
        assert entry is not None and entry.auth is not None and entry.auth[0] == ADMIN.public_key
        with pytest.raises(ControlError, match="replay"):
            await send("config_put", args, auth)
        stop = {"actor": "M" + "A" * 55}
        with pytest.raises(ControlError, match="not " + a.host_id):
            await send("stop", stop, signed("stop", stop), route=a.host_id)
        assert b.authorizer.refused >= 4
        nursery.cancel_scope.cancel()


async def test_a_statement_dated_too_early_to_count_is_refused_not_stored(tmp_path: Path) -> None:
    # Statements apply in the order of their dates (the signer's clock): a new
    # admin whose clock is 5 s behind the admin who granted it would "remove"
    # that admin with a statement dated before its own grant, which never
    # counts; the host must say so rather than store it and answer success.
    from meshhost.identity.operators import Role, StatementKind, sign_statement

    new = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes([2] * 32))
    actor = nkeys.KeyPair(nkeys.Prefix.MODULE, bytes([4] * 32)).public_key
    now = int(time.time() * 1000)
    async with trio.open_nursery() as nursery:
        a = admin_host(tmp_path, 0)
        await nursery.start(a.serve)

        async def put(
            signer: nkeys.KeyPair, kind: StatementKind, subject: str, value: str, at_ms: int
        ) -> Any:
            statement = sign_statement(signer, "lab", kind, subject, value, at_ms)
            args = {"statement": statement.encoded()}
            return await a.control.dispatch(
                "security_put", args, auth=signed("security_put", args, signer)
            )

        await put(ADMIN, StatementKind.ROLE, new.public_key, "admin", now)
        with pytest.raises(ControlError, match=r"was not stored: it is dated .* would not take"):
            await put(new, StatementKind.ROLE, ADMIN.public_key, "none", now - 5000)
        assert a.security.state().role_of(ADMIN.public_key) == Role.ADMIN
        assert len(a.security.statements()) == 1
        await put(ADMIN, StatementKind.REVOKE, actor, "revoked", now + 1)
        with pytest.raises(ControlError, match="would not take effect"):
            await put(new, StatementKind.REVOKE, actor, "none", now - 1)  # an undo, too early
        assert actor in a.security.state().revoked
        await put(new, StatementKind.REVOKE, actor, "none", now + 2)  # dated after: counts
        await put(new, StatementKind.ROLE, ADMIN.public_key, "none", now + 3)
        assert a.security.state().revoked == frozenset()
        assert a.security.state().role_of(ADMIN.public_key) == Role.NONE
        nursery.cancel_scope.cancel()


async def test_a_peer_cannot_get_entries_signed_through_a_forwarded_op(tmp_path: Path) -> None:
    # An op forwarded to a host (scale/start/stop --host, a rotation step)
    # writes no lattice-wide entry there.  A secret holder answering one with
    # "sign these entries" would have the operator's CLI sign, say, a link of
    # its choosing, and get the signature back in the retried request: the
    # forwarding host refuses to pass that on.
    async with trio.open_nursery() as nursery:
        a = admin_host(tmp_path, 0)
        addr = await nursery.start(a.serve)
        b = admin_host(tmp_path, 1, seeds=(f"{addr[0]}:{addr[1]}",))
        await nursery.start(b.serve)
        with trio.fail_after(20):
            while b.host_id not in a.alive_ids():
                await trio.sleep(0.05)
        asked: list[str] = []

        async def greedy(op: str, args: Any, **_: Any) -> Any:
            asked.append(op)
            link = ["link", "MX/wasmcloud:httpclient/default", 1 << 40, b.host_id, b"\x90"]
            raise ControlError(ErrorCode.SIGN, "sign these", sign=[link])

        b.control.dispatch_from_peer = greedy  # type: ignore[method-assign]
        args = {"actor": "M" + "A" * 55, "count": 1, "host": b.host_id}
        with pytest.raises(ControlError, match="asked for lattice-wide entries") as refused:
            await a.control.dispatch("scale", args, auth=signed("scale", args))
        assert asked == ["scale"]
        assert refused.value.code != ErrorCode.SIGN and refused.value.sign is None
        nursery.cancel_scope.cancel()
