"""Every limit trips, fails only that call with a typed error, and the host goes on."""

from __future__ import annotations

import threading

import pytest
import trio

from meshhost.errors import (
    ActorBusy,
    ActorDeadlineExceeded,
    ActorLimitExceeded,
    ActorLoadError,
    ActorMisbehaved,
    ActorTrapped,
)
from meshhost.runtime import ActorLimits, Runtime


def _still_serves(runtime, actor_id):
    assert runtime.call_sync(actor_id, "echo", b"alive") == b"alive"


def test_trap_fails_the_call_and_replaces_the_instance(runtime, test_actor):
    actor = runtime.load(test_actor)
    runtime.call_sync(actor.actor_id, "count", b"")
    created = actor.pool.created
    with pytest.raises(ActorTrapped, match="unreachable") as info:
        runtime.call_sync(actor.actor_id, "trap", b"")
    assert info.value.actor_id == actor.actor_id and "tester" in str(info.value)
    # the trapped instance was discarded: a fresh one starts counting at 1 again
    assert runtime.call_sync(actor.actor_id, "count", b"") == (1).to_bytes(4, "little")
    assert actor.pool.created == created + 1


def test_infinite_loop_is_stopped_by_the_cpu_limit(runtime, test_actor):
    actor = runtime.load(test_actor)
    with pytest.raises(ActorLimitExceeded, match="CPU time") as info:
        runtime.call_sync(actor.actor_id, "loop", b"")
    assert info.value.limit == "cpu"
    _still_serves(runtime, actor.actor_id)


def test_short_deadline_stops_a_loop_as_deadline_exceeded(runtime, test_actor):
    actor = runtime.load(test_actor)
    with pytest.raises(ActorDeadlineExceeded, match="deadline") as info:
        runtime.call_sync(actor.actor_id, "loop", b"", deadline_s=0.05)
    assert info.value.limit == "deadline"
    _still_serves(runtime, actor.actor_id)


def test_slow_host_call_past_the_deadline_stops_the_guest(runtime, test_actor, handler):
    import time

    actor = runtime.load(test_actor)

    def slow(payload: bytes) -> bytes:
        time.sleep(0.1)
        return b"late"

    handler.answers[("test:ns", "Test.Op")] = slow
    with pytest.raises(ActorDeadlineExceeded):
        runtime.call_sync(actor.actor_id, "host", b"", deadline_s=0.05)
    _still_serves(runtime, actor.actor_id)


def test_host_call_time_does_not_count_as_cpu_time(runtime, test_actor, handler):
    import time

    actor = runtime.load(test_actor)

    def slow(payload: bytes) -> bytes:
        time.sleep(0.3)  # longer than the 0.2 s CPU limit
        return b"done"

    handler.answers[("test:ns", "Test.Op")] = slow
    assert runtime.call_sync(actor.actor_id, "host", b"") == b"done"


def test_memory_growth_beyond_the_cap_is_a_memory_limit(runtime, test_actor, limits):
    actor = runtime.load(test_actor)
    with pytest.raises(ActorLimitExceeded, match="memory") as info:
        runtime.call_sync(actor.actor_id, "grow", b"")
    assert info.value.limit == "memory"
    assert str(limits.memory_bytes) in str(info.value)
    _still_serves(runtime, actor.actor_id)


def test_payload_larger_than_memory_cap_fails_that_call_only(runtime, test_actor, limits):
    actor = runtime.load(test_actor)
    with pytest.raises(ActorLimitExceeded) as info:
        runtime.call_sync(actor.actor_id, "echo", bytes(limits.memory_bytes))
    assert info.value.limit == "memory"
    _still_serves(runtime, actor.actor_id)


def test_initial_memory_over_the_cap_refuses_to_load(runtime, sign):
    import wasmtime

    module = wasmtime.wat2wasm("""
    (module (memory (export "memory") 200)
      (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1)))""")
    with pytest.raises(ActorLoadError, match="cannot be instantiated"):
        runtime.load(sign(module))


