"""wasmtime-py's private parts, used only by meshhost/runtime/_raw.py: each one
asserted here by name and shape, so a wasmtime upgrade that moves one fails
here loudly instead of inside a guest call (issue 13, point 7)."""

from __future__ import annotations

import ctypes
import re
from importlib.metadata import version
from pathlib import Path

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as wcomponent

from meshhost.runtime import Runtime, _raw, wapc

RUNTIME = Path(_raw.__file__).parent
PRIVATE = re.compile(
    r"_ffi\b|_from_ptr|_from_raw|\._is_bytes|\._context\(\)|\._memory\)|\._func\)|\._func\._func"
)

WAT = """(module
  (memory (export "memory") 1)
  (func (export "f") (param i32 i32) (result i32) local.get 0))"""


def test_the_installed_wasmtime_is_the_one_checked() -> None:
    installed = version("wasmtime")
    assert installed == _raw.CHECKED_WASMTIME, (
        f"wasmtime {installed} is installed but meshhost/runtime/_raw.py was checked against "
        f"{_raw.CHECKED_WASMTIME}: re-check every private name it uses (this file lists them), "
        "then raise CHECKED_WASMTIME with the pin in pyproject.toml"
    )
    pin = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert f'"wasmtime=={_raw.CHECKED_WASMTIME}"' in pin


def test_every_ffi_name_used_exists() -> None:
    missing = [name for name in _raw.FFI_NAMES if not hasattr(ffi, name)]
    assert not missing, f"wasmtime._ffi lacks {missing}"
    for name in (
        "wasmtime_func_call_unchecked",
        "wasmtime_caller_context",
        "wasmtime_memory_data",
        "wasmtime_memory_data_size",
        "wasmtime_context_set_epoch_deadline",
        "wasmtime_context_set_fuel",
        "wasmtime_trap_new",
    ):
        assert hasattr(ffi.dll, name), f"wasmtime's C library lacks {name}"


def test_the_c_shapes_relied_upon() -> None:
    # component.py lowers list<u8> by writing kind bytes at 0 and values at 8 of
    # 32-byte structs; wapc.py passes 16-byte wasmtime_val_raw_t slots.
    assert ctypes.sizeof(_raw.ComponentVal) == 32
    assert _raw.ComponentVal.of.offset == 8
    assert (_raw.KIND_U8, _raw.KIND_STRING, _raw.KIND_LIST, _raw.KIND_RESULT) == (2, 12, 13, 19)
    assert ctypes.sizeof(ffi.wasmtime_func_t) == 16
    assert ffi.WASMTIME_EXTERN_MEMORY.value == 3


def test_the_private_attributes_on_live_objects() -> None:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, WAT), [])
    exports = instance.exports(store)
    func, memory = exports["f"], exports["memory"]
    assert isinstance(func, wasmtime.Func) and isinstance(memory, wasmtime.Memory)
    assert isinstance(func._func, ffi.wasmtime_func_t)
    assert isinstance(memory._memory, ffi.wasmtime_memory_t)
    assert _raw.func_address(func) == ctypes.addressof(func._func)
    assert _raw.memory_address(memory) == ctypes.addressof(memory._memory)
    ctx = ctypes.cast(_raw.store_context(store), ctypes.c_void_p).value
    assert ctx and _raw.memory_data_size(ctx, _raw.memory_address(memory)) == 65536
    # A raw call through the unchecked entry point, as wapc.py makes it.
    vals = (ctypes.c_uint64 * 4)(7, 0, 9, 0)
    trap = ctypes.c_void_p()
    err = _raw.call_unchecked(
        ctx, _raw.func_address(func), ctypes.addressof(vals), 2, ctypes.addressof(trap)
    )
    assert not err and not trap.value and vals[0] == 7
    # Errors and traps read back through the private constructors.
    assert "boom" in _raw.trap_details(_raw.trap_new("boom"))[0]
    for cls, name in (
        (wasmtime.Func, "_from_raw"),
        (wasmtime.WasmtimeError, "_from_ptr"),
        (wasmtime.Trap, "_from_ptr"),
        (wasmtime.Store, "_context"),
        (wcomponent.ListType, "_is_bytes"),
        (wcomponent.Func, "__init__"),
    ):
        assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name} is gone"
    assert "boom" in _raw.error_message(_raw.component_error("boom"))


def test_a_host_call_sees_the_store_context_as_its_caller_context(
    runtime: Runtime, test_actor: bytes
) -> None:
    # wapc.py reads guest memory through the store's context during a host call
    # instead of asking wasmtime_caller_context each time: they must be one pointer.
    seen: list[tuple[int, int]] = []
    view = wapc.WapcInstance._memory_view

    def spy(self: wapc.WapcInstance, caller: int) -> tuple[int, int]:
        seen.append((_raw.caller_context(caller), self.ctx))
        return view(self, caller)

    wapc.WapcInstance._memory_view = spy  # type: ignore[method-assign]
    try:
        actor = runtime.load(test_actor)
        assert runtime.call_sync(actor.actor_id, "echo", b"hi") == b"hi"
    finally:
        wapc.WapcInstance._memory_view = view  # type: ignore[method-assign]
    assert seen and all(caller == store for caller, store in seen)


def test_no_other_runtime_module_touches_wasmtime_privates() -> None:
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(RUNTIME.glob("*.py"))
        if path.name != "_raw.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert not offenders, "private wasmtime use outside _raw.py:\n" + "\n".join(offenders)
