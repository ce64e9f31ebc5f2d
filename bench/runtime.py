"""Wasm runtime costs, measured in one run (compare figures within a run only).

Prints:

1. a bare wasmtime call of a waPC echo export (no meshhost): through
   wasmtime-py's generic API (``Func.__call__``, Python ``Func`` imports,
   ``Memory.read/write``) and through the raw path meshhost uses
   (``wasmtime_func_call_unchecked``, unchecked host callbacks, memmove);
2. a waPC ``echo`` through the runtime on the calling thread
   (``Runtime.call_sync``: pool, limits, budget) and the difference to the bare
   raw call (target <= 15 us);
3. the same through ``await Runtime.invoke`` (trio worker-thread hop) and the
   bare cost of ``trio.to_thread.run_sync``;
4. actor start: cold (compile) vs from the disk cache, the whole ``load``
   (claims check, deserialize, first instance) and one more instance alone
   (target <= 5 ms from cache);
5. component ``handle`` for 100 B and 10 KiB payloads: wasmtime-py's generic
   ``list<u8>`` conversion vs meshhost's bulk path.

Run: ``python bench/runtime.py``.
"""

from __future__ import annotations

import ctypes
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio
import wasmtime
from wasmtime import component as wcomponent

from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.runtime import ActorLimits, ActorRef, Runtime, _raw

ROOT = Path(__file__).resolve().parents[1]
WAT = ROOT / "tests" / "runtime" / "wat"

ECHO_WAT = """
(module
  (import "wapc" "__guest_request" (func $req (param i32 i32)))
  (import "wapc" "__guest_response" (func $resp (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "__guest_call") (param $op i32) (param $len i32) (result i32)
    (call $req (i32.const 1024) (i32.add (i32.const 1024) (local.get $op)))
    (call $resp (i32.add (i32.const 1024) (local.get $op)) (local.get $len))
    (i32.const 1)))
"""
PAYLOAD = b"x" * 100


class NullHandler:
    def host_call(
        self, actor: ActorRef, binding: str, namespace: str, operation: str, payload: bytes
    ) -> bytes:
        return payload

    def log(self, actor: ActorRef, level: str, message: str) -> None:
        pass