def test_out_of_bounds_pointer_is_garbage(runtime, test_actor):
    actor = runtime.load(test_actor)
    with pytest.raises(ActorMisbehaved, match="outside its"):
        runtime.call_sync(actor.actor_id, "bad_ptr", b"")
    _still_serves(runtime, actor.actor_id)


def test_success_without_response_is_garbage(runtime, test_actor):
    actor = runtime.load(test_actor)
    with pytest.raises(ActorMisbehaved, match="without calling __guest_response"):
        runtime.call_sync(actor.actor_id, "no_response", b"")
    _still_serves(runtime, actor.actor_id)


def test_oversized_request_is_refused_before_the_guest_runs(tmp_path, handler, test_actor):
    with Runtime(tmp_path, handler, limits=ActorLimits(max_message_bytes=1024)) as rt:
        actor = rt.load(test_actor)
        created = actor.pool.created
        with pytest.raises(ActorLimitExceeded, match="message limit") as info:
            rt.call_sync(actor.actor_id, "echo", bytes(2048))
        assert info.value.limit == "message"
        assert rt.call_sync(actor.actor_id, "echo", b"small") == b"small"
        assert actor.pool.created == created  # no instance was thrown away


def test_oversized_length_from_the_guest_is_garbage(tmp_path, handler, sign):
    import wasmtime

    module = wasmtime.wat2wasm("""
    (module
      (import "wapc" "__guest_response" (func $resp (param i32 i32)))
      (memory (export "memory") 1)
      (func (export "__guest_call") (param i32 i32) (result i32)
        (call $resp (i32.const 0) (i32.const 4096))
        (i32.const 1)))""")
    with Runtime(tmp_path, handler, limits=ActorLimits(max_message_bytes=1024)) as rt:
        actor = rt.load(sign(module))
        with pytest.raises(ActorMisbehaved, match="over the 1024-byte message limit"):
            rt.call_sync(actor.actor_id, "x", b"")


def test_fuel_limit_stops_a_loop(tmp_path, handler, test_actor):
    limits = ActorLimits(fuel=100_000, cpu_time_s=10.0)
    with Runtime(tmp_path, handler, limits=limits, consume_fuel=True) as rt:
        actor = rt.load(test_actor)
        with pytest.raises(ActorLimitExceeded, match="fuel") as info:
            rt.call_sync(actor.actor_id, "loop", b"")
        assert info.value.limit == "fuel"
        assert rt.call_sync(actor.actor_id, "echo", b"fuelled") == b"fuelled"


def test_calls_never_share_an_instance_and_extra_callers_wait(tmp_path, handler, test_actor):
    """Two instances max: while two calls block in host calls, a third is busy."""
    limits = ActorLimits(max_instances=2, deadline_s=5.0)
    release = threading.Event()
    entered = threading.Semaphore(0)

    def block(payload: bytes) -> bytes:
        entered.release()
        release.wait(5)
        return b"released"

    handler.answers[("test:ns", "Test.Op")] = block
    with Runtime(tmp_path, handler, limits=limits) as rt:
        actor = rt.load(test_actor)
        results: list[bytes] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(rt.call_sync(actor.actor_id, "host", b""))
            )
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
        assert actor.pool.live == 2
        with pytest.raises(ActorBusy, match="instances stayed busy"):
            rt.call_sync(actor.actor_id, "echo", b"", deadline_s=0.05)
        release.set()
        for t in threads:
            t.join(5)
        assert results == [b"released", b"released"]
        assert actor.pool.live == 2


async def test_a_looping_actor_does_not_stop_other_actors(runtime, test_actor, sign, compile_wat):
    looper = runtime.load(test_actor)
    other = runtime.load(sign(compile_wat("test_actor", MODULE="wapc", START="wapc_init")))
    async with trio.open_nursery() as nursery:
        failures: list[Exception] = []

        async def spin() -> None:
            try:
                await runtime.invoke(looper.actor_id, "loop", b"")
            except ActorLimitExceeded as exc:
                failures.append(exc)

        nursery.start_soon(spin)
        await trio.sleep(0.01)
        for i in range(20):
            assert await runtime.invoke(other.actor_id, "echo", b"%d" % i) == b"%d" % i
    assert len(failures) == 1
