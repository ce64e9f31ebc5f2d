"""Calls that cross hosts: actor to actor, provider to actor, large payloads, restarts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgpack
import pytest
import trio

from meshhost.capabilities.contracts import PubMessage, ReplyMessage, RequestMessage, SubMessage
from meshhost.control.api import ControlError, decode_reply, encode_request
from meshhost.errors import ErrorCode, RemoteError
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.rpc import peer
from meshhost.runtime import wat_to_wasm
from meshhost.testing import (
    ISSUER,
    Member,
    client,
    make_host,
    signed_example,
    start_lattice,
    wait_until,
)
from meshhost.transport import channels
from tests.capabilities.caps_actor import caps_actor, frame
from tests.lattice.inprocess.lattice_helpers import count_of, http_request

ECHO_WAT = Path(__file__).resolve().parents[3] / "meshhost" / "examples" / "echo.wat"
KEYVALUE, MESSAGING = "wasmcloud:keyvalue", "wasmcloud:messaging"


async def two_hosts(nursery: trio.Nursery, tmp_path: Path, **settings: object) -> list[Member]:
    return await start_lattice(nursery, tmp_path, 2, **settings)


async def test_remote_actor_call_needs_a_link_then_works(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a, b = await two_hosts(nursery, tmp_path)
        caller, caller_id = caps_actor("caller", ())
        echo, echo_id = signed_example("echo")
        await client(a.host).request("start", module=caller)
        await client(b.host).request("start", module=echo)
        await wait_until(lambda: bool(a.host.directory.hosts_running(echo_id)), "a sees echo")
        request = frame("default", echo_id, "Echo", b"across the lattice")
        try:
            await client(a.host).request(
                "call", actor=caller_id, operation="call", payload=request, timeout_ms=5000
            )
            raise AssertionError("an unlinked actor-to-actor call must be denied")
        except ControlError as exc:
            assert "link" in str(exc)
        await client(b.host).request("link_put", actor=caller_id, contract=echo_id)
        await wait_until(
            lambda: a.host.actors.dispatcher.links.get(caller_id, echo_id, "default") is not None,
            "the link reached a",
        )
        answer = await client(a.host).request(
            "call", actor=caller_id, operation="call", payload=request, timeout_ms=5000
        )
        assert (answer["payload"], answer["host"]) == (b"across the lattice", a.host.host_id)
        # a large payload crosses hosts too (streamed by the transport)
        big = os.urandom(3 * 1024 * 1024)
        answer = await client(a.host).request(
            "call", actor=echo_id, operation="Echo", payload=big, timeout_ms=10000
        )
        assert answer["payload"] == big and answer["host"] == b.host.host_id
        nursery.cancel_scope.cancel()


async def test_a_message_published_on_one_host_reaches_a_subscriber_on_another(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a, b = await two_hosts(nursery, tmp_path)
        publisher, pub_id = caps_actor("publisher", (MESSAGING,))
        subscriber, sub_id = caps_actor("subscriber", (MESSAGING, KEYVALUE))
        await client(a.host).request("start", module=publisher)
        await client(b.host).request("start", module=subscriber)
        await client(a.host).request("link_put", actor=pub_id, contract=MESSAGING)
        await client(a.host).request(
            "link_put", actor=sub_id, contract=MESSAGING, values={"SUBSCRIPTION": "events.>"}
        )
        await client(a.host).request("link_put", actor=sub_id, contract=KEYVALUE)
        await wait_until(
            lambda: (
                len(b.host.actors.dispatcher.links) == 3
                and bool(a.host.directory.hosts_running(sub_id))
            ),
            "links and actors",
        )
        for subject in ("events.a", "events.b.c", "other.x"):
            msg = PubMessage(subject, None, b"payload").encode()
            answer = await client(a.host).request(
                "call",
                actor=pub_id,
                operation="call",
                payload=frame("", MESSAGING, "Messaging.Publish", msg),
                timeout_ms=5000,
            )
            assert answer["host"] == a.host.host_id
        get = frame("", KEYVALUE, "KeyValue.Get", msgpack.packb("messages"))

        async def messages_seen() -> dict:
            answer = await client(a.host).request(
                "call", actor=sub_id, operation="call", payload=get, timeout_ms=5000
            )
            assert answer["host"] == b.host.host_id  # the subscriber only runs on b
            return msgpack.unpackb(answer["payload"])

        with trio.fail_after(10):
            while (seen := await messages_seen()) != {"value": "2", "exists": True}:
                assert seen.get("value") in (None, "", "1"), seen
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()


async def test_a_restarted_host_keeps_links_and_key_value_data(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a, b = await two_hosts(nursery, tmp_path)
        kv, kv_id = signed_example("kvcounter")
        await client(b.host).request("start", module=kv)
        await client(a.host).request("link_put", actor=kv_id, contract=KEYVALUE)
        await wait_until(
            lambda: b.host.actors.dispatcher.links.get(kv_id, KEYVALUE, "default") is not None,
            "the link reached b",
        )
        await wait_until(lambda: bool(a.host.directory.hosts_running(kv_id)), "a sees kv on b")
        for expected in (1, 2):
            answer = await client(a.host).request(
                "call",
                actor=kv_id,
                operation="HttpServer.HandleRequest",
                payload=http_request(),
                timeout_ms=5000,
            )
            assert count_of(answer["payload"]) == expected
        b_id = b.host.host_id
        b.scope.cancel()  # no graceful leave: like a crash, as far as a can tell
        await wait_until(lambda: not a.host.directory.hosts_running(kv_id), "b's actor gone")
        addr = a.host.addr
        again = Member(make_host(tmp_path, 1, seeds=(f"{addr[0]}:{addr[1]}",)))
        await nursery.start(again.run)
        assert again.host.host_id == b_id
        # links persisted in b's own directory store, before any gossip
        assert [ln.key for ln in again.host.directory.links()] == [(kv_id, KEYVALUE, "default")]
        await client(again.host).request("start", module=kv)
        await wait_until(lambda: bool(a.host.directory.hosts_running(kv_id)), "a sees b again")
        answer = await client(a.host).request(
            "call",
            actor=kv_id,
            operation="HttpServer.HandleRequest",
            payload=http_request(),
            timeout_ms=5000,
        )
        assert count_of(answer["payload"]) == 3  # b's key-value data survived
        nursery.cancel_scope.cancel()


async def test_a_reply_published_on_another_host_reaches_the_requester(tmp_path: Path) -> None:
    """Messaging.Request on a; the request's reply is published on b, to a's inbox.

    The responder is stood in for by a hook on a's delivery path that publishes
    the reply on host b, so the reply crosses the lattice the real way: b's
    provider sees an inbox that is not its own and forwards it to a over
    the peer channel (5).
    """
    async with trio.open_nursery() as nursery:
        a, b = await two_hosts(nursery, tmp_path)
        requester, req_id = caps_actor("requester", (MESSAGING,))
        await client(a.host).request("start", module=requester)
        await client(a.host).request("link_put", actor=req_id, contract=MESSAGING)
        await client(a.host).request(
            "link_put",
            actor=req_id,
            contract=MESSAGING,
            link_name="responder",
            values={"SUBSCRIPTION": "svc.time"},
        )
        await wait_until(lambda: len(a.host.actors.dispatcher.links) == 2, "links on a")
        seen: list[str] = []

        async def respond_on_b(
            actor_id: str, operation: str, payload: bytes, timeout_s: float
        ) -> bytes:
            request = SubMessage.decode(payload)
            seen.append(request.reply_to or "")
            await b.host.actors.messaging.publish(request.reply_to or "", b"noon")
            return b""

        a.host.actors.messaging._invoke = respond_on_b
        ask = RequestMessage("svc.time", b"what time is it?", 5000).encode()
        answer = await client(a.host).request(
            "call",
            actor=req_id,
            operation="call",
            payload=frame("", MESSAGING, "Messaging.Request", ask),
            timeout_ms=8000,
        )
        reply = ReplyMessage.decode(answer["payload"])
        assert reply.body == b"noon"
        assert seen and seen[0].startswith(f"_INBOX.{a.host.host_id}.")
        nursery.cancel_scope.cancel()


async def test_open_actor_calls_need_no_link_as_in_wasmcloud(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a, b = await two_hosts(nursery, tmp_path, actor_calls="open")
        caller, caller_id = caps_actor("caller", ())
        echo, echo_id = signed_example("echo")
        await client(a.host).request("start", module=caller)
        await client(b.host).request("start", module=echo)
        await wait_until(lambda: bool(a.host.directory.hosts_running(echo_id)), "a sees echo")
        answer = await client(a.host).request(
            "call",
            actor=caller_id,
            operation="call",
            payload=frame("default", echo_id, "Echo", b"no link needed"),
            timeout_ms=5000,
        )
        assert answer["payload"] == b"no link needed"
        nursery.cancel_scope.cancel()


async def test_an_actor_calls_another_by_call_alias_through_a_link_across_hosts(
    tmp_path: Path,
) -> None:
    """The denial message says: link to the call alias. That link works, lattice-wide."""
    async with trio.open_nursery() as nursery:
        a, b = await two_hosts(nursery, tmp_path)
        caller, caller_id = caps_actor("caller", ())
        module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
        echo = sign_module(
            wat_to_wasm(ECHO_WAT.read_text()),
            issuer=ISSUER,
            subject=module,
            name="echo",
            call_alias="wasmcloud/echo",
            now=time.time(),
        )
        await client(a.host).request("start", module=caller)
        await client(b.host).request("start", module=echo)
        await wait_until(
            lambda: a.host.directory.actor_by_alias("wasmcloud/echo") is not None,
            "a sees the alias",
        )
        request = frame("default", "wasmcloud/echo", "Echo", b"by alias")
        try:
            await client(a.host).request(
                "call", actor=caller_id, operation="call", payload=request, timeout_ms=5000
            )
            raise AssertionError("an unlinked actor-to-actor call must be denied")
        except ControlError as exc:
            assert "contract id 'wasmcloud/echo'" in str(exc)
        await client(b.host).request("link_put", actor=caller_id, contract="wasmcloud/echo")
        await wait_until(
            lambda: (
                a.host.actors.dispatcher.links.get(caller_id, "wasmcloud/echo", "default")
                is not None
            ),
            "the link reached a",
        )
        answer = await client(a.host).request(
            "call", actor=caller_id, operation="call", payload=request, timeout_ms=5000
        )
        assert answer["payload"] == b"by alias"
        rows = await client(a.host).request("link_list")
        assert [r["contract"] for r in rows if r["actor"] == caller_id] == ["wasmcloud/echo"]
        await client(a.host).request("link_del", actor=caller_id, contract="wasmcloud/echo")
        await wait_until(
            lambda: (
                b.host.actors.dispatcher.links.get(caller_id, "wasmcloud/echo", "default") is None
            ),
            "the delete reached b",
        )
        nursery.cancel_scope.cancel()


async def test_peer_ops_answer_peers_only_on_their_own_channel(tmp_path: Path) -> None:
    """module_get and messaging_reply: a peer gets them on channel 5; neither the
    local control socket nor a peer's control channel (3) answers them."""
    async with trio.open_nursery() as nursery:
        a, b = await two_hosts(nursery, tmp_path)
        module, _ = signed_example("echo")
        digest = await trio.to_thread.run_sync(a.host.actors.modules.put, module)
        got = await peer.request(
            b.host.send_to_host, a.host.host_id, "module_get", {"sha256": digest}, 5.0
        )
        assert got == module
        with pytest.raises(RemoteError) as missing:
            await peer.request(
                b.host.send_to_host, a.host.host_id, "module_get", {"sha256": "00" * 32}, 5.0
            )
        assert missing.value.code == ErrorCode.NOT_FOUND
        with pytest.raises(RemoteError) as control_op:  # no control op on the peer channel
            await peer.request(b.host.send_to_host, a.host.host_id, "hosts", {}, 5.0)
        assert control_op.value.code == ErrorCode.UNSUPPORTED
        for op, args in [
            ("module_get", {"sha256": digest}),
            ("messaging_reply", {"subject": f"_INBOX.{a.host.host_id}.x", "body": b"hi"}),
        ]:
            with pytest.raises(ControlError) as local:
                await client(a.host).request(op, **args)
            assert local.value.code == ErrorCode.UNSUPPORTED, op
            reply = await b.host.send_to_host(
                a.host.host_id, channels.CONTROL, encode_request(op, args), 5.0
            )
            with pytest.raises(ControlError) as remote:
                decode_reply(reply)
            assert remote.value.code == ErrorCode.UNSUPPORTED, op
        nursery.cancel_scope.cancel()


