"""The component host: actors that are WebAssembly components of the WIT world
``meshhost:actor/actor`` (``proto/wit/actor.wit``)::

    import meshhost:actor/host@0.1.0   call(binding, namespace, operation, payload: list<u8>)
                                            -> result<list<u8>, string>
                                       log(level, message)
    export meshhost:actor/handler@0.1.0  handle(operation, payload: list<u8>)
                                            -> result<list<u8>, string>

Same semantics as waPC: ``host.call`` is ``__host_call`` (a ``MeshError`` from
the handler becomes ``err(str(exc))``), ``handle`` returning ``err`` is an
``ActorError``, a trap discards the instance (a trapped component instance
cannot be entered again).  Components that also import WASI 0.2 get
wasmtime's WASIp2 with an empty context (no files, env, args or network).

The bulk path for ``list<u8>``
------------------------------
wasmtime-py converts a ``list<u8>`` one element at a time in Python (each
byte a ``wasmtime_component_val_t`` struct written field by field): ~1.5 ms
per KiB.  The C API still needs one 32-byte struct per byte, but we can build
them all at once: a ``bytearray`` of ``32 * n`` bytes whose kind bytes are set
with one strided slice assignment (``buf[0::32] = U8 * n``) and whose values
are set with another (``buf[8::32] = payload``), copied into a C list with one
``memmove``.  Lifting reads ``string_at(list.data, 32 * n)[8::32]``.  Python
work is then a few us per KiB; what remains is wasmtime's own per-element
``Val`` conversion in Rust (see ``bench/runtime.py`` for figures).

Host callbacks find their instance through a thread-local stack, because the
C API hands them only the store context: a call runs synchronously on one
thread, so the innermost running component on this thread is the caller.
"""

from __future__ import annotations

import ctypes
import threading
import time
from ctypes import byref, c_void_p
from typing import Any

import wasmtime
from wasmtime import component as wcomponent

from meshhost.errors import ActorError, ActorLoadError
from meshhost.runtime import _raw
from meshhost.runtime.api import ActorLimits, ActorRef, HostCallHandler
from meshhost.runtime.engine import Engine
from meshhost.runtime.instance import GuestInstance, HostAbort

__all__ = [
    "HANDLER_INTERFACE",
    "HOST_INTERFACE",
    "ComponentInstance",
    "ComponentProgram",
    "lift_bytes",
    "lower_bytes",
]

HOST_INTERFACE = "meshhost:actor/host@0.1.0"
HANDLER_INTERFACE = "meshhost:actor/handler@0.1.0"
WASI_PREFIX = "wasi:"

_V = _raw.ComponentVal
_VSIZE = ctypes.sizeof(_V)
_VAL_OFFSET = _V.of.offset  # where a u8 sits inside the 32-byte struct
_KIND_BOOL = _raw.KIND_BOOL
_KIND_U8 = _raw.KIND_U8
_KIND_STRING = _raw.KIND_STRING
_KIND_LIST = _raw.KIND_LIST
_KIND_RESULT = _raw.KIND_RESULT
_U8_KIND_BYTE = bytes([_KIND_U8])

_current = threading.local()


# -- value conversion ---------------------------------------------------------------


def lower_bytes(data: bytes, out: Any) -> None:
    """Write ``data`` into the C value ``out`` as a ``list<u8>`` (bulk, see module doc)."""
    n = len(data)
    lst = _raw.vallist_t()
    _raw.vallist_new_uninit(byref(lst), n)
    if n:
        buf = bytearray(_VSIZE * n)
        buf[0::_VSIZE] = _U8_KIND_BYTE * n
        buf[_VAL_OFFSET::_VSIZE] = data
        ctypes.memmove(lst.data, (ctypes.c_char * len(buf)).from_buffer(buf), len(buf))
    out.kind = _KIND_LIST
    out.of.list = lst


def lift_bytes(val: Any) -> bytes:
    """Read a ``list<u8>`` C value into ``bytes`` (bulk)."""
    lst = val.of.list
    n = lst.size
    if n == 0:
        return b""
    return ctypes.string_at(lst.data, _VSIZE * n)[_VAL_OFFSET::_VSIZE]


