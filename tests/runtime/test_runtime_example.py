"""The README demo actor (examples/kvcounter) answers HttpServer.HandleRequest."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import ActorError

BUILD = Path(__file__).resolve().parents[2] / "examples" / "kvcounter" / "build.py"


@pytest.fixture
def kvcounter(tmp_path) -> tuple[bytes, str]:
    spec = importlib.util.spec_from_file_location("kvcounter_build", BUILD)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path, actor_id = module.build(tmp_path / "build")
    return path.read_bytes(), actor_id


class KeyValue:
    """Just enough of wasmcloud:keyvalue for the demo: Increment."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.seen: list[tuple[str, str, str]] = []

    def host_call(self, actor, binding, namespace, operation, payload):
        self.seen.append((binding, namespace, operation))
        assert (namespace, operation) == ("wasmcloud:keyvalue", "KeyValue.Increment")
        req = msgpack.unpackb(payload)
        self.values[req["key"]] = self.values.get(req["key"], 0) + req["value"]
        return msgpack.packb(self.values[req["key"]])

    def log(self, actor, level, message):
        pass


def _request(host: str, extra_headers: dict | None = None) -> bytes:
    header = {"accept": ["*/*"], "host": [host], **(extra_headers or {})}
    return msgpack.packb(
        {"method": "GET", "path": "/", "queryString": "", "header": header, "body": b""}
    )


def test_kvcounter_counts_and_names_the_host(tmp_path, kvcounter):
    from meshhost.runtime import Runtime

    wasm, actor_id = kvcounter
    kv = KeyValue()
    with Runtime(tmp_path, kv) as rt:
        actor = rt.load(wasm)
        assert actor.actor_id == actor_id
        assert set(actor.ref.caps) == {"wasmcloud:keyvalue", "wasmcloud:httpserver"}
        for expected in (1, 2, 3):
            raw = rt.call_sync(
                actor_id,
                "HttpServer.HandleRequest",
                _request("node-a:8080", {"x-long": ["y" * 300]}),
            )
            response = msgpack.unpackb(raw)
            assert response["statusCode"] == 200
            assert response["header"] == {"content-type": ["application/json"]}
            assert json.loads(response["body"]) == {"count": expected, "host": "node-a:8080"}
        kv.values["counter"] = 100_000
        body = json.loads(
            msgpack.unpackb(
                rt.call_sync(actor_id, "HttpServer.HandleRequest", _request('evil"\\host'))
            )["body"]
        )
        assert body == {"count": 100_001, "host": "evil??host"}
    assert kv.seen[0] == ("default", "wasmcloud:keyvalue", "KeyValue.Increment")


def test_kvcounter_prefers_the_meshhost_host_header(tmp_path, kvcounter):
    from meshhost.runtime import Runtime

    wasm, actor_id = kvcounter
    with Runtime(tmp_path, KeyValue()) as rt:
        rt.load(wasm)
        headers = {"x-meshhost-host": ["NABC123", "ignored"], "x-empty": []}
        raw = rt.call_sync(actor_id, "HttpServer.HandleRequest", _request("node-a", headers))
        assert json.loads(msgpack.unpackb(raw)["body"])["host"] == "NABC123"
        # header order must not matter
        request = {
            "method": "GET",
            "path": "/",
            "queryString": "",
            "body": b"",
            "header": {"x-meshhost-host": ["NFIRST"], "host": ["later"]},
        }
        raw = rt.call_sync(actor_id, "HttpServer.HandleRequest", msgpack.packb(request))
        assert json.loads(msgpack.unpackb(raw)["body"])["host"] == "NFIRST"
        # no host header at all
        request["header"] = {}
        raw = rt.call_sync(actor_id, "HttpServer.HandleRequest", msgpack.packb(request))
        assert json.loads(msgpack.unpackb(raw)["body"]) == {"count": 3, "host": ""}