async def test_a_peers_messaging_reply_reaches_only_this_hosts_own_inboxes(tmp_path: Path) -> None:
    """messaging_reply carries a reply to one of the target's inboxes: a peer that
    names any other subject (a plain subject, a third host's inbox) is refused
    with ``invalid``, so it can neither publish to the target's subscribers nor
    relay through it under the target's name."""
    async with trio.open_nursery() as nursery:
        a, b = await two_hosts(nursery, tmp_path)
        target, sender = a.host, b.host

        async def reply_to(subject: str) -> int:
            args = {"subject": subject, "body": b"hi"}
            result: int = await peer.request(
                sender.send_to_host, target.host_id, "messaging_reply", args, 5.0
            )
            return result

        assert await reply_to(f"_INBOX.{target.host_id}.never-issued") == 0  # late: dropped
        for subject in ("orders.new", f"_INBOX.{sender.host_id}.x", "_INBOX.", "_INBOX.N.x"):
            with pytest.raises(RemoteError) as refused:
                await reply_to(subject)
            assert refused.value.code == ErrorCode.INVALID, subject
            assert "not one of this host's inboxes" in str(refused.value)
        nursery.cancel_scope.cancel()


async def test_an_actor_calling_itself_on_one_host_stops_at_the_hop_limit(tmp_path: Path) -> None:
    """A call chain on one host counts hops as a chain across hosts does: an actor
    that calls itself fails at hop 9 with the hop limit's reason, at once, instead
    of nesting until it runs out of instances and the caller's deadline."""
    pinger = (ECHO_WAT.parent / "pinger.wat").read_text()
    self_caller = pinger.replace('"Record")', '"Ping")').replace(
        "(i32.const 80) (i32.const 6)", "(i32.const 80) (i32.const 4)"
    )  # calls "Ping" on the alias examples/recorder: its own, below
    module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    wasm = sign_module(
        wat_to_wasm(self_caller),
        issuer=ISSUER,
        subject=module,
        name="selfcaller",
        call_alias="examples/recorder",
        now=time.time(),
    )
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        await nursery.start(a.serve)
        actor = module.public_key
        await client(a).request("start", module=wasm, count=12)  # more than 8 hops need
        await client(a).request("link_put", actor=actor, contract="examples/recorder")
        with pytest.raises(ControlError) as failed:
            await client(a).request(
                "call", actor=actor, operation="Ping", payload=b"x", timeout_ms=5000
            )
        assert failed.value.code == ErrorCode.ACTOR_FAILED, failed.value
        assert "exceeds 8 hops" in str(failed.value)
        nursery.cancel_scope.cancel()
