"""waPC ABI end to end: every host function, start functions, WASI stubs."""

from __future__ import annotations

import struct
import time

import pytest

from meshhost.errors import ActorError, ActorLoadError, ActorNotFound


def test_echo_round_trips_payload_through_guest_request_and_response(runtime, test_actor):
    actor = runtime.load(test_actor)
    assert actor.kind == "wapc"
    assert actor.name == "tester"
    assert runtime.call_sync(actor.actor_id, "echo", b"hello") == b"hello"
    assert runtime.call_sync(actor.actor_id, "echo", b"") == b""
    big = bytes(range(256)) * 4096  # 1 MiB: the guest grows its memory
    assert runtime.call_sync(actor.actor_id, "echo", big) == big


async def test_invoke_runs_the_guest_on_a_worker_thread(runtime, test_actor):
    actor = runtime.load(test_actor)
    assert await runtime.invoke(actor.actor_id, "echo", b"via trio") == b"via trio"


def test_guest_error_becomes_actor_error_and_instance_is_kept(runtime, test_actor):
    actor = runtime.load(test_actor)
    assert runtime.call_sync(actor.actor_id, "count", b"") == struct.pack("<I", 1)
    with pytest.raises(ActorError, match="failed on purpose") as info:
        runtime.call_sync(actor.actor_id, "fail", b"")
    assert actor.actor_id in str(info.value) and "tester" in str(info.value)
    # same instance: its counter went on
    assert runtime.call_sync(actor.actor_id, "count", b"") == struct.pack("<I", 2)


def test_host_call_reaches_handler_with_binding_namespace_operation(runtime, test_actor, handler):
    actor = runtime.load(test_actor)
    handler.answers[("test:ns", "Test.Op")] = lambda p: b"answer to " + p
    assert runtime.call_sync(actor.actor_id, "host", b"q") == b"answer to q"
    assert handler.calls == [(actor.actor_id, "default", "test:ns", "Test.Op", b"q")]


def test_denied_host_call_returns_host_error_to_guest(runtime, test_actor, handler, denied):
    actor = runtime.load(test_actor)
    handler.answers[("test:ns", "Test.Op")] = denied("actor is not signed for test:ns")
    # the test actor passes __host_error's text on as its own guest error
    with pytest.raises(ActorError, match="actor is not signed for test:ns"):
        runtime.call_sync(actor.actor_id, "host", b"q")
    assert runtime.call_sync(actor.actor_id, "echo", b"still fine") == b"still fine"


def test_unexpected_handler_exception_is_logged_and_reported(runtime, test_actor, handler, caplog):
    actor = runtime.load(test_actor)
    handler.answers[("test:ns", "Test.Op")] = ZeroDivisionError("boom")
    with pytest.raises(ActorError, match="ZeroDivisionError: boom"):
        runtime.call_sync(actor.actor_id, "host", b"q")
    assert any("raised" in r.getMessage() and r.exc_info for r in caplog.records)


def test_handler_returning_non_bytes_is_a_host_error(runtime, test_actor, handler):
    actor = runtime.load(test_actor)
    handler.answers[("test:ns", "Test.Op")] = lambda p: "a str"
    with pytest.raises(ActorError, match="handler returned str"):
        runtime.call_sync(actor.actor_id, "host", b"q")


def test_base_exception_in_handler_aborts_call_and_propagates(runtime, test_actor, handler):
    class Stop(BaseException):
        pass

    actor = runtime.load(test_actor)
    handler.answers[("test:ns", "Test.Op")] = Stop()
    with pytest.raises(Stop):
        runtime.call_sync(actor.actor_id, "host", b"q")
    assert runtime.call_sync(actor.actor_id, "echo", b"ok") == b"ok"


def test_console_log_goes_to_handler_log(runtime, test_actor, handler):
    actor = runtime.load(test_actor)
    assert runtime.call_sync(actor.actor_id, "log", "héllo".encode()) == b""
    assert handler.logs == [(actor.actor_id, "info", "héllo")]


@pytest.mark.parametrize("start", ["wapc_init", "_start", "start"])
def test_start_function_is_called_once_when_exported(runtime, sign, compile_wat, start):
    actor = runtime.load(sign(compile_wat("test_actor", MODULE="wapc", START=start)))
    assert runtime.call_sync(actor.actor_id, "init", b"") == struct.pack("<I", 1)


