"""Per-actor runtime limits: set by `start` (also forwarded), by manifests, by host
config; each one bites at a per-actor value where the default does not."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import trio
import wasmtime

from meshhost.apps.manifest import actor_id_from_claims, load_manifest
from meshhost.control.api import ControlError
from meshhost.errors import ErrorCode
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.modstore import sha256_hex
from meshhost.testing import ISSUER, alive, client, make_host, wait_until

TEST_ACTOR = Path(__file__).resolve().parents[2] / "runtime" / "wat" / "test_actor.wat"
GROWN = (2).to_bytes(4, "little")
"""`fill` 2: the actor grows its memory to 2 MiB, a page at a time."""
SPIN = (100).to_bytes(4, "little")
"""`spin` 100 million: ~0.1 s of guest CPU on an idle machine, far below the 2 s default."""


def signed_tester() -> tuple[bytes, str]:
    """The runtime tests' waPC actor (echo, spin, ...), signed with a fresh actor key."""
    text = TEST_ACTOR.read_text().replace("MODULE", "wapc").replace("START", "wapc_init")
    subject = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    module = sign_module(
        wasmtime.wat2wasm(text), issuer=ISSUER, subject=subject, name="tester", now=time.time()
    )
    return module, subject.public_key


async def call(host, actor: str, operation: str, payload: bytes) -> bytes:
    answer = await client(host).request(
        "call", actor=actor, operation=operation, payload=payload, timeout_ms=20_000
    )
    return answer["payload"]


