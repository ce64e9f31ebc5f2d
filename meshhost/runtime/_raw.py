"""Direct ctypes prototypes for the few wasmtime C functions on the hot path.

Why: wasmtime-py's ``Func.__call__`` checks types and converts every
argument through ``Val`` objects (~25 us per call on this machine); its host
function trampoline builds a ``Caller`` and ``Val`` per argument.  Calling
``wasmtime_func_call_unchecked`` with a preallocated ``wasmtime_val_raw_t``
array, and defining host functions with ``wasmtime_func_new_unchecked``, costs
~1 us per crossing.  Guest memory is read and written with ``string_at`` /
``memmove`` at ``wasmtime_memory_data() + offset``: one bulk copy, never a
per-byte list.

The prototypes take plain ``c_void_p`` integers so that calls skip ctypes'
argument type conversion.  All pointers handed in are kept alive by their
owners (``wasmtime.Store``, the instance's ``wasmtime_func_t`` structs).
ctypes releases the GIL during these calls, so guests on worker threads run
in parallel with the trio thread.

This is also the one module that touches wasmtime-py's private parts (its
``_ffi`` C bindings and the ``_func`` / ``_memory`` / ``_context`` /
``_from_ptr`` / ``_from_raw`` / ``_is_bytes`` attributes): wapc.py,
component.py and instance.py reach them only through the names below, and
tests/runtime/test_runtime_private_api.py asserts every one of them (and
the C struct sizes and offsets relied upon), so a wasmtime upgrade that
moves one fails there, by name, instead of deep inside a guest call.
wasmtime is pinned exactly in pyproject.toml for the same reason.
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, c_size_t, c_uint64, c_void_p
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as wcomponent

__all__ = [
    "CHECKED_WASMTIME",
    "COMPONENT_CALLBACK",
    "FFI_NAMES",
    "NO_FINALIZER",
    "RAW_CALLBACK",
    "ComponentVal",
    "call_unchecked",
    "caller_context",
    "caller_memory",
    "component_error",
    "component_func_call",
    "component_linker_add_func",
    "context_set_epoch_deadline",
    "context_set_fuel",
    "error_message",
    "func_address",
    "func_new_unchecked",
    "list_is_bytes",
    "memory_address",
    "memory_data",
    "memory_data_size",
    "new_host_func",
    "store_context",
    "trap_details",
    "trap_new",
]

CHECKED_WASMTIME = "50.0.1"
"""The wasmtime-py release whose private parts were checked against this module;
tests/runtime/test_runtime_private_api.py fails on any other until the list is
re-checked and this is raised with the pin in pyproject.toml."""

_dll = ffi.dll


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    address = ctypes.cast(getattr(_dll, name), c_void_p).value
    if address is None:
        raise ImportError(f"wasmtime's C library lacks {name}")
    return CFUNCTYPE(restype, *argtypes)(address)


# wasmtime_error_t* wasmtime_func_call_unchecked(ctx, const wasmtime_func_t*,
#     wasmtime_val_raw_t* args_and_results, size_t len, wasm_trap_t** trap)
call_unchecked = _proto(
    "wasmtime_func_call_unchecked", c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p
)
caller_context = _proto("wasmtime_caller_context", c_void_p, c_void_p)
memory_data = _proto("wasmtime_memory_data", c_void_p, c_void_p, c_void_p)
memory_data_size = _proto("wasmtime_memory_data_size", c_size_t, c_void_p, c_void_p)
context_set_epoch_deadline = _proto("wasmtime_context_set_epoch_deadline", None, c_void_p, c_uint64)
context_set_fuel = _proto("wasmtime_context_set_fuel", c_void_p, c_void_p, c_uint64)
_trap_new = _proto("wasmtime_trap_new", c_void_p, ctypes.c_char_p, c_size_t)

# size_t callback(void* env, wasmtime_caller_t*, wasmtime_val_raw_t* args_and_results,
#                 size_t len) -> wasm_trap_t* (0 = ok).  Each val_raw is 16 bytes,
# so argument k is at index 2*k of a uint64 view; i32 values sit in its low half.
RAW_CALLBACK: Any = CFUNCTYPE(c_size_t, c_void_p, c_void_p, ctypes.POINTER(c_uint64), c_size_t)
NO_FINALIZER = ctypes.cast(0, CFUNCTYPE(None, c_void_p))


def func_new_unchecked(
    context: object, functype_ptr: object, callback: object, env: int, out: ffi.wasmtime_func_t
) -> None:
    """Create a host function in the store behind ``context`` whose calls go to
    ``callback(env, caller, args, n)``; writes the new func into ``out``."""
    ffi.wasmtime_func_new_unchecked(
        context,
        functype_ptr,
        ctypes.cast(callback, ffi.wasmtime_func_unchecked_callback_t),  # type: ignore[arg-type]
        env,
        NO_FINALIZER,
        ctypes.byref(out),
    )


def trap_new(message: str) -> int:
    """A new ``wasm_trap_t*`` (as an int) carrying ``message``; wasmtime takes ownership
    when a host callback returns it."""
    raw = message.encode("utf-8", "replace")
    return int(_trap_new(raw, len(raw)))


# -- private attributes of wasmtime-py's objects --------------------------------------


def store_context(store: wasmtime.Store) -> Any:
    """The store's ``wasmtime_context_t*`` (a ctypes pointer)."""
    return store._context()