def test_module_without_start_function_is_not_initialised(runtime, sign, compile_wat):
    actor = runtime.load(sign(compile_wat("test_actor", MODULE="wapc", START="other")))
    assert runtime.call_sync(actor.actor_id, "init", b"") == struct.pack("<I", 0)


def test_wasmbus_import_module_is_accepted(runtime, sign, compile_wat):
    actor = runtime.load(sign(compile_wat("test_actor", MODULE="wasmbus", START="wapc_init")))
    assert runtime.call_sync(actor.actor_id, "echo", b"wasmCloud") == b"wasmCloud"


def test_module_importing_only_two_functions_loads(runtime, sign):
    import wasmtime

    minimal = wasmtime.wat2wasm("""
    (module
      (import "wapc" "__guest_request" (func $req (param i32 i32)))
      (import "wapc" "__guest_response" (func $resp (param i32 i32)))
      (memory (export "memory") 1)
      (func (export "__guest_call") (param i32 i32) (result i32)
        (call $req (i32.const 0) (local.get 0))
        (call $resp (local.get 0) (local.get 1))
        (i32.const 1)))""")
    actor = runtime.load(sign(minimal))
    assert runtime.call_sync(actor.actor_id, "x", b"abc") == b"abc"


def test_unknown_import_refuses_to_load(runtime, sign):
    import wasmtime

    module = wasmtime.wat2wasm("""
    (module (import "env" "abort" (func))
      (memory (export "memory") 1)
      (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1)))""")
    with pytest.raises(ActorLoadError, match=r"imports env\.abort"):
        runtime.load(sign(module))


def test_wrong_wapc_signature_refuses_to_load(runtime, sign):
    import wasmtime

    module = wasmtime.wat2wasm("""
    (module (import "wapc" "__guest_request" (func (param i32)))
      (memory (export "memory") 1)
      (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1)))""")
    with pytest.raises(ActorLoadError, match="wrong type"):
        runtime.load(sign(module))


def test_module_without_guest_call_refuses_to_load(runtime, sign):
    import wasmtime

    with pytest.raises(ActorLoadError, match="__guest_call"):
        runtime.load(sign(wasmtime.wat2wasm('(module (memory (export "memory") 1))')))


def test_trapping_start_function_refuses_to_load(runtime, sign):
    import wasmtime

    module = wasmtime.wat2wasm("""
    (module (memory (export "memory") 1)
      (func (export "wapc_init") unreachable)
      (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1)))""")
    with pytest.raises(ActorLoadError, match="start function wapc_init failed"):
        runtime.load(sign(module))


def test_unknown_actor_is_not_found(runtime, test_actor):
    with pytest.raises(ActorNotFound):
        runtime.call_sync("MNOTLOADED", "echo", b"")
    actor = runtime.load(test_actor)
    runtime.unload(actor.actor_id)
    with pytest.raises(ActorNotFound, match=actor.actor_id):
        runtime.call_sync(actor.actor_id, "echo", b"")


def test_wasi_start_prints_and_stubs_answer(runtime, sign, compile_wat, handler):
    actor = runtime.load(sign(compile_wat("wasi_actor")))
    assert (actor.actor_id, "info", "started") in handler.logs  # _start ran, fd_write logged
    runtime.call_sync(actor.actor_id, "print", b"line one\nline two\n")
    runtime.call_sync(actor.actor_id, "eprint", b"oops\n")
    assert (actor.actor_id, "info", "line two") in handler.logs
    assert (actor.actor_id, "error", "oops") in handler.logs
    r1 = runtime.call_sync(actor.actor_id, "random", b"")
    r2 = runtime.call_sync(actor.actor_id, "random", b"")
    assert len(r1) == 16 and r1 != r2
    (ns,) = struct.unpack("<Q", runtime.call_sync(actor.actor_id, "clock", b""))
    assert abs(ns / 1e9 - time.time()) < 60
    assert runtime.call_sync(actor.actor_id, "env", b"") == bytes(8)
    assert runtime.call_sync(actor.actor_id, "nosys", b"") == struct.pack("<I", 52)  # ENOSYS


