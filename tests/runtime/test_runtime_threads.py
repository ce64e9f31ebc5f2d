"""Guests run on worker threads; handlers may bridge back into trio."""

from __future__ import annotations

import ast
from pathlib import Path

import msgpack
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import meshhost.runtime
from meshhost.errors import ActorError
from meshhost.runtime import ActorLimits, Runtime
from meshhost.runtime.wapc import trim_stray_trailer


class TrioBridgingHandler:
    """A handler that must await (like a remote call) while the guest waits."""

    def __init__(self) -> None:
        self.threads: list[bool] = []

    def host_call(self, actor, binding, namespace, operation, payload):
        self.threads.append(trio.lowlevel.in_trio_run() is False)

        async def remote() -> bytes:
            await trio.sleep(0.01)
            if payload == b"forever":
                await trio.sleep_forever()
            return b"remote:" + payload

        return trio.from_thread.run(remote)

    def log(self, actor, level, message):
        pass


async def test_handler_can_await_trio_from_the_guest_thread(tmp_path, test_actor):
    handler = TrioBridgingHandler()
    with Runtime(tmp_path, handler) as rt:
        actor = rt.load(test_actor)
        assert await rt.invoke(actor.actor_id, "host", b"x") == b"remote:x"
        assert handler.threads == [True]


async def test_cancelling_the_caller_cancels_the_awaiting_host_call(tmp_path, test_actor):
    handler = TrioBridgingHandler()
    with Runtime(tmp_path, handler) as rt:
        actor = rt.load(test_actor)
        with trio.move_on_after(0.1) as scope:
            await rt.invoke(actor.actor_id, "host", b"forever")
        assert scope.cancelled_caught
        # the aborted instance was replaced; the actor still serves
        assert await rt.invoke(actor.actor_id, "echo", b"next") == b"next"


async def test_concurrent_invokes_use_separate_instances(tmp_path, test_actor):
    handler = TrioBridgingHandler()
    with Runtime(tmp_path, handler, limits=ActorLimits(max_instances=3)) as rt:
        actor = rt.load(test_actor)
        results: list[bytes] = []

        async def one(i: int) -> None:
            results.append(await rt.invoke(actor.actor_id, "host", b"%d" % i))

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(one, i)
        assert sorted(results) == sorted(b"remote:%d" % i for i in range(6))
        assert actor.pool.live <= 3


@given(op=st.text(max_size=40), payload=st.binary(max_size=4096))
def test_echo_returns_any_payload_unchanged(shared_runtime, op, payload):
    rt, actor_id = shared_runtime
    if op == "echo":
        assert rt.call_sync(actor_id, op, payload) == payload
    else:
        with pytest.raises(ActorError):  # every other name is an unknown operation
            rt.call_sync(actor_id, op + "?", payload)
    assert rt.call_sync(actor_id, "echo", payload) == payload


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory):
    import os
    import time

    import wasmtime

    from meshhost.identity import nkeys
    from meshhost.identity.claims import sign_module

    source = (Path(__file__).parent / "wat" / "test_actor.wat").read_text()
    wasm = wasmtime.wat2wasm(source.replace("MODULE", "wapc").replace("START", "wapc_init"))
    signed = sign_module(
        wasm,
        issuer=nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom),
        subject=nkeys.generate(nkeys.Prefix.MODULE, os.urandom),
        name="fuzz",
        now=time.time(),
    )

    class Quiet:
        def host_call(self, *args):
            return b""

        def log(self, *args):
            pass

    with Runtime(tmp_path_factory.mktemp("rt"), Quiet()) as rt:
        yield rt, rt.load(signed).actor_id


@given(st.binary(max_size=200))
def test_trim_stray_trailer_never_raises_and_only_drops_one_zero(data):
    out = trim_stray_trailer(data)
    assert out == data or (out + b"\x00" == data)


_INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)


@given(
    st.one_of(
        st.dictionaries(st.text(), _INT64),
        st.lists(st.text()),
        st.dictionaries(st.text(), st.binary()),
        st.lists(_INT64, min_size=16),
    )
)
def test_trim_stray_trailer_repairs_a_msgpack_map_or_array_with_a_trailing_zero(value):
    packed = msgpack.packb(value)
    assert trim_stray_trailer(packed + b"\x00") == packed
    assert trim_stray_trailer(packed) == packed


@given(st.one_of(_INT64, st.text(), st.binary()))
def test_trim_stray_trailer_leaves_scalars_alone(value):
    packed = msgpack.packb(value) + b"\x00"
    assert trim_stray_trailer(packed) == packed


def test_public_surface():
    assert set(meshhost.runtime.__all__) == {
        "EPOCH_TICK_S",
        "ActorLimits",
        "ActorRef",
        "Engine",
        "HostCallHandler",
        "LoadedActor",
        "Runtime",
        "current_deadline",
        "wat_to_wasm",
    }
    for name in meshhost.runtime.__all__:
        assert hasattr(meshhost.runtime, name)


# The CLI reads wasmtime's version string for `meshhost version`; it runs no wasm.
VERSION_ONLY = {"cli/__init__.py"}


def test_only_the_runtime_package_imports_wasmtime():
    package = Path(meshhost.runtime.__file__).resolve().parents[1]
    offenders = []
    for path in package.rglob("*.py"):
        relative = path.relative_to(package)
        if relative.parts[0] == "runtime" or relative.as_posix() in VERSION_ONLY:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "wasmtime" or n.startswith("wasmtime.") for n in names):
                offenders.append(str(path))
    assert offenders == []


def test_handlers_see_the_running_calls_deadline(tmp_path, test_actor):
    import time

    from meshhost.runtime import current_deadline

    seen: list[float | None] = []

    class Handler:
        def host_call(self, actor, binding, namespace, operation, payload):
            seen.append(current_deadline())
            return b""

        def log(self, actor, level, message):
            pass

    with Runtime(tmp_path, Handler()) as rt:
        actor = rt.load(test_actor)
        before = time.monotonic()
        rt.call_sync(actor.actor_id, "host", b"", deadline_s=2.0)
    assert current_deadline() is None
    assert seen[0] is not None and before + 1.9 < seen[0] <= time.monotonic() + 2.0