def func_address(func: wasmtime.Func) -> int:
    """Address of the ``wasmtime_func_t`` behind ``func`` (kept alive by ``func``)."""
    return ctypes.addressof(func._func)


def memory_address(memory: wasmtime.Memory) -> int:
    """Address of the ``wasmtime_memory_t`` behind ``memory`` (kept alive by ``memory``)."""
    return ctypes.addressof(memory._memory)


def new_host_func(context: object, functype: wasmtime.FuncType, callback: object, env: int) -> Any:
    """A ``wasmtime.Func`` whose calls go to ``callback(env, caller, args, n)`` (see
    ``func_new_unchecked``), usable as an import of ``wasmtime.Instance``."""
    raw = ffi.wasmtime_func_t()
    func_new_unchecked(context, functype.ptr(), callback, env, raw)
    return wasmtime.Func._from_raw(raw)


def error_message(err: int) -> str:
    """The text of a ``wasmtime_error_t*`` returned by a C call (and frees it)."""
    return str(
        wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)))
    )


def trap_details(trap: int) -> tuple[str, wasmtime.TrapCode | None]:
    """(message, code) of a ``wasm_trap_t*`` returned by a C call (and frees it)."""
    obj = wasmtime.Trap._from_ptr(ctypes.cast(trap, ctypes.POINTER(ffi.wasm_trap_t)))
    return obj.message, obj.trap_code


def caller_memory(caller: int) -> Any:
    """The calling instance's exported ``memory`` as a ``wasmtime_memory_t``, or
    None: for a host call made before the instance's exports are known."""
    ext = ffi.wasmtime_extern_t()
    name = b"memory"
    found = ffi.wasmtime_caller_export_get(
        ctypes.cast(caller, ctypes.POINTER(ffi.wasmtime_caller_t)),
        name,
        len(name),
        ctypes.byref(ext),
    )
    if not found or ext.kind != ffi.WASMTIME_EXTERN_MEMORY:
        return None
    return ext.of.memory


# -- the component model's C API (wasmtime-py wraps it one value at a time) -----------

ComponentVal: Any = ffi.wasmtime_component_val_t
"""``wasmtime_component_val_t``: 32 bytes, kind byte at 0, value at 8."""
COMPONENT_CALLBACK: Any = ffi.wasmtime_component_func_callback_t
KIND_BOOL: int = ffi.WASMTIME_COMPONENT_BOOL.value
KIND_U8: int = ffi.WASMTIME_COMPONENT_U8.value
KIND_STRING: int = ffi.WASMTIME_COMPONENT_STRING.value
KIND_LIST: int = ffi.WASMTIME_COMPONENT_LIST.value
KIND_RESULT: int = ffi.WASMTIME_COMPONENT_RESULT.value
vallist_t: Any = ffi.wasmtime_component_vallist_t
vallist_new_uninit: Any = ffi.wasmtime_component_vallist_new_uninit
val_new: Any = ffi.wasmtime_component_val_new
val_delete: Any = ffi.wasmtime_component_val_delete
str_to_capi: Any = ffi.str_to_capi


def component_error(message: str) -> int:
    """A new ``wasmtime_error_t*`` (as an int) for a component host function to return."""
    return (
        ctypes.cast(ffi.wasmtime_error_new(message.encode("utf-8", "replace")), c_void_p).value or 0
    )


def component_linker_add_func(instance: Any, name: str, callback: object) -> None:
    """Define ``name`` in a linker instance (``LinkerInstance``) as ``callback``;
    raises ``wasmtime.WasmtimeError``."""
    raw = name.encode()
    err = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(raw), len(raw), callback, None, NO_FINALIZER
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)


def component_func_call(
    func: wcomponent.Func, store: wasmtime.Store, params: Any, nparams: int, result: Any
) -> str | None:
    """Call a component function with C values; None, or the error's text."""
    err = ffi.wasmtime_component_func_call(
        ctypes.byref(func._func), store._context(), params, nparams, ctypes.byref(result), 1
    )
    if err:
        return str(wasmtime.WasmtimeError._from_ptr(err))
    return None


def list_is_bytes(ty: wcomponent.ListType) -> bool:
    """Whether a component ``list`` type is ``list<u8>``."""
    return bool(ty._is_bytes())


FFI_NAMES = (
    "dll",
    "wasmtime_func_t",
    "wasmtime_func_new_unchecked",
    "wasmtime_func_unchecked_callback_t",
    "wasmtime_error_t",
    "wasm_trap_t",
    "wasmtime_extern_t",
    "wasmtime_caller_t",
    "wasmtime_caller_export_get",
    "WASMTIME_EXTERN_MEMORY",
    "wasmtime_component_val_t",
    "wasmtime_component_func_callback_t",
    "WASMTIME_COMPONENT_BOOL",
    "WASMTIME_COMPONENT_U8",
    "WASMTIME_COMPONENT_STRING",
    "WASMTIME_COMPONENT_LIST",
    "WASMTIME_COMPONENT_RESULT",
    "wasmtime_component_vallist_t",
    "wasmtime_component_vallist_new_uninit",
    "wasmtime_component_val_new",
    "wasmtime_component_val_delete",
    "wasmtime_component_linker_instance_add_func",
    "wasmtime_component_func_call",
    "wasmtime_error_new",
    "str_to_capi",
)
"""Every name of ``wasmtime._ffi`` this module uses (the upgrade test checks each)."""