def test_wasi_proc_exit_traps_the_call(runtime, sign, compile_wat):
    from meshhost.errors import ActorTrapped

    actor = runtime.load(sign(compile_wat("wasi_actor")))
    with pytest.raises(ActorTrapped, match=r"proc_exit\(3\)"):
        runtime.call_sync(actor.actor_id, "exit", b"")
    assert runtime.call_sync(actor.actor_id, "env", b"") == bytes(8)


def test_assemblyscript_env_imports_abort_with_the_guest_message(runtime, sign, handler):
    import wasmtime

    def as_string(text: str) -> str:
        """WAT data for an AssemblyScript string: u32 byte length, then UTF-16LE."""
        raw = len(text.encode("utf-16-le")).to_bytes(4, "little") + text.encode("utf-16-le")
        return "".join(f"\\{b:02x}" for b in raw)

    module = wasmtime.wat2wasm(f"""
    (module
      (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
      (import "env" "seed" (func $seed (result f64)))
      (import "env" "trace" (func $trace (param i32 i32 f64 f64 f64 f64 f64)))
      (import "wapc" "__guest_request" (func $req (param i32 i32)))
      (import "wapc" "__guest_response" (func $resp (param i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 60) "{as_string("bad input")}")
      (data (i32.const 124) "{as_string("assembly/index.ts")}")
      (func (export "_start"))
      (func (export "__guest_call") (param $op i32) (param $len i32) (result i32)
        (call $req (i32.const 1024) (i32.const 2048))
        (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 0x73))   ;; 's'eed
          (then (f64.store (i32.const 512) (call $seed))
                (call $resp (i32.const 512) (i32.const 8))
                (return (i32.const 1))))
        (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 0x74))   ;; 't'race
          (then (call $trace (i32.const 64) (i32.const 2) (f64.const 1.5) (f64.const 2)
                             (f64.const 0) (f64.const 0) (f64.const 0))
                (call $resp (i32.const 0) (i32.const 0))
                (return (i32.const 1))))
        (call $abort (i32.const 64) (i32.const 128) (i32.const 12) (i32.const 5))
        (unreachable)))""")
    actor = runtime.load(sign(module))
    import struct

    (seed,) = struct.unpack("<d", runtime.call_sync(actor.actor_id, "seed", b""))
    assert seed > 0
    runtime.call_sync(actor.actor_id, "trace", b"")
    assert (actor.actor_id, "debug", "bad input 1.5 2") in handler.logs
    from meshhost.errors import ActorTrapped

    with pytest.raises(ActorTrapped, match=r"guest aborted: bad input at assembly/index\.ts:12:5"):
        runtime.call_sync(actor.actor_id, "abort", b"")


def test_module_importing_its_memory_gets_one_from_the_host(runtime, sign):
    import wasmtime

    module = wasmtime.wat2wasm("""
    (module
      (import "env" "memory" (memory 1))
      (import "wapc" "__guest_request" (func $req (param i32 i32)))
      (import "wapc" "__guest_response" (func $resp (param i32 i32)))
      (func (export "__guest_call") (param i32 i32) (result i32)
        (call $req (i32.const 0) (local.get 0))
        (call $resp (local.get 0) (local.get 1))
        (i32.const 1)))""")
    actor = runtime.load(sign(module))
    assert runtime.call_sync(actor.actor_id, "op", b"imported memory") == b"imported memory"


def test_stray_zero_after_a_msgpack_response_is_dropped(runtime, sign):
    import wasmtime

    module = wasmtime.wat2wasm(r"""
    (module
      (import "wasmbus" "__guest_response" (func $resp (param i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "\81\a2ok\c3\00")   ;; {"ok": true} + a stray 0x00
      (data (i32.const 32) "\00\01\00")        ;; not msgpack: left alone
      (func (export "__guest_call") (param $op i32) (param i32) (result i32)
        (if (i32.eq (local.get $op) (i32.const 1))
          (then (call $resp (i32.const 16) (i32.const 6)))
          (else (call $resp (i32.const 32) (i32.const 3))))
        (i32.const 1)))""")
    actor = runtime.load(sign(module))
    assert runtime.call_sync(actor.actor_id, "m", b"") == b"\x81\xa2ok\xc3"
    assert runtime.call_sync(actor.actor_id, "raw", b"") == b"\x00\x01\x00"