def lower_str(text: str, out: Any) -> None:
    out.kind = _KIND_STRING
    out.of.string = _raw.str_to_capi(text)


def lift_str(val: Any) -> str:
    s = val.of.string
    return ctypes.string_at(s.data, s.size).decode("utf-8", "replace") if s.size else ""


def _clear(val: Any) -> None:
    """Drop a C value's contents and leave it as a plain bool, so a later
    overwrite by wasmtime never frees it twice."""
    _raw.val_delete(byref(val))
    val.kind = _KIND_BOOL
    val.of.boolean = False


_error_ptr = _raw.component_error


# -- host functions ---------------------------------------------------------------------


def _host_call_impl(
    env: Any, ctx: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int
) -> int:
    inst: ComponentInstance | None = getattr(_current, "instance", None)
    if inst is None:
        return _error_ptr("meshhost host.call invoked outside a guest call")
    try:
        binding, namespace, operation = lift_str(args[0]), lift_str(args[1]), lift_str(args[2])
        payload = lift_bytes(args[3])
        if len(payload) > inst.limits.max_message_bytes:
            inst.violation = (
                f"passed a host-call payload of {len(payload)} bytes, over the "
                f"{inst.limits.max_message_bytes}-byte message limit"
            )
            return _error_ptr(inst.violation)
        inst.enter_host()
        try:
            ok, data = inst.run_host_call(binding, namespace, operation, payload)
        except BaseException as exc:  # Cancelled & co: stop the guest, re-raise later
            inst.abort = exc
            return _error_ptr("host call aborted")
        inst.leave_host(ctypes.cast(ctx, c_void_p).value or 0)
        inner = _V()
        if ok:
            lower_bytes(data, inner)
        else:
            lower_str(data.decode("utf-8", "replace"), inner)
        result = results[0]
        result.kind = _KIND_RESULT
        result.of.result.is_ok = ok
        result.of.result.val = _raw.val_new(byref(inner))
        return 0
    except HostAbort as exc:
        return _error_ptr(str(exc))
    except BaseException as exc:  # never let an exception cross into C
        return _error_ptr(f"meshhost host.call failed: {type(exc).__name__}: {exc}")


def _log_impl(
    env: Any, ctx: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int
) -> int:
    inst: ComponentInstance | None = getattr(_current, "instance", None)
    try:
        if inst is not None:
            inst.guest_log(lift_str(args[0]), lift_str(args[1]))
        return 0
    except BaseException as exc:
        return _error_ptr(f"meshhost host.log failed: {type(exc).__name__}: {exc}")


_HOST_CALL = _raw.COMPONENT_CALLBACK(_host_call_impl)
_LOG = _raw.COMPONENT_CALLBACK(_log_impl)


def _make_linker(engine: Engine, wasi: bool) -> wcomponent.Linker:
    linker = wcomponent.Linker(engine.wasm)
    if wasi:
        linker.add_wasip2()
    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        for name, callback in (("call", _HOST_CALL), ("log", _LOG)):
            _raw.component_linker_add_func(host, name, callback)
    return linker


# -- program and instance ---------------------------------------------------------------


class ComponentProgram:
    """A compiled component checked at load: what it imports and exports."""

    def __init__(self, component: wcomponent.Component, actor: ActorRef, engine: Engine) -> None:
        self.component = component
        ctype = component.type
        imports = ctype.imports(engine.wasm)
        exports = ctype.exports(engine.wasm)
        self.needs_wasi = False
        for name in imports:
            if name == HOST_INTERFACE:
                continue
            if name.startswith(WASI_PREFIX):
                self.needs_wasi = True
                continue
            raise ActorLoadError(
                actor.actor_id,
                actor.name,
                f"imports {name}; meshhost provides {HOST_INTERFACE} and WASI 0.2 only",
            )
        if HANDLER_INTERFACE not in exports:
            raise ActorLoadError(
                actor.actor_id,
                actor.name,
                f"does not export {HANDLER_INTERFACE} (world meshhost:actor/actor)",
            )
        self.linker = _make_linker(engine, self.needs_wasi)

    def instantiate(
        self, actor: ActorRef, handler: HostCallHandler, limits: ActorLimits, engine: Engine
    ) -> ComponentInstance:
        return ComponentInstance(self, actor, handler, limits, engine)


