"""Actors of every wasmCloud 0.x generation against the built-in providers.

Each generation has a signed WAT fixture (``wat/wascc_actor.wat``,
``wat/wasmcloud_0x_actor.wat``; wasmbus is ``wat/caps_actor.wat``) that makes
host calls exactly as that generation's SDK did: its contract ids, its
operation names, its payloads (msgpack maps in member order, as
``rmp_serde``'s ``with_struct_map`` writes them).  The expected answers are
the bytes that generation's own provider answered.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import threading
import time
from pathlib import Path

import msgpack
import pytest
import trio
import wasmtime

from meshhost.capabilities import (
    Dispatcher,
    HttpClientProvider,
    HttpServerProvider,
    KeyValueProvider,
    LinkDefinition,
    LoggingProvider,
    MessagingProvider,
    legacy,
)
from meshhost.capabilities.local import local_invoker
from meshhost.capabilities.providers.codec import Kind
from meshhost.capabilities.providers.numbergen import NumberGenProvider
from meshhost.errors import ActorError
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.runtime import Runtime
from tests.capabilities.caps_actor import frame

WAT = Path(__file__).parent / "wat"
FIXTURES = {"wascc": "wascc_actor.wat", "wasmcloud": "wasmcloud_0x_actor.wat"}
KV = {"wascc": "wascc:keyvalue", "wasmcloud": "wasmcloud:keyvalue"}


def pack(**fields: object) -> bytes:
    """A struct as rmp_serde ``with_struct_map`` writes it: a map in member order."""
    return msgpack.packb(fields, use_bin_type=True)


class Host:
    def __init__(self, data_dir: Path) -> None:
        self.dispatcher = Dispatcher()
        self.runtime = Runtime(data_dir, self.dispatcher)
        self.kv = KeyValueProvider(data_dir / "kv")
        self.logging = LoggingProvider()
        invoke = local_invoker(self.runtime)
        self.messaging = MessagingProvider(invoke)
        self.http = HttpServerProvider(invoke)
        for provider in (
            self.kv,
            self.logging,
            NumberGenProvider(),
            self.messaging,
            self.http,
            HttpClientProvider(),
        ):
            self.dispatcher.register(provider)
        self.issuer = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)

    def load(self, generation: str, caps: tuple[str, ...]) -> str:
        subject = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
        wasm = wasmtime.wat2wasm((WAT / FIXTURES[generation]).read_text())
        module = sign_module(
            wasm, issuer=self.issuer, subject=subject, name=generation, caps=caps, now=time.time()
        )
        return self.runtime.load(module).actor_id

    async def link(self, actor_id: str, contract_id: str, **values: str) -> LinkDefinition:
        link = LinkDefinition(actor_id, contract_id, "default", "builtin", values)
        await self.dispatcher.put_link(link)
        return link


@pytest.fixture
async def host(tmp_path: Path, nursery: trio.Nursery):
    h = Host(tmp_path)
    await nursery.start(h.dispatcher.serve)
    yield h
    h.runtime.close()
    h.kv.close()


@pytest.mark.parametrize("generation", ["wascc", "wasmcloud"])
async def test_an_old_generation_kvcounter_counts_through_its_own_contract_id(
    host: Host, generation: str
) -> None:
    contract = KV[generation]
    actor = host.load(generation, (contract,))
    request = pack(method="GET", path="/", queryString="", header={}, body=b"")
    with pytest.raises(ActorError, match=f"no link from actor .* to {contract} named 'default'"):
        await host.runtime.invoke(actor, "HandleRequest", request)
    await host.link(actor, contract)
    for count in (1, 2):
        answer = await host.runtime.invoke(actor, "HandleRequest", request)
        assert answer == pack(
            statusCode=200, status="OK", header={}, body=pack(value=count)
        )  # AddResponse {value}


async def test_an_actor_not_signed_for_the_old_contract_id_is_denied(host: Host) -> None:
    actor = host.load("wascc", ("wasmcloud:keyvalue",))
    await host.link(actor, "wascc:keyvalue")
    with pytest.raises(ActorError, match="is not signed for wascc:keyvalue"):
        await host.runtime.invoke(
            actor, "call", frame("default", "wascc:keyvalue", "Get", pack(key="k"))
        )


@pytest.mark.parametrize("generation", ["wascc", "wasmcloud"])
async def test_every_old_keyvalue_operation_answers_that_generations_shapes(
    host: Host, generation: str
) -> None:
    contract = KV[generation]
    actor = host.load(generation, (contract,))
    await host.link(actor, contract)

    async def kv(op: str, payload: bytes) -> bytes:
        return await host.runtime.invoke(actor, "call", frame("default", contract, op, payload))

    # SetOperationResponse: waSCC renames camelCase, actor-interfaces keeps new_count
    new_count = "newCount" if generation == "wascc" else "new_count"

    def set_op(n: int) -> bytes:
        return msgpack.packb({new_count: n})

    assert await kv("Set", pack(key="greeting", value="hello", expires=0)) == pack(value="hello")
    assert await kv("Get", pack(key="greeting")) == pack(value="hello", exists=True)
    assert await kv("Get", pack(key="nothing")) == pack(value="", exists=False)
    assert await kv("KeyExists", pack(key="greeting")) == pack(value="", exists=True)
    assert await kv("Del", pack(key="greeting")) == pack(key="greeting")
    assert await kv("KeyExists", pack(key="greeting")) == pack(value="", exists=False)
    assert await kv("Add", pack(key="n", value=41)) == pack(value=41)
    assert await kv("Add", pack(key="n", value=1)) == pack(value=42)
    assert await kv("Add", pack(key="n", value=-50)) == pack(value=-8)
    # Push is Redis LPUSH: to the front
    for i, item in enumerate(["a", "b", "a", "c"], 1):
        assert await kv("Push", pack(key="l", value=item)) == pack(newCount=i)
    assert await kv("Range", pack(key="l", start=0, stop=-1)) == pack(values=["c", "a", "b", "a"])
    assert await kv("Range", pack(key="l", start=1, stop=2)) == pack(values=["a", "b"])
    # ListItemDelete is LREM 0: every occurrence, answering how many went
    assert await kv("ListItemDelete", pack(key="l", value="a")) == pack(newCount=2)
    assert await kv("Range", pack(key="l", start=0, stop=-1)) == pack(values=["c", "b"])
    assert await kv("Clear", pack(key="l")) == pack(key="l")
    assert await kv("Range", pack(key="l", start=0, stop=-1)) == pack(values=[])
    assert await kv("SetAdd", pack(key="s1", value="x")) == set_op(1)
    assert await kv("SetAdd", pack(key="s1", value="x")) == set_op(0)
    assert await kv("SetAdd", pack(key="s1", value="y")) == set_op(1)
    assert await kv("SetAdd", pack(key="s2", value="y")) == set_op(1)
    assert await kv("SetQuery", pack(key="s1")) == pack(values=["x", "y"])
    assert await kv("SetUnion", pack(keys=["s1", "s2"])) == pack(values=["x", "y"])
    assert await kv("SetIntersection", pack(keys=["s1", "s2"])) == pack(values=["y"])
    assert await kv("SetRemove", pack(key="s1", value="x")) == set_op(1)
    assert await kv("SetRemove", pack(key="s1", value="x")) == set_op(0)
    # the wasmbus operations reach the same store through the old contract id
    assert msgpack.unpackb(await kv("KeyValue.Get", msgpack.packb("n"))) == {
        "value": "-8",
        "exists": True,
    }
    with pytest.raises(ActorError, match=rf"{contract} AddArgs.value: .* out of range"):
        await kv("Add", pack(key="n", value=2**31))


LEGACY_VECTORS = json.loads(
    (Path(__file__).parents[2] / "proto" / "vectors" / "capabilities.json").read_text()
)["legacy"]


@pytest.mark.parametrize("vector", LEGACY_VECTORS, ids=[v["name"] for v in LEGACY_VECTORS])
def test_legacy_shapes_match_golden_bytes(vector: dict) -> None:
    shape = getattr(legacy, vector["shape"])
    if isinstance(shape, dict):
        shape = shape[vector["generation"]]
    expected = bytes.fromhex(vector["msgpack_hex"])
    attrs = {f.attr: vector["fields"].get(f.wire) for f in shape.fields}
    for f in shape.fields:
        if f.kind is Kind.BYTES:
            attrs[f.attr] = bytes.fromhex(attrs[f.attr])
    assert shape.encode(**attrs) == expected
    assert legacy.plain(shape.decode(expected)) == attrs


@pytest.mark.parametrize(
    ("generation", "contract", "payload"),
    [
        ("wascc", "wascc:logging", pack(level=2, body="disk almost full")),  # 2 = WARN
        (
            "wasmcloud",
            "wasmcloud:logging",
            pack(target="kv", level="warn", text="disk almost full"),
        ),
    ],
)
async def test_old_write_log_reaches_the_host_log(
    host: Host, caplog: pytest.LogCaptureFixture, generation: str, contract: str, payload: bytes
) -> None:
    actor = host.load(generation, (contract,))
    ask = frame("default", contract, "WriteLog", payload)
    with pytest.raises(ActorError, match=f"no link from actor .* to {contract}"):
        await host.runtime.invoke(actor, "call", ask)
    await host.link(actor, contract)
    with caplog.at_level("DEBUG", logger="meshhost.actor"):
        assert await host.runtime.invoke(actor, "call", ask) == b""
    (record,) = [r for r in caplog.records if r.name == "meshhost.actor"]
    assert record.levelname == "WARNING" and "disk almost full" in record.getMessage()
    if generation == "wascc":  # level 0 is OFF: accepted, not logged
        caplog.clear()
        off = frame("default", contract, "WriteLog", pack(level=0, body="hidden"))
        assert await host.runtime.invoke(actor, "call", off) == b""
        assert not [r for r in caplog.records if r.name == "meshhost.actor"]


@pytest.mark.parametrize("generation", ["wascc", "wasmcloud"])
async def test_old_extras_need_the_claim_but_no_link(host: Host, generation: str) -> None:
    contract = f"{generation}:extras"
    actor = host.load(generation, (contract,))

    async def extras(op: str, payload: bytes) -> object:
        answer = await host.runtime.invoke(actor, "call", frame("default", contract, op, payload))
        return msgpack.unpackb(answer)

    # the wasmcloud-actor-extras crate: {} / {min, max} in, bare values out
    guid = await extras("RequestGuid", pack())
    assert isinstance(guid, str) and len(guid) == 36 and guid[14] == "4"
    assert await extras("RequestSequence", pack()) == 0
    assert await extras("RequestSequence", pack()) == 1
    assert await extras("RequestRandom", pack(min=7, max=8)) == 7  # max is excluded
    # the hosts' GeneratorRequest in, GeneratorResult out (sequence goes on)
    request = {"guid": False, "sequence": True, "random": False, "min": 0, "max": 0}
    assert await extras("RequestSequence", pack(**request)) == {
        "sequenceNumber": 2,
        "random_number": 0,
    }
    request |= {"sequence": False, "random": True, "min": 5, "max": 6}
    assert await extras("RequestRandom", pack(**request)) == {
        "sequenceNumber": 0,
        "random_number": 5,
    }
    result = await extras("RequestGuid", pack(**(request | {"guid": True})))
    assert len(result["guid"]) == 36 and result["sequenceNumber"] == 0
    with pytest.raises(ActorError, match="min 3 must be less than max 3"):
        await extras("RequestRandom", pack(min=3, max=3))
    other = host.load(generation, ())
    with pytest.raises(ActorError, match=f"is not signed for {contract}"):
        await host.runtime.invoke(other, "call", frame("", contract, "RequestGuid", pack()))


HTTP = {"wascc": "wascc:http_server", "wasmcloud": "wasmcloud:httpserver"}
MESSAGING = {"wascc": "wascc:messaging", "wasmcloud": "wasmcloud:messaging"}


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"x-a": "1"})
    resp = conn.getresponse()
    out = resp.status, dict(resp.getheaders()), resp.read()
    conn.close()
    return out


@pytest.mark.parametrize("generation", ["wascc", "wasmcloud"])
async def test_the_http_server_calls_an_old_actor_with_its_generations_request(
    host: Host, generation: str
) -> None:
    """waSCC by its contract id; a 0.1x actor says it has no HttpServer.HandleRequest."""
    actor = host.load(generation, (KV[generation], HTTP[generation]))
    await host.link(actor, KV[generation])
    link = await host.link(actor, HTTP[generation], ADDRESS="127.0.0.1:0")
    _, port = host.http.bound_address(link)
    for count in (1, 2):
        status, headers, body = await trio.to_thread.run_sync(_get, port, "/hits?x=1")
        assert (status, body) == (200, pack(value=count))
        assert headers["content-length"] == str(len(body))


async def test_the_http_server_request_payload_is_the_old_shape(host: Host) -> None:
    seen: list[tuple[str, bytes]] = []

    async def record(actor_id: str, operation: str, payload: bytes, timeout_s: float) -> bytes:
        seen.append((operation, payload))
        return pack(statusCode=201, status="Created", header={"x-b": "2"}, body=b"ok")

    provider = HttpServerProvider(record)
    link = LinkDefinition("M" + "A" * 55, "wascc:http_server", "default", "", {"PORT": "0"})
    async with trio.open_nursery() as nursery:
        await nursery.start(provider.serve)
        await provider.put_link(link)
        _, port = provider.bound_address(link)
        status, headers, body = await trio.to_thread.run_sync(_get, port, "/a/b?q=1")
        nursery.cancel_scope.cancel()
    assert (status, headers["x-b"], body) == (201, "2", b"ok")
    ((operation, payload),) = seen
    request = msgpack.unpackb(payload)
    assert operation == "HandleRequest"
    assert list(request) == ["method", "path", "queryString", "header", "body"]
    assert request["method"] == "GET" and request["path"] == "/a/b"
    assert request["queryString"] == "q=1" and request["header"]["x-a"] == "1"
    assert request["body"] == b""


@pytest.mark.parametrize("generation", ["wascc", "wasmcloud"])
async def test_old_actors_publish_and_receive_messages(host: Host, generation: str) -> None:
    contract = MESSAGING[generation]
    actor = host.load(generation, (KV[generation], contract))
    await host.link(actor, KV[generation])
    await host.link(actor, contract, SUBSCRIPTION="news.*")
    published = await host.runtime.invoke(
        actor,
        "call",
        frame("default", contract, "Publish", pack(subject="news.today", replyTo="", body=b"hi")),
    )
    # waSCC ignores the answer; wasmCloud 0.1x reads PublishResponse {published}
    assert published == (b"" if generation == "wascc" else pack(published=True))
    count = pack(key="messages")

    async def messages() -> bytes:
        return await host.runtime.invoke(
            actor, "call", frame("default", KV[generation], "Get", count)
        )

    with trio.fail_after(10):  # delivered (DeliverMessage / HandleMessage) -> Add "messages"
        while await messages() != pack(value="1", exists=True) or not host.messaging.delivered:
            await trio.sleep(0.01)
    assert host.messaging.failed == 0
    # a 0.1x subscriber is called the old way first from then on
    assert (actor in host.messaging._old_subscribers) == (generation == "wasmcloud")
    await host.messaging.publish("news.later", b"again")
    with trio.fail_after(10):
        while await messages() != pack(value="2", exists=True):
            await trio.sleep(0.01)


@pytest.mark.parametrize("generation", ["wascc", "wasmcloud"])
async def test_old_actors_request_and_get_the_reply_in_their_shape(
    host: Host, generation: str
) -> None:
    contract = MESSAGING[generation]
    actor = host.load(generation, (KV[generation], contract))
    responder = host.load(generation, ())  # its link makes "ask" have a subscriber
    await host.link(actor, contract)
    await host.link(responder, contract, SUBSCRIPTION="ask")

    async def reply() -> None:
        while not host.messaging._waiters:
            await trio.sleep(0.005)
        (inbox,) = list(host.messaging._waiters)
        await host.messaging.publish(inbox, b"pong")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reply)
        answer = await host.runtime.invoke(
            actor,
            "call",
            frame("default", contract, "Request", pack(subject="ask", body=b"ping", timeout=5000)),
        )
    if generation == "wascc":
        assert answer == b"pong"  # the raw reply body, no wrapper
    else:
        reply_msg = msgpack.unpackb(answer)
        assert list(reply_msg) == ["subject", "replyTo", "body"]
        assert reply_msg["body"] == b"pong" and reply_msg["subject"].startswith("_INBOX.")


async def test_a_wasmcloud_0x_actor_makes_an_http_request_in_its_shapes(host: Host) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            out = body.upper() + self.headers["x-a"].encode()
            self.send_response(202)
            self.send_header("X-B", "2")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        actor = host.load("wasmcloud", ("wasmcloud:httpclient",))
        await host.link(actor, "wasmcloud:httpclient", ALLOWED_HOSTS="127.0.0.1")
        url = f"http://127.0.0.1:{server.server_port}/x"
        answer = await host.runtime.invoke(
            actor,
            "call",
            frame(
                "default",
                "wasmcloud:httpclient",
                "Request",
                pack(method="POST", url=url, headers={"x-a": "1"}, body=b"hi"),
            ),
        )
        response = msgpack.unpackb(answer)
        assert list(response) == ["statusCode", "status", "header", "body"]
        assert (response["statusCode"], response["status"], response["body"]) == (
            202,
            "Accepted",
            b"HI1",
        )
        assert response["header"]["x-b"] == "2"
        again = await host.runtime.invoke(
            actor,
            "call",
            frame(  # the provider's op name
                "default",
                "wasmcloud:httpclient",
                "PerformRequest",
                pack(method="POST", url=url, headers={"x-a": "2"}, body=b"yo"),
            ),
        )
        assert msgpack.unpackb(again)["body"] == b"YO2"
        with pytest.raises(ActorError, match="not in ALLOWED_HOSTS"):
            await host.runtime.invoke(
                actor,
                "call",
                frame(
                    "default",
                    "wasmcloud:httpclient",
                    "Request",
                    pack(method="GET", url="http://10.1.2.3/", headers={}, body=b""),
                ),
            )
    finally:
        server.shutdown()
        server.server_close()


async def test_a_wascc_actor_makes_an_http_request_with_the_url_in_path(host: Host) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            out = self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        actor = host.load("wascc", ("wascc:http_client",))
        ask = frame(
            "default",
            "wascc:http_client",
            "PerformRequest",
            pack(
                method="GET",
                path=f"http://127.0.0.1:{server.server_port}/p",
                queryString="a=1",
                header={},
                body=b"",
            ),
        )
        with pytest.raises(ActorError, match=r"no link from actor .* to wascc:http_client"):
            await host.runtime.invoke(actor, "call", ask)
        await host.link(actor, "wascc:http_client", ALLOWED_HOSTS="127.0.0.1")
        response = msgpack.unpackb(await host.runtime.invoke(actor, "call", ask))
        assert (response["statusCode"], response["status"], response["body"]) == (
            200,
            "OK",
            b"/p?a=1",
        )
    finally:
        server.shutdown()
        server.server_close()