async def test_each_limit_bites_at_a_per_actor_value_and_not_at_the_default(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        await nursery.start(a.serve)
        free, free_id = signed_tester()
        await client(a).request("start", module=free)
        assert await call(a, free_id, "fill", GROWN) == b""
        assert await call(a, free_id, "spin", SPIN) == b""

        cases = [
            ({"max_memory_mib": 1}, "fill", GROWN, "memory at the cap of 1048576 bytes"),
            ({"max_cpu_time_ms": 5}, "spin", SPIN, "CPU time"),
            ({"max_call_time_ms": 5}, "spin", SPIN, "deadline"),
        ]
        for limits, operation, payload, says in cases:
            module, actor_id = signed_tester()
            await client(a).request("start", module=module, limits=limits)
            with pytest.raises(ControlError, match=says):
                await call(a, actor_id, operation, payload)
            assert await call(a, actor_id, "echo", b"still serves") == b"still serves"

        few, few_id = signed_tester()
        with pytest.raises(ControlError, match=r"3 instances would be over its limit of 2"):
            await client(a).request("start", module=few, count=3, limits={"max_instances": 2})
        await client(a).request("start", module=few, count=2, limits={"max_instances": 2})
        with pytest.raises(ControlError, match="max_instances"):
            await client(a).request("scale", actor=few_id, count=3)
        assert (await client(a).request("scale", actor=few_id, count=1))["count"] == 1
        await client(a).request("scale", actor=free_id, count=3)  # the default is 1000

        inventory = {x["id"]: x for x in (await client(a).request("inventory"))["actors"]}
        assert inventory[free_id]["limits"] == {
            "max_memory_mib": 64,
            "max_cpu_time_ms": 2000,
            "max_call_time_ms": 30_000,
            "max_instances": 1000,
        }
        assert inventory[few_id]["limits"]["max_instances"] == 2
        assert inventory[few_id]["instances"] == 1

        # A later start with limits replaces them; one without keeps them.
        await client(a).request("start", module=few, limits={"max_instances": 5})
        await client(a).request("start", module=few)
        inventory = {x["id"]: x for x in (await client(a).request("inventory"))["actors"]}
        assert inventory[few_id]["limits"]["max_instances"] == 5
        assert inventory[few_id]["instances"] == 3
        nursery.cancel_scope.cancel()


async def test_bad_limits_are_refused_with_a_reason(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        await nursery.start(a.serve)
        module, _ = signed_tester()
        for limits, says in [
            ({"max_memory_mib": 0}, "max_memory_mib must be a whole number of MiB from 1 to 4096"),
            ({"max_memory_mib": 5000}, "from 1 to 4096, got 5000"),
            ({"max_cpu_time_ms": "fast"}, "max_cpu_time_ms must be a whole number of ms"),
            ({"max_call_time_ms": True}, "max_call_time_ms must be a whole number"),
            ({"max_instances": 1001}, "max_instances must be a whole number of instances"),
            ({"memory": 64}, "unknown actor limit 'memory'; known: max_memory_mib"),
            ([1, 2], "must be a map of limit names"),
        ]:
            with pytest.raises(ControlError, match=says) as info:
                await client(a).request("start", module=module, limits=limits)
            assert info.value.code == ErrorCode.INVALID
        assert (await client(a).request("inventory"))["actors"] == []
        nursery.cancel_scope.cancel()


async def test_limits_travel_with_a_forwarded_start_and_fill_in_from_that_hosts_config(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        addr = await nursery.start(a.serve)
        b = make_host(
            tmp_path, 1, seeds=(f"{addr[0]}:{addr[1]}",), actor_limits={"max_cpu_time_ms": 5}
        )
        await nursery.start(b.serve)
        await wait_until(lambda: alive(a) == alive(b) == {a.host_id, b.host_id}, "joined")
        module, actor_id = signed_tester()
        started = await client(a).request(
            "start", module=module, host=b.host_id, limits={"max_memory_mib": 1}
        )
        assert started["host"] == b.host_id
        inventory = await client(a).request("inventory", host=b.host_id)
        (row,) = inventory["actors"]
        assert row["limits"]["max_memory_mib"] == 1  # the start's own
        assert row["limits"]["max_cpu_time_ms"] == 5  # b's default
        await wait_until(lambda: bool(a.directory.hosts_running(actor_id)), "a sees it")
        with pytest.raises(ControlError, match="memory at the cap of 1048576 bytes"):
            await call(a, actor_id, "fill", GROWN)
        with pytest.raises(ControlError, match="CPU time"):  # b's default bites too
            await call(a, actor_id, "spin", SPIN)
        nursery.cancel_scope.cancel()


MANIFEST = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: limited
  annotations:
    version: v1
spec:
  components:
    - name: tester
      type: actor
      properties:
        image: ./tester.wasm
        max_memory_mib: 1
        max_call_time_ms: 5000
      traits:
        - type: spreadscaler
          properties:
            instances: 2
"""


async def test_a_manifests_component_limits_reach_the_instances_it_starts(
    tmp_path: Path,
) -> None:
    module, actor_id = signed_tester()
    (tmp_path / "tester.wasm").write_bytes(module)
    path = tmp_path / "app.yaml"
    path.write_text(MANIFEST)
    manifest = load_manifest(path, inspect_image=actor_id_from_claims)
    assert manifest.component("tester").limits == (
        ("max_call_time_ms", 5000),
        ("max_memory_mib", 1),
    )
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        await nursery.start(a.serve)
        await client(a).request(
            "apply",
            manifest=manifest.canonical(),
            source=str(path),
            modules={sha256_hex(module): module},
        )
        # managed_running() counts an instance from when its start begins (so the
        # reconciler does not start it twice); the inventory lists it once loaded.
        await wait_until(
            lambda: [r["instances"] for r in a.actors.inventory()["actors"]] == [2],
            "2 instances loaded",
        )
        (row,) = (await client(a).request("inventory"))["actors"]
        assert row["limits"]["max_memory_mib"] == 1
        assert row["limits"]["max_call_time_ms"] == 5000
        assert row["limits"]["max_cpu_time_ms"] == 2000
        with pytest.raises(ControlError, match="memory at the cap of 1048576 bytes"):
            await call(a, actor_id, "fill", GROWN)
        nursery.cancel_scope.cancel()