def median_us(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean per-call time of ``n`` calls, in us."""
    fn()
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        results.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(results)


def median_once_us(fn: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def sign(wasm: bytes, name: str) -> bytes:
    issuer = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)
    subject = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    return sign_module(wasm, issuer=issuer, subject=subject, name=name, now=time.time())


# -- 1. bare wasmtime ---------------------------------------------------------------------


def bare_generic(wasm: bytes) -> Callable[[], object]:
    """The straightforward wasmtime-py host."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, wasm)
    state: dict[str, object] = {"op": b"echo", "payload": PAYLOAD}
    memory: list[wasmtime.Memory] = []
    i32 = wasmtime.ValType.i32()
    ty = wasmtime.FuncType([i32, i32], [])

    def req(op_ptr: int, ptr: int) -> None:
        memory[0].write(store, state["op"], op_ptr)  # type: ignore[arg-type]
        memory[0].write(store, state["payload"], ptr)  # type: ignore[arg-type]

    def resp(ptr: int, length: int) -> None:
        state["response"] = bytes(memory[0].read(store, ptr, ptr + length))

    inst = wasmtime.Instance(
        store, module, [wasmtime.Func(store, ty, req), wasmtime.Func(store, ty, resp)]
    )
    exports = inst.exports(store)
    memory.append(exports["memory"])  # type: ignore[arg-type]
    call = exports["__guest_call"]

    def run() -> object:
        call(store, 4, len(PAYLOAD))  # type: ignore[operator]
        return state["response"]

    assert run() == PAYLOAD
    return run


def bare_raw(wasm: bytes) -> Callable[[], object]:
    """The floor: the same raw calls meshhost makes, without pool, limits or checks."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, wasm)
    mem_addr: list[int] = []
    state: dict[str, object] = {}
    op, payload = b"echo", PAYLOAD

    def req(caller: int, args: ctypes.Array) -> int:  # type: ignore[type-arg]
        ctx = _raw.caller_context(caller)
        base = _raw.memory_data(ctx, mem_addr[0])
        ctypes.memmove(base + (args[0] & 0xFFFFFFFF), op, len(op))
        ctypes.memmove(base + (args[2] & 0xFFFFFFFF), payload, len(payload))
        return 0

    def resp(caller: int, args: ctypes.Array) -> int:  # type: ignore[type-arg]
        ctx = _raw.caller_context(caller)
        base = _raw.memory_data(ctx, mem_addr[0])
        state["response"] = ctypes.string_at(base + (args[0] & 0xFFFFFFFF), args[2] & 0xFFFFFFFF)
        return 0

    table = {1: req, 2: resp}

    @_raw.RAW_CALLBACK
    def trampoline(env: int, caller: int, args: object, n: int) -> int:
        return table[env](caller, args)  # type: ignore[arg-type]

    funcs = []
    for env, imp in enumerate(module.imports, start=1):
        raw = wasmtime._ffi.wasmtime_func_t()
        _raw.func_new_unchecked(store._context(), imp.type.ptr(), trampoline, env, raw)
        funcs.append(wasmtime.Func._from_raw(raw))
    inst = wasmtime.Instance(store, module, funcs)
    exports = inst.exports(store)
    mem_addr.append(ctypes.addressof(exports["memory"]._memory))  # type: ignore[union-attr]
    func_addr = ctypes.addressof(exports["__guest_call"]._func)  # type: ignore[union-attr]
    ctx = ctypes.cast(store._context(), ctypes.c_void_p).value
    vals = (ctypes.c_uint64 * 4)()
    vals_addr = ctypes.addressof(vals)
    trap = ctypes.c_void_p()
    trap_addr = ctypes.addressof(trap)

    def run() -> object:
        vals[0] = len(op)
        vals[2] = len(payload)
        _raw.call_unchecked(ctx, func_addr, vals_addr, 2, trap_addr)
        return state["response"]

    assert run() == PAYLOAD
    run.keep = (trampoline, funcs, inst, store)  # type: ignore[attr-defined]
    return run


# -- 5. generic component call for comparison ----------------------------------------------


def component_generic(wasm: bytes) -> Callable[[bytes], object]:
    engine = wasmtime.Engine()
    linker = wcomponent.Linker(engine)
    with linker.root() as root, root.add_instance("meshhost:actor/host@0.1.0") as host:
        host.add_func("call", lambda store, b, n, o, p: p)
        host.add_func("log", lambda store, level, message: None)
    store = wasmtime.Store(engine)
    inst = linker.instantiate(store, wcomponent.Component(engine, wasm))
    iface = inst.get_export_index(store, "meshhost:actor/handler@0.1.0")
    func = inst.get_func(store, inst.get_export_index(store, "handle", iface))  # type: ignore[arg-type]
    assert func is not None

    def run(payload: bytes) -> object:
        return func(store, "echo", payload)

    return run


def main() -> None:
    echo = wasmtime.wat2wasm(ECHO_WAT)
    component = wasmtime.wat2wasm((WAT / "component_actor.wat").read_text())
    test_actor = wasmtime.wat2wasm(
        (WAT / "test_actor.wat").read_text().replace("MODULE", "wapc").replace("START", "wapc_init")
    )
    kvcounter = wasmtime.wat2wasm((ROOT / "meshhost" / "examples" / "kvcounter.wat").read_text())
    signed_echo = sign(echo, "echo")
    signed_component = sign(component, "component-echo")
    n = 20000

    print(
        "meshhost runtime benchmark (wasmtime-py "
        f"{__import__('importlib.metadata').metadata.version('wasmtime')}, one run)\n"
    )
    generic = median_us(bare_generic(echo), n // 4)
    raw = median_us(bare_raw(echo), n)
    print("1. bare wasmtime, waPC echo export, 100 B")
    print(f"   generic API (Func.__call__, Python Func imports)   {generic:8.2f} us")
    print(f"   raw API (func_call_unchecked, unchecked imports)  {raw:8.2f} us")

    with (
        tempfile.TemporaryDirectory() as tmp,
        Runtime(Path(tmp), NullHandler(), limits=ActorLimits(max_instances=2)) as rt,
    ):
        actor = rt.load(signed_echo)
        aid = actor.actor_id
        via = median_us(lambda: rt.call_sync(aid, "echo", PAYLOAD), n)
        print("\n2. waPC echo through the runtime, 100 B, local")
        print(f"   Runtime.call_sync                                 {via:8.2f} us")
        print(f"   difference to bare raw call (target <= 15 us)     {via - raw:8.2f} us")
        print(f"   speed-up over bare generic wasmtime-py            {generic / via:8.1f} x")

        async def hop() -> tuple[float, float]:
            async def invoke() -> None:
                await rt.invoke(aid, "echo", PAYLOAD)

            async def nothing() -> None:
                await trio.to_thread.run_sync(lambda: None)

            results = []
            for fn in (invoke, nothing):
                await fn()
                rounds = []
                for _ in range(5):
                    start = time.perf_counter()
                    for _ in range(1000):
                        await fn()
                    rounds.append((time.perf_counter() - start) / 1000 * 1e6)
                results.append(statistics.median(rounds))
            return results[0], results[1]

        invoke_us, thread_us = trio.run(hop)
        print("\n3. waPC echo from trio (worker-thread hop), 100 B")
        print(f"   await Runtime.invoke                              {invoke_us:8.2f} us")
        print(f"   trio.to_thread.run_sync(no-op) alone              {thread_us:8.2f} us")

    print("\n4. actor start (median of 5; load = claims check + code + first instance)")
    for label, binary in (
        ("waPC echo", echo),
        ("waPC test actor", test_actor),
        ("kvcounter example", kvcounter),
        ("component echo", component),
    ):
        signed = sign(binary, label)
        cold, warm, inst = [], [], []
        for _ in range(5):
            # Collect the previous round's engine and stores first: their deferred
            # teardown (unmapping code and memories) would land in our timings.
            gc.collect()
            with tempfile.TemporaryDirectory() as tmp:
                with Runtime(Path(tmp), NullHandler()) as rt:
                    t0 = time.perf_counter()
                    rt.load(signed)
                    cold.append(time.perf_counter() - t0)
                gc.collect()
                with Runtime(Path(tmp), NullHandler()) as rt:  # a restarted host
                    t0 = time.perf_counter()
                    actor = rt.load(signed)
                    warm.append(time.perf_counter() - t0)
                    assert actor.from_cache
                    pool = actor.pool
                    gc.collect()
                    t0 = time.perf_counter()
                    extra = pool._factory()
                    inst.append(time.perf_counter() - t0)
                    extra.close()
                    # Drop it now: rebinding the name next round would free the old
                    # engine's last store (engine teardown, ms) inside the timing.
                    del extra, actor, pool
        ms = [statistics.median(x) * 1e3 for x in (cold, warm, inst)]
        print(
            f"   {label:18s} cold load {ms[0]:7.2f} ms   load from disk cache {ms[1]:6.2f} ms"
            f"   one more instance {ms[2]:6.3f} ms"
        )

    print("\n5. component handle(echo): generic wasmtime-py vs meshhost bulk list<u8> path")
    generic_call = component_generic(component)
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp), NullHandler()) as rt:
        aid = rt.load(signed_component).actor_id
        for size in (100, 10 * 1024):
            payload = os.urandom(size)
            assert rt.call_sync(aid, "echo", payload) == payload
            reps = 2000 if size < 1000 else 100
            fast = median_us(lambda p=payload: rt.call_sync(aid, "echo", p), reps)  # type: ignore[misc]
            slow = median_us(lambda p=payload: generic_call(p), max(10, reps // 20), rounds=3)  # type: ignore[misc]
            print(
                f"   {size:6d} B   generic {slow:9.1f} us   meshhost {fast:8.1f} us"
                f"   ({slow / fast:4.1f}x faster)"
            )
            payload_host = payload
            fast_host = median_us(lambda p=payload_host: rt.call_sync(aid, "host", p), reps)  # type: ignore[misc]
            print(f"            with a host.call of the same size inside:  {fast_host:8.1f} us")


if __name__ == "__main__":
    main()