def test_kvcounter_reports_key_value_failure(tmp_path, kvcounter, denied):
    from meshhost.runtime import Runtime

    wasm, actor_id = kvcounter

    class NoKeyValue(KeyValue):
        def host_call(self, *args):
            raise denied("actor is not linked to wasmcloud:keyvalue")

    with Runtime(tmp_path, NoKeyValue()) as rt:
        rt.load(wasm)
        with pytest.raises(ActorError, match="not linked to wasmcloud:keyvalue"):
            rt.call_sync(actor_id, "HttpServer.HandleRequest", _request("h"))
        with pytest.raises(ActorError, match="unknown operation"):
            rt.call_sync(actor_id, "Other.Op", b"")


async def test_kvcounter_with_the_real_policy_and_keyvalue_provider(tmp_path, kvcounter):
    """Runtime + capabilities Dispatcher + SQLite key-value provider, through invoke."""
    from meshhost.capabilities.dispatch import Dispatcher
    from meshhost.capabilities.links import LinkDefinition
    from meshhost.capabilities.providers.keyvalue import KeyValueProvider
    from meshhost.errors import MeshError
    from meshhost.runtime import Runtime

    wasm, actor_id = kvcounter
    dispatcher = Dispatcher(providers=[KeyValueProvider(tmp_path / "kv")])
    with Runtime(tmp_path, dispatcher) as rt:
        rt.load(wasm)
        # no link yet: policy refuses, the actor reports the denial as its error
        with pytest.raises(ActorError) as info:
            await rt.invoke(actor_id, "HttpServer.HandleRequest", _request("h1"))
        assert "wasmcloud:keyvalue" in str(info.value)
        await dispatcher.put_link(
            LinkDefinition(actor_id=actor_id, contract_id="wasmcloud:keyvalue")
        )
        for expected in (1, 2):
            raw = await rt.invoke(actor_id, "HttpServer.HandleRequest", _request("h1"))
            assert json.loads(msgpack.unpackb(raw)["body"]) == {"count": expected, "host": "h1"}
    assert issubclass(type(info.value), MeshError)


_text = st.text(max_size=30)
_headers = st.dictionaries(_text, st.lists(_text, max_size=3), max_size=5)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    _text,
    st.binary(max_size=20),
    st.lists(st.integers(0, 300), max_size=3),
)
_extra = st.dictionaries(_text, _scalar, max_size=3)


@given(headers=_headers, extra=_extra, body=st.binary(max_size=100))
def test_kvcounter_reads_any_well_formed_request(kv_runtime, headers, extra, body):
    rt, actor_id = kv_runtime
    request = {
        **extra,
        "method": "POST",
        "path": "/x",
        "queryString": "a=1",
        "header": headers,
        "body": body,
    }
    response = msgpack.unpackb(
        rt.call_sync(actor_id, "HttpServer.HandleRequest", msgpack.packb(request))
    )
    host = headers.get("x-meshhost-host", []) or headers.get("host", [])
    expected = host[0] if host else ""
    got = json.loads(response["body"])["host"]
    assert got == "".join(
        "?" if c in '"\\' or ord(c) < 0x20 else c
        for c in expected.encode()[:256].decode("utf-8", "ignore")
    )


@given(st.binary(max_size=200))
def test_kvcounter_survives_garbage_requests(kv_runtime, data):
    from meshhost.errors import ActorRuntimeError

    rt, actor_id = kv_runtime
    try:
        msgpack.unpackb(rt.call_sync(actor_id, "HttpServer.HandleRequest", data))
    except ActorRuntimeError:
        pass  # a typed failure of this call only
    # and the actor still answers
    response = msgpack.unpackb(
        rt.call_sync(actor_id, "HttpServer.HandleRequest", _request("still-here"))
    )
    assert json.loads(response["body"])["host"] == "still-here"


@pytest.fixture(scope="module")
def kv_runtime(tmp_path_factory):
    from meshhost.runtime import Runtime

    spec = importlib.util.spec_from_file_location("kvcounter_build2", BUILD)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path, actor_id = module.build(tmp_path_factory.mktemp("kvbuild"))
    with Runtime(tmp_path_factory.mktemp("kvrt"), KeyValue()) as rt:
        rt.load(path.read_bytes())
        yield rt, actor_id
