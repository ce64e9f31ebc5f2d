"""Components of world meshhost:actor/actor: same semantics as waPC actors."""

from __future__ import annotations

import pytest

from meshhost.errors import ActorError, ActorLimitExceeded, ActorLoadError, ActorTrapped


@pytest.fixture
def component(sign, compile_wat) -> bytes:
    return sign(compile_wat("component_actor"), name="comp")


def test_component_echo_including_large_payloads(runtime, component):
    actor = runtime.load(component)
    assert actor.kind == "component"
    assert runtime.call_sync(actor.actor_id, "echo", b"hello") == b"hello"
    assert runtime.call_sync(actor.actor_id, "echo", b"") == b""
    data = bytes(range(256)) * 1024  # 256 KiB through the bulk list<u8> path
    assert runtime.call_sync(actor.actor_id, "echo", data) == data


async def test_component_invoke_from_trio(runtime, component):
    actor = runtime.load(component)
    assert await runtime.invoke(actor.actor_id, "echo", b"async") == b"async"


def test_component_host_call_ok_and_err(runtime, component, handler, denied):
    actor = runtime.load(component)
    handler.answers[("test:ns", "Test.Op")] = lambda p: bytes(reversed(p))
    assert runtime.call_sync(actor.actor_id, "host", b"abc") == b"cba"
    assert handler.calls == [(actor.actor_id, "default", "test:ns", "Test.Op", b"abc")]
    handler.answers[("test:ns", "Test.Op")] = denied("not signed for test:ns")
    with pytest.raises(ActorError, match="not signed for test:ns"):
        runtime.call_sync(actor.actor_id, "host", b"abc")


def test_component_log_and_guest_error(runtime, component, handler):
    actor = runtime.load(component)
    assert runtime.call_sync(actor.actor_id, "log", b"from component") == b""
    assert handler.logs == [(actor.actor_id, "info", "from component")]
    with pytest.raises(ActorError, match="failed on purpose"):
        runtime.call_sync(actor.actor_id, "fail", b"")


def test_component_trap_replaces_instance(runtime, component):
    actor = runtime.load(component)
    created = actor.pool.created
    with pytest.raises(ActorTrapped, match="unreachable"):
        runtime.call_sync(actor.actor_id, "trap", b"")
    assert runtime.call_sync(actor.actor_id, "echo", b"again") == b"again"
    assert actor.pool.created == created + 1


def test_component_loop_hits_cpu_limit(runtime, component):
    actor = runtime.load(component)
    with pytest.raises(ActorLimitExceeded) as info:
        runtime.call_sync(actor.actor_id, "spin", b"")
    assert info.value.limit == "cpu"
    assert runtime.call_sync(actor.actor_id, "echo", b"alive") == b"alive"


def test_component_with_unknown_import_refuses_to_load(runtime, sign):
    import wasmtime

    wasm = wasmtime.wat2wasm("""
    (component (import "acme:thing/api@1.0.0" (instance (export "f" (func)))))""")
    with pytest.raises(ActorLoadError, match="acme:thing/api"):
        runtime.load(sign(wasm))


def test_component_without_handler_refuses_to_load(runtime, sign):
    import wasmtime

    with pytest.raises(ActorLoadError, match="does not export meshhost:actor/handler"):
        runtime.load(sign(wasmtime.wat2wasm("(component)")))


def test_component_second_load_comes_from_cache(tmp_path, handler, component):
    from meshhost.runtime import Runtime

    with Runtime(tmp_path, handler) as first:
        assert not first.load(component).from_cache
    with Runtime(tmp_path, handler) as second:
        actor = second.load(component)
        assert actor.from_cache and second.engine.stats.compiles == 0
        assert second.call_sync(actor.actor_id, "echo", b"x") == b"x"


def test_component_importing_wasi_p2_gets_an_empty_wasi_context(runtime, sign, compile_wat):
    actor = runtime.load(sign(compile_wat("wasi_component")))
    first = runtime.call_sync(actor.actor_id, "random", b"")
    second = runtime.call_sync(actor.actor_id, "random", b"")
    assert len(first) == 8 and first != second


def test_component_fuel_limit(tmp_path, handler, component):
    from meshhost.runtime import ActorLimits, Runtime

    with Runtime(
        tmp_path, handler, limits=ActorLimits(fuel=200_000, cpu_time_s=10.0), consume_fuel=True
    ) as rt:
        actor = rt.load(component)
        with pytest.raises(ActorLimitExceeded) as info:
            rt.call_sync(actor.actor_id, "spin", b"")
        assert info.value.limit == "fuel"
        assert rt.call_sync(actor.actor_id, "echo", b"fuelled") == b"fuelled"


def test_component_short_deadline(runtime, component):
    from meshhost.errors import ActorDeadlineExceeded

    actor = runtime.load(component)
    with pytest.raises(ActorDeadlineExceeded):
        runtime.call_sync(actor.actor_id, "spin", b"", deadline_s=0.05)