def _code_from_message(message: str) -> wasmtime.TrapCode | None:
    """Component calls report traps as errors without a code; recover the ones we need."""
    if "wasm trap: interrupt" in message:
        return wasmtime.TrapCode.INTERRUPT
    if "all fuel consumed" in message:
        return wasmtime.TrapCode.OUT_OF_FUEL
    return None


class ComponentInstance(GuestInstance):
    """One instance of an actor component in its own store."""

    def __init__(
        self,
        program: ComponentProgram,
        actor: ActorRef,
        handler: HostCallHandler,
        limits: ActorLimits,
        engine: Engine,
    ) -> None:
        super().__init__(actor, handler, limits, engine)
        if program.needs_wasi:
            self.store.set_wasi(wasmtime.WasiConfig())
        self.begin(time.monotonic() + limits.deadline_s)
        outer = getattr(_current, "instance", None)
        _current.instance = self
        try:
            instance = program.linker.instantiate(self.store, program.component)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise ActorLoadError(
                actor.actor_id, actor.name, f"cannot be instantiated: {str(exc).strip()}"
            ) from None
        finally:
            _current.instance = outer
        iface = instance.get_export_index(self.store, HANDLER_INTERFACE)
        index = instance.get_export_index(self.store, "handle", iface) if iface else None
        func = instance.get_func(self.store, index) if index else None
        if func is None:
            raise ActorLoadError(
                actor.actor_id, actor.name, f"{HANDLER_INTERFACE} has no function 'handle'"
            )
        self._check_signature(func)
        self._func = func
        self._instance = instance
        self._params = (_V * 2)()
        self._result = _V()

    def _check_signature(self, func: wcomponent.Func) -> None:
        ty = func.type(self.store)
        params = [t for _, t in ty.params]
        result = ty.result
        ok = (
            len(params) == 2
            and isinstance(params[0], wcomponent.String)
            and isinstance(params[1], wcomponent.ListType)
            and _raw.list_is_bytes(params[1])
            and isinstance(result, wcomponent.ResultType)
            and isinstance(result.ok, wcomponent.ListType)
            and _raw.list_is_bytes(result.ok)
            and isinstance(result.err, wcomponent.String)
        )
        if not ok:
            raise ActorLoadError(
                self.actor.actor_id,
                self.actor.name,
                "handle must be func(operation: string, payload: list<u8>) -> "
                "result<list<u8>, string>",
            )

    def call(self, operation: str, payload: bytes, deadline: float) -> bytes:
        """Run ``handler.handle``; same contract as :meth:`WapcInstance.call`."""
        params, result = self._params, self._result
        self.begin(deadline)
        lower_str(operation, params[0])
        lower_bytes(payload, params[1])
        outer = getattr(_current, "instance", None)
        _current.instance = self
        try:
            message = _raw.component_func_call(self._func, self.store, params, 2, result)
        finally:
            _current.instance = outer
            _clear(params[0])
            _clear(params[1])
        if message is not None:
            raise self.failure(message, _code_from_message(message))
        try:
            return self._lift_result(operation)
        finally:
            _clear(result)

    def _lift_result(self, operation: str) -> bytes:
        result = self._result
        if result.kind != _KIND_RESULT or not result.of.result.val:
            raise self.misbehaved(f"handle({operation!r}) returned a value that is not a result")
        inner = result.of.result.val.contents
        if result.of.result.is_ok:
            if inner.kind != _KIND_LIST:
                raise self.misbehaved(f"handle({operation!r}) returned ok without bytes")
            data = lift_bytes(inner)
            if len(data) > self.limits.max_message_bytes:
                raise self.misbehaved(
                    f"returned {len(data)} bytes, over the "
                    f"{self.limits.max_message_bytes}-byte message limit"
                )
            return data
        message = lift_str(inner) if inner.kind == _KIND_STRING else ""
        raise ActorError(
            self.actor.actor_id,
            self.actor.name,
            message or f"{operation!r} failed without an error message",
        )
