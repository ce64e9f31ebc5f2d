"""Actors of the generations before wasmbus, on a real two-host lattice.

Claims and links name their own contract ids (``wascc:keyvalue``,
``wascc:http_server``; ``wasmcloud:keyvalue`` with bare operations); the HTTP
listener on one host reaches the actor on the other through the router.
"""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path

import msgpack
import pytest
import trio

from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.runtime import wat_to_wasm
from meshhost.testing import ISSUER, client, start_lattice, wait_until

WAT = Path(__file__).resolve().parents[2] / "capabilities" / "wat"
GENERATIONS = {
    "wascc": ("wascc_actor.wat", "wascc:keyvalue", "wascc:http_server"),
    "wasmcloud": ("wasmcloud_0x_actor.wat", "wasmcloud:keyvalue", "wasmcloud:httpserver"),
}


def get(port: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("generation", sorted(GENERATIONS))
async def test_an_old_actor_serves_http_across_hosts_through_its_own_contract_ids(
    tmp_path: Path, generation: str
) -> None:
    fixture, kv, http_contract = GENERATIONS[generation]
    async with trio.open_nursery() as nursery:
        a, b = await start_lattice(nursery, tmp_path, 2)
        module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
        wasm = sign_module(
            wat_to_wasm((WAT / fixture).read_text()),
            issuer=ISSUER,
            subject=module,
            name=generation,
            caps=(kv, http_contract),
            now=time.time(),
        )
        actor = module.public_key
        await client(b.host).request("start", module=wasm)
        await client(b.host).request("link_put", actor=actor, contract=kv, values={})
        await client(b.host).request(
            "link_put", actor=actor, contract=http_contract, values={"ADDRESS": "127.0.0.1:0"}
        )
        await wait_until(lambda: bool(a.host.directory.hosts_running(actor)), "a sees it")

        async def port_on_a() -> int | None:
            rows = (await client(a.host).request("inventory"))["http"]
            serving = [r for r in rows if r.get("state", "serving") == "serving"]
            return int(str(serving[0]["address"]).rsplit(":", 1)[1]) if serving else None

        with trio.fail_after(20):
            while (port := await port_on_a()) is None:
                await trio.sleep(0.05)
        for count in (1, 2):  # a's listener -> router -> b's actor -> b's key-value
            status, body = await trio.to_thread.run_sync(get, port)
            assert (status, msgpack.unpackb(body)) == (200, {"value": count})
        nursery.cancel_scope.cancel()
