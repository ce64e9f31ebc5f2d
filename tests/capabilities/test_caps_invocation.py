"""meshhost:builtin:invocation: a guest asks for the id of the call it is running."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import msgpack
import pytest
import wasmtime

from meshhost.capabilities import INVOCATION, Dispatcher
from meshhost.errors import ActorError
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.runtime import Runtime
from tests.capabilities.caps_actor import frame

WAT = Path(__file__).parent / "wat"
VECTORS = json.loads(
    (Path(__file__).parents[2] / "proto" / "vectors" / "capabilities.json").read_text()
)["vectors"]
INV_ID = bytes(range(16))


def _load(runtime: Runtime, wasm: bytes) -> str:
    issuer = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)
    subject = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    # no caps: the builtin needs no claim and no link
    return runtime.load(
        sign_module(wasm, issuer=issuer, subject=subject, name="plain", now=time.time())
    ).actor_id


@pytest.fixture
def runtime(tmp_path: Path):
    dispatcher = Dispatcher()
    runtime = Runtime(tmp_path, dispatcher)
    yield runtime, dispatcher
    runtime.close()


async def test_a_wapc_actor_without_claims_or_links_reads_its_invocation_id(runtime) -> None:
    rt, dispatcher = runtime
    actor = _load(rt, wasmtime.wat2wasm((WAT / "caps_actor.wat").read_text()))
    ask = frame("", INVOCATION, "Invocation.GetId", b"")
    with pytest.raises(ActorError, match="did not come through the lattice's invoker"):
        await rt.invoke(actor, "call", ask)
    dispatcher.current_invocation_id = lambda: INV_ID
    answer = await rt.invoke(actor, "call", ask)
    vector = next(v for v in VECTORS if v["name"] == "invocation_get_id_response")
    assert answer.hex() == vector["msgpack_hex"]
    assert msgpack.unpackb(answer) == INV_ID.hex() == vector["fields"]["value"]
    with pytest.raises(ActorError, match=r"has no operation 'Invocation\.Get'"):
        await rt.invoke(actor, "call", frame("", INVOCATION, "Invocation.Get", b""))


async def test_a_component_reads_its_invocation_id_through_host_call(runtime) -> None:
    rt, dispatcher = runtime
    dispatcher.current_invocation_id = lambda: INV_ID
    # caps_component.wat forwards every call to one namespace; point it at the builtin
    text = (WAT / "caps_component.wat").read_text()
    text = text.replace('"wasmcloud:keyvalue")', f'"{INVOCATION}")')
    text = text.replace(
        "(i32.const 64) (i32.const 18)", f"(i32.const 64) (i32.const {len(INVOCATION)})"
    )
    assert INVOCATION in text and f"(i32.const {len(INVOCATION)})" in text
    actor = _load(rt, wasmtime.wat2wasm(text))
    answer = await rt.invoke(actor, "Invocation.GetId", b"")
    assert msgpack.unpackb(answer) == INV_ID.hex()
