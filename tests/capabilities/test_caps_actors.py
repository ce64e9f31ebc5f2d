"""Every provider end to end through a real signed waPC actor on the wasmtime runtime."""

from __future__ import annotations

import http.client
import http.server
import logging
import os
import threading
import time
from pathlib import Path

import msgpack
import pytest
import trio
import wasmtime

from meshhost.capabilities import (
    HTTPCLIENT,
    HTTPSERVER,
    KEYVALUE,
    LOGGING,
    MESSAGING,
    Dispatcher,
    HttpClientProvider,
    HttpServerProvider,
    KeyValueProvider,
    LinkDefinition,
    LoggingProvider,
    MessagingProvider,
)
from meshhost.capabilities.contracts import HttpClientRequest, HttpResponse, PubMessage
from meshhost.capabilities.local import local_actor_resolver, local_invoker
from meshhost.errors import ActorError
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.runtime import Runtime
from tests.capabilities.caps_actor import frame

WAT = (Path(__file__).parent / "wat" / "caps_actor.wat").read_text()
ALL_CAPS = (KEYVALUE, LOGGING, MESSAGING, HTTPSERVER, HTTPCLIENT)


class Host:
    """One host's capability layer and runtime, as host.py will compose them."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.dispatcher = Dispatcher()
        self.runtime = Runtime(data_dir, self.dispatcher)
        self.dispatcher.resolve_actor = local_actor_resolver(self.runtime)
        invoke = local_invoker(self.runtime)
        self.kv = KeyValueProvider(data_dir / "kv")
        self.messaging = MessagingProvider(invoke)
        self.http = HttpServerProvider(invoke)
        for provider in (
            self.kv,
            LoggingProvider(),
            self.messaging,
            self.http,
            HttpClientProvider(),
        ):
            self.dispatcher.register(provider)
        self.issuer = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.dispatcher.serve)

    def load(self, name: str, caps=ALL_CAPS, call_alias: str | None = None) -> str:
        subject = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
        module = sign_module(
            wasmtime.wat2wasm(WAT),
            issuer=self.issuer,
            subject=subject,
            name=name,
            caps=caps,
            call_alias=call_alias,
            now=time.time(),
        )
        return self.runtime.load(module).actor_id

    async def link(self, actor_id: str, contract_id: str, name: str = "default", **values: str):
        await self.dispatcher.put_link(
            LinkDefinition(actor_id, contract_id, name, "builtin", values)
        )

    async def call(self, actor_id: str, binding: str, namespace: str, op: str, payload: bytes):
        return await self.runtime.invoke(actor_id, "call", frame(binding, namespace, op, payload))

    def close(self) -> None:
        self.runtime.close()
        self.kv.close()


@pytest.fixture
async def host(tmp_path, nursery):
    h = Host(tmp_path / "host")
    await h.start(nursery)
    yield h
    h.close()


async def test_keyvalue_through_an_actor_survives_a_host_restart(tmp_path):
    data = tmp_path / "host"
    for round_ in range(2):
        async with trio.open_nursery() as nursery:
            h = Host(data)
            await h.start(nursery)
            # same key pair is not needed: the link config names the namespace
            actor = h.load("counter")
            await h.link(actor, KEYVALUE, NAMESPACE="counter-data")
            if round_ == 0:
                set_req = msgpack.packb({"key": "greeting", "value": "hello", "expires": 0})
                assert await h.call(actor, "default", KEYVALUE, "KeyValue.Set", set_req) == b""
            got = await h.call(actor, "", KEYVALUE, "KeyValue.Get", msgpack.packb("greeting"))
            assert msgpack.unpackb(got) == {"value": "hello", "exists": True}
            h.close()
            nursery.cancel_scope.cancel()


async def test_denials_reach_the_guest_as_its_host_error(host):
    unsigned = host.load("nocaps", caps=())
    with pytest.raises(ActorError, match=r"\(nocaps\): .*is not signed for wasmcloud:keyvalue"):
        await host.call(unsigned, "", KEYVALUE, "KeyValue.Get", msgpack.packb("k"))
    unlinked = host.load("unlinked")
    with pytest.raises(ActorError) as info:
        await host.call(unlinked, "", KEYVALUE, "KeyValue.Get", msgpack.packb("k"))
    assert (
        f"no link from actor {unlinked} (unlinked) to wasmcloud:keyvalue named 'default'; "
        "create one with meshhost link put"
    ) in str(info.value)


async def test_http_request_served_by_hypercorn_is_answered_by_the_actor(host):
    web = host.load("web")
    await host.link(web, KEYVALUE)
    link = LinkDefinition(web, HTTPSERVER, "default", "builtin", {"ADDRESS": "127.0.0.1:0"})
    await host.dispatcher.put_link(link)
    _, port = host.http.bound_address(link)

    def get() -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/count?x=1")
        resp = conn.getresponse()
        out = resp.status, resp.read()
        conn.close()
        return out

    assert await trio.to_thread.run_sync(get) == (200, msgpack.packb(1))
    assert await trio.to_thread.run_sync(get) == (200, msgpack.packb(2))


async def test_http_request_to_an_actor_without_its_link_is_500_with_the_reason(host):
    web = host.load("web")  # no keyvalue link: its HandleRequest host call is denied
    link = LinkDefinition(web, HTTPSERVER, "default", "builtin", {"ADDRESS": "127.0.0.1:0"})
    await host.dispatcher.put_link(link)
    _, port = host.http.bound_address(link)

    def get() -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        return resp.status, resp.read()

    status, body = await trio.to_thread.run_sync(get)
    assert status == 500
    assert b"no link from actor" in body and b"wasmcloud:keyvalue" in body


async def test_published_messages_are_delivered_to_the_subscribed_actor(host):
    publisher = host.load("publisher")
    subscriber = host.load("subscriber")
    await host.link(publisher, MESSAGING)
    await host.link(subscriber, MESSAGING, SUBSCRIPTION="events.>")
    await host.link(subscriber, KEYVALUE)
    for subject in ("events.a", "events.b.c", "other.x"):
        msg = PubMessage(subject, None, b"payload").encode()
        assert await host.call(publisher, "", MESSAGING, "Messaging.Publish", msg) == b""
    with trio.fail_after(10):
        while host.messaging.delivered < 2:
            await trio.sleep(0.005)
    got = await host.call(subscriber, "", KEYVALUE, "KeyValue.Get", msgpack.packb("messages"))
    assert msgpack.unpackb(got) == {"value": "2", "exists": True}
    assert host.messaging.failed == 0


async def test_logging_through_an_actor(host, caplog):
    actor = host.load("talker")
    entry = msgpack.packb({"level": "error", "text": "disk on fire"})
    with caplog.at_level(logging.INFO, logger="meshhost.actor"):
        assert await host.call(actor, "", LOGGING, "Logging.WriteLog", entry) == b""
    assert any(
        r.levelno == logging.ERROR and r.getMessage().endswith("disk on fire")
        for r in caplog.records
    )


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args) -> None:
        pass


async def test_httpclient_through_an_actor_allowed_and_denied(host):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    port = httpd.server_address[1]
    try:
        allowed, denied = host.load("allowed"), host.load("denied")
        await host.link(allowed, HTTPCLIENT, ALLOWED_HOSTS=f"127.0.0.1:{port}")
        await host.link(denied, HTTPCLIENT)
        req = HttpClientRequest("GET", f"http://127.0.0.1:{port}/", {}, b"").encode()
        resp = HttpResponse.decode(
            await host.call(allowed, "", HTTPCLIENT, "HttpClient.Request", req)
        )
        assert (resp.status_code, resp.body) == (200, b"hello")
        with pytest.raises(ActorError, match=r"may not reach 127\.0\.0\.1:\d+: .*allowed: none"):
            await host.call(denied, "", HTTPCLIENT, "HttpClient.Request", req)
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_actor_to_actor_call_needs_a_link_to_the_alias(host):
    pinger = host.load("pinger", caps=())
    ponger = host.load("ponger", caps=(), call_alias="test/ponger")
    with pytest.raises(
        ActorError, match=r"no link from actor .* to actor test/ponger named 'default'"
    ):
        await host.call(pinger, "", "test/ponger", "echo", b"ping")
    await host.link(pinger, "test/ponger")
    assert await host.call(pinger, "", "test/ponger", "echo", b"ping") == b"ping"
    await host.link(pinger, ponger)  # by key as well
    assert await host.call(pinger, "", ponger, "echo", b"pong") == b"pong"
    with pytest.raises(ActorError, match="no actor with call alias 'test/nobody'"):
        await host.call(pinger, "", "test/nobody", "echo", b"")


async def test_component_actor_uses_keyvalue_through_the_same_policy(host):
    wasm = wasmtime.wat2wasm((Path(__file__).parent / "wat" / "caps_component.wat").read_text())
    subject = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    module = sign_module(
        wasm, issuer=host.issuer, subject=subject, name="comp", caps=(KEYVALUE,), now=time.time()
    )
    comp = host.runtime.load(module).actor_id
    with pytest.raises(ActorError, match=r"no link from actor .* \(comp\) to wasmcloud:keyvalue"):
        await host.runtime.invoke(comp, "KeyValue.Get", msgpack.packb("k"))
    await host.link(comp, KEYVALUE)
    set_req = msgpack.packb({"key": "k", "value": "from a component", "expires": 0})
    assert await host.runtime.invoke(comp, "KeyValue.Set", set_req) == b""
    got = await host.runtime.invoke(comp, "KeyValue.Get", msgpack.packb("k"))
    assert msgpack.unpackb(got) == {"value": "from a component", "exists": True}
