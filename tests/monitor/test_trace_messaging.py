"""A message an actor publishes carries its trace to the subscriber on another host."""

from __future__ import annotations

from pathlib import Path

import trio

from meshhost.capabilities import KEYVALUE, MESSAGING
from meshhost.capabilities.contracts import PubMessage
from meshhost.monitor.spans import span_from_dict
from meshhost.monitor.tracing import build_tree
from meshhost.testing import client, start_lattice, wait_until
from tests.capabilities.caps_actor import caps_actor, frame


async def test_a_published_message_continues_the_publishers_trace(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a, b = await start_lattice(nursery, tmp_path, 2)
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
                and len(a.host.actors.dispatcher.links) == 3
                and bool(a.host.directory.hosts_running(sub_id))
            ),
            "links and actors",
        )
        msg = PubMessage("events.x", None, b"payload").encode()
        answer = await client(a.host).request(
            "call",
            actor=pub_id,
            operation="call",
            payload=frame("", MESSAGING, "Messaging.Publish", msg),
            timeout_ms=5000,
        )
        trace_id = answer["trace_id"]

        async def spans() -> list:
            result = await client(a.host).request("trace", trace_id=trace_id)
            return [span_from_dict(s) for s in result["traces"][0]["spans"]]

        with trio.fail_after(10):  # the delivery runs after the publish call answered
            while not any(s.kind == "server" and s.host == b.host.host_id for s in await spans()):
                await trio.sleep(0.1)
        (root,) = build_tree(await spans())
        chain = []
        node = root
        while True:
            chain.append((node.span.kind, node.span.host, node.span.name))
            if not node.children:
                break
            node = node.children[-1]
        ha, hb = a.host.host_id, b.host.host_id
        assert chain == [
            ("client", ha, "call call"),
            ("server", ha, "publisher call"),
            ("internal", ha, "wasmcloud:messaging Messaging.Publish"),
            ("client", ha, "call MessageSubscriber.HandleMessage"),
            ("server", hb, "subscriber MessageSubscriber.HandleMessage"),
            ("internal", hb, "wasmcloud:keyvalue KeyValue.Increment"),
        ], chain
        nursery.cancel_scope.cancel()
