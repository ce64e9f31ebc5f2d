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
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, c_size_t, c_uint64, c_void_p
from typing import Any

from wasmtime import _ffi as ffi

__all__ = [
    "NO_FINALIZER",
    "RAW_CALLBACK",
    "call_unchecked",
    "caller_context",
    "context_set_epoch_deadline",
    "context_set_fuel",
    "func_new_unchecked",
    "memory_data",
    "memory_data_size",
    "trap_new",
]

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
