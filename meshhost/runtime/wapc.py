"""The waPC host: wasmCloud 0.x actors and plain waPC guests (core modules).

ABI (import module ``wapc`` for waPC guests, ``wasmbus`` for wasmCloud 0.x
actors; same functions, all i32)::

    guest exports  __guest_call(op_len, msg_len) -> 1 ok | 0 error
                   memory; optionally _start / wapc_init / start (called once, in that order)
    host provides  __guest_request(op_ptr, msg_ptr)      host writes op and payload there
                   __guest_response(ptr, len)            guest hands over its answer
                   __guest_error(ptr, len)               guest hands over its error text
                   __host_call(bd_ptr, bd_len, ns_ptr, ns_len, op_ptr, op_len, ptr, len) -> 1 | 0
                   __host_response_len() -> len          then __host_response(ptr)
                   __host_error_len() -> len             then __host_error(ptr)
                   __console_log(ptr, len)

Only the functions a module imports are defined (real actors import subsets).
WASI preview1 imports are satisfied by :mod:`meshhost.runtime.wasi`, and
AssemblyScript's ``env.abort`` / ``env.seed`` / ``env.trace`` here (abort
traps with the guest's message).  Any other import refuses the module at
load.  Pointers and lengths from the guest are bounds-checked against its
memory and :attr:`ActorLimits.max_message_bytes`; a bad one traps the call as
:class:`~meshhost.errors.ActorMisbehaved`.

Hot path (see :mod:`meshhost.runtime._raw`): ``__guest_call`` is called with
``wasmtime_func_call_unchecked`` on a preallocated raw value array, host
functions are ``wasmtime_func_new_unchecked`` callbacks dispatched through
one ctypes trampoline, and memory is copied with ``memmove``/``string_at``.
"""

from __future__ import annotations

import ctypes
import itertools
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import wasmtime

from meshhost.errors import ActorError, ActorLoadError, ActorRuntimeError, DecodeError
from meshhost.runtime import _raw, wasi
from meshhost.runtime.api import ActorLimits, ActorRef, HostCallHandler
from meshhost.runtime.engine import Engine
from meshhost.runtime.instance import GuestInstance, HostAbort
from meshhost.wire import Limits, Reader

__all__ = ["START_FUNCTIONS", "WAPC_MODULES", "WapcInstance", "WapcProgram"]

WAPC_MODULES = ("wapc", "wasmbus")
START_FUNCTIONS = ("_start", "wapc_init", "start")
"""Called once after instantiation when exported.  TinyGo and AssemblyScript
need ``_start`` (runtime init), Rust waPC guests register handlers in
``wapc_init``; order as in the waPC reference host."""

_I32 = "i32"
WAPC_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "__guest_request": ((_I32, _I32), ()),
    "__guest_response": ((_I32, _I32), ()),
    "__guest_error": ((_I32, _I32), ()),
    "__host_call": ((_I32,) * 8, (_I32,)),
    "__host_response_len": ((), (_I32,)),
    "__host_response": ((_I32,), ()),
    "__host_error_len": ((), (_I32,)),
    "__host_error": ((_I32,), ()),
    "__console_log": ((_I32, _I32), ()),
}

ASSEMBLYSCRIPT_ENV: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "abort": ((_I32,) * 4, ()),
    "seed": ((), ("f64",)),
    "trace": ((_I32, _I32) + ("f64",) * 5, ()),
}
"""The ``env`` imports an AssemblyScript actor makes (the AS runtime's abort,
Math.random seed and trace); other ``env`` imports are refused."""

M32 = 0xFFFFFFFF

# env id -> host function; one trampoline serves every instance.  Entries are
# removed when their instance closes.  dict ops are atomic under the GIL.
HostFn = Callable[[int, Any], int]
_HOST_FUNCS: dict[int, HostFn] = {}
_ENV_IDS = itertools.count(1)


def _dispatch(env: int, caller: int, args: Any, nargs: int) -> int:
    # Must never raise: ctypes would print the error and return 0 ("ok").
    try:
        return _HOST_FUNCS[env](caller, args)
    except BaseException as exc:
        return _raw.trap_new(f"meshhost host function failed: {type(exc).__name__}: {exc}")


_trampoline = _raw.RAW_CALLBACK(_dispatch)


def _sig(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


class WapcProgram:
    """A compiled waPC module checked once at load: its import plan and exports."""

    def __init__(self, module: wasmtime.Module, actor: ActorRef) -> None:
        self.module = module
        self.imports: list[tuple[str, str, Any]] = []
        imported_memory = False
        for imp in module.imports:
            where = f"{imp.module}.{imp.name}"
            ty = imp.type
            if imp.module in WAPC_MODULES:
                expected = WAPC_SIGNATURES.get(imp.name or "")
                if expected is None:
                    raise ActorLoadError(
                        actor.actor_id,
                        actor.name,
                        f"imports {where}, which is not part of the waPC ABI",
                    )
                if not isinstance(ty, wasmtime.FuncType) or _sig(ty) != expected:
                    raise ActorLoadError(
                        actor.actor_id,
                        actor.name,
                        f"imports {where} with the wrong type {ty}; waPC defines it as {expected}",
                    )
                self.imports.append(("wapc", imp.name or "", ty))
            elif imp.module in wasi.WASI_MODULES:
                if not isinstance(ty, wasmtime.FuncType):
                    raise ActorLoadError(
                        actor.actor_id, actor.name, f"imports {where} as a non-function"
                    )
                self.imports.append(("wasi", imp.name or "", ty))
            elif (
                imp.module == "env"
                and isinstance(ty, wasmtime.FuncType)
                and _sig(ty) == ASSEMBLYSCRIPT_ENV.get(imp.name or "")
            ):
                self.imports.append(("env", imp.name or "", ty))
            elif (
                imp.module == "env" and isinstance(ty, wasmtime.MemoryType) and not imported_memory
            ):
                # Built with --import-memory: the host makes it (under the store's cap).
                imported_memory = True
                self.imports.append(("memory", imp.name or "", ty))
            else:
                raise ActorLoadError(
                    actor.actor_id,
                    actor.name,
                    f"imports {where}; meshhost provides only the waPC ABI "
                    f"(module 'wapc' or 'wasmbus') and WASI preview1",
                )
        exports = {e.name: e.type for e in module.exports}
        call_ty = exports.get("__guest_call")
        if not isinstance(call_ty, wasmtime.FuncType) or _sig(call_ty) != ((_I32, _I32), (_I32,)):
            raise ActorLoadError(
                actor.actor_id,
                actor.name,
                "does not export __guest_call(i32, i32) -> i32: not a waPC actor",
            )
        if not imported_memory and not isinstance(exports.get("memory"), wasmtime.MemoryType):
            raise ActorLoadError(
                actor.actor_id, actor.name, "neither exports its memory as 'memory' nor imports one"
            )
        self.starts = [
            name
            for name in START_FUNCTIONS
            if isinstance(fn := exports.get(name), wasmtime.FuncType) and _sig(fn) == ((), ())
        ]

    def instantiate(
        self, actor: ActorRef, handler: HostCallHandler, limits: ActorLimits, engine: Engine
    ) -> WapcInstance:
        return WapcInstance(self, actor, handler, limits, engine)


def _is_container(first: int) -> bool:
    """msgpack map or array header (fixmap, fixarray, array16/32, map16/32)."""
    return 0x80 <= first <= 0x9F or 0xDC <= first <= 0xDF


_ANSWER_WIRE = Reader(DecodeError)
_ANY_ANSWER = Limits(max_bytes=sys.maxsize, max_ext=None)
"""The answer is already in guest memory's copy; only whether it parses is asked."""


def trim_stray_trailer(response: bytes) -> bytes:
    """Drop one stray ``0x00`` after an otherwise complete msgpack map or array.

    One real AssemblyScript actor appends it to its msgpack answer; a strict
    decoder downstream would reject the whole answer.  Only map/array answers
    (every wasmCloud 0.x response struct) are repaired, so short binary
    answers that merely end in a zero byte are left as they are.
    """
    if len(response) < 2 or response[-1] != 0 or not _is_container(response[0]):
        return response
    try:
        _ANSWER_WIRE.unpack(response, _ANY_ANSWER, "answer")
    except DecodeError:
        try:
            _ANSWER_WIRE.unpack(response[:-1], _ANY_ANSWER, "answer")
        except DecodeError:
            return response  # not msgpack at all: not ours to repair
        return response[:-1]
    return response


class WapcInstance(GuestInstance):
    """One instance of a waPC module in its own store."""

    def __init__(
        self,
        program: WapcProgram,
        actor: ActorRef,
        handler: HostCallHandler,
        limits: ActorLimits,
        engine: Engine,
    ) -> None:
        super().__init__(actor, handler, limits, engine)
        self.max_message = limits.max_message_bytes
        self._env_ids: list[int] = []
        self._mem_addr: int | None = None
        self._memory: wasmtime.Memory | None = None
        # per-call exchange buffers
        self.op = b""
        self.payload = b""
        self.response: bytes | None = None
        self.guest_error: bytes | None = None
        self.host_response = b""
        self.host_error = b""
        self.wasi = wasi.WasiState()

        context = _raw.store_context(self.store)
        self._funcs: list[Any] = []  # the externs, in import order
        imported: wasmtime.Memory | None = None
        for family, name, ty in program.imports:
            if family == "memory":
                try:
                    imported = wasmtime.Memory(self.store, ty)
                except wasmtime.WasmtimeError as exc:
                    self.close()
                    raise ActorLoadError(
                        actor.actor_id, actor.name, f"cannot be instantiated: {exc}"
                    ) from None
                self._memory = imported
                self._mem_addr = _raw.memory_address(imported)
                self._funcs.append(imported)
                continue
            if family == "wapc":
                fn = getattr(self, name[1:])
            elif family == "env":
                fn = getattr(self, f"_env_{name}")
            else:
                fn = wasi.stub(self, name, ty)
            env = next(_ENV_IDS)
            _HOST_FUNCS[env] = fn
            self._env_ids.append(env)
            self._funcs.append(_raw.new_host_func(context, ty, _trampoline, env))

        self.begin(time.monotonic() + limits.deadline_s)
        if engine.consume_fuel:
            self.store.set_fuel(limits.fuel or (1 << 63) - 1)
        try:
            instance = wasmtime.Instance(self.store, program.module, self._funcs)
        except wasmtime.Trap as trap:
            self.close()
            raise self._start_failure(trap.message, trap.trap_code) from None
        except wasmtime.WasmtimeError as exc:
            self.close()
            raise ActorLoadError(
                actor.actor_id, actor.name, f"cannot be instantiated: {exc}"
            ) from None
        exports = instance.exports(self.store)
        memory = imported or exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self._memory = memory
        self._mem_addr = _raw.memory_address(memory)
        guest_call = exports["__guest_call"]
        assert isinstance(guest_call, wasmtime.Func)
        self._guest_call = guest_call  # keeps the func struct alive
        self._call_addr = _raw.func_address(guest_call)
        self._vals = (ctypes.c_uint64 * 4)()  # 2 params / 1 result, 16 bytes each
        self._vals_addr = ctypes.addressof(self._vals)
        self._trap = ctypes.c_void_p()
        self._trap_addr = ctypes.addressof(self._trap)
        self._instance = instance
        for name in program.starts:
            start = exports[name]
            assert isinstance(start, wasmtime.Func)
            self._run_start(name, start)

    # -- calling the guest ------------------------------------------------------

    def _invoke(self, func_addr: int, nvals: int) -> None:
        """Run a guest function; raise the typed failure on trap or error."""
        self._trap.value = None
        err = _raw.call_unchecked(self.ctx, func_addr, self._vals_addr, nvals, self._trap_addr)
        if err:
            raise self.failure(_raw.error_message(err), None)
        if self._trap.value:
            raise self.failure(*_raw.trap_details(self._trap.value))

    def _run_start(self, name: str, func: wasmtime.Func) -> None:
        self.begin(time.monotonic() + self.limits.deadline_s)
        try:
            self._invoke(_raw.func_address(func), 0)
        except ActorRuntimeError as exc:
            if self.exit_code == 0:  # WASI programs may proc_exit(0) at the end of _start
                return
            self.close()
            raise ActorLoadError(
                self.actor.actor_id,
                self.actor.name,
                f"its start function {name} failed: {exc.reason}",
            ) from None

    def _start_failure(self, message: str, code: wasmtime.TrapCode | None) -> BaseException:
        failure = self.failure(message, code)
        if not isinstance(failure, ActorRuntimeError):
            return failure  # e.g. trio.Cancelled from a host call: never swallowed
        return ActorLoadError(
            self.actor.actor_id, self.actor.name, f"trapped while instantiating: {failure.reason}"
        )

    def call(self, operation: str, payload: bytes, deadline: float) -> bytes:
        """Run one waPC invocation; return the guest's response.

        Raises ``ActorError`` when the guest answers with an error (the
        instance stays usable), or another ``ActorRuntimeError`` when it
        traps, hits a limit or breaks the ABI (discard the instance).
        """
        op = operation.encode()
        self.op = op
        self.payload = payload
        self.response = None
        self.guest_error = None
        self.host_response = b""
        self.host_error = b""
        self.begin(deadline)
        vals = self._vals
        vals[0] = len(op)
        vals[2] = len(payload)
        self._invoke(self._call_addr, 2)
        if vals[0] & M32 == 1:
            if self.response is None:
                raise self.misbehaved(
                    f"reported success for {operation!r} without calling __guest_response"
                )
            return trim_stray_trailer(self.response)
        message = (self.guest_error or b"").decode("utf-8", "replace")
        raise ActorError(
            self.actor.actor_id,
            self.actor.name,
            message or f"{operation!r} failed without an error message",
        )

    # -- guest memory -----------------------------------------------------------

    def _memory_view(self, caller: int) -> tuple[int, int]:
        """(base address, size in bytes) of the guest's memory right now.  Asked
        anew on every host call because ``memory.grow`` may move and resize it.
        The store's own context stands for the caller's (the same pointer, which
        test_runtime_private_api checks): one C call fewer per host call."""
        ctx = self.ctx
        mem = self._mem_addr
        if mem is None:  # a start section runs before we know the export
            early = _raw.caller_memory(caller)
            if early is None:
                raise self._violate("has no memory export to exchange data through")
            self._early_mem = early
            mem = ctypes.addressof(self._early_mem)
        return _raw.memory_data(ctx, mem) or 0, _raw.memory_data_size(ctx, mem)

    def _check(self, ptr: int, length: int, size: int, limit: bool = True) -> None:
        if limit and length > self.max_message:
            raise self._violate(
                f"passed a length of {length} bytes, over the {self.max_message}-byte message limit"
            )
        if ptr + length > size:
            raise self._violate(
                f"passed a pointer range {ptr}..{ptr + length} outside its {size}-byte memory"
            )

    def _violate(self, reason: str) -> HostAbort:
        self.violation = reason
        return HostAbort(reason)

    def read(self, caller: int, ptr: int, length: int) -> bytes:
        """Copy ``length`` bytes at ``ptr`` out of guest memory (bounds-checked)."""
        if length == 0:
            return b""
        base, size = self._memory_view(caller)
        self._check(ptr, length, size)
        return ctypes.string_at(base + ptr, length)

    def write(self, caller: int, ptr: int, data: bytes) -> None:
        """Copy ``data`` into guest memory at ``ptr`` (bounds-checked)."""
        if not data:
            return
        base, size = self._memory_view(caller)
        self._check(ptr, len(data), size, limit=False)  # host data: only bounds matter
        ctypes.memmove(base + ptr, data, len(data))

    def memory_at_cap(self) -> bool:
        if self._memory is None:
            return False
        size = self._memory.data_len(self.store)
        return size + 65536 > self.limits.memory_bytes

    # -- host functions: method _x serves waPC import __x ---------------------------
    # Each takes (caller, args) and returns 0 or a trap pointer.  args[2k] is argument k;
    # a result is written to args[0].

    def _guest_request(self, caller: int, args: Any) -> int:
        op, payload = self.op, self.payload
        op_ptr, ptr = args[0] & M32, args[2] & M32
        try:
            base, size = self._memory_view(caller)
            self._check(op_ptr, len(op), size, limit=False)
            self._check(ptr, len(payload), size, limit=False)
        except HostAbort as exc:
            return _raw.trap_new(str(exc))
        ctypes.memmove(base + op_ptr, op, len(op))
        ctypes.memmove(base + ptr, payload, len(payload))
        return 0

    def _guest_response(self, caller: int, args: Any) -> int:
        try:
            self.response = self.read(caller, args[0] & M32, args[2] & M32)
            return 0
        except HostAbort as exc:
            return _raw.trap_new(str(exc))

    def _guest_error(self, caller: int, args: Any) -> int:
        try:
            self.guest_error = self.read(caller, args[0] & M32, args[2] & M32)
            return 0
        except HostAbort as exc:
            return _raw.trap_new(str(exc))

    def _host_call(self, caller: int, args: Any) -> int:
        try:
            binding = self.read(caller, args[0] & M32, args[2] & M32).decode("utf-8", "replace")
            namespace = self.read(caller, args[4] & M32, args[6] & M32).decode("utf-8", "replace")
            operation = self.read(caller, args[8] & M32, args[10] & M32).decode("utf-8", "replace")
            payload = self.read(caller, args[12] & M32, args[14] & M32)
            self.enter_host()
            try:
                ok, data = self.run_host_call(binding, namespace, operation, payload)
            except BaseException as exc:  # Cancelled & co: stop the guest, re-raise later
                self.abort = exc
                return _raw.trap_new("host call aborted")
            self.leave_host(_raw.caller_context(caller))
        except HostAbort as exc:
            return _raw.trap_new(str(exc))
        if ok:
            self.host_response, self.host_error = data, b""
        else:
            self.host_response, self.host_error = b"", data
        args[0] = 1 if ok else 0
        return 0

    def _host_response_len(self, caller: int, args: Any) -> int:
        args[0] = len(self.host_response)
        return 0

    def _host_response(self, caller: int, args: Any) -> int:
        try:
            self.write(caller, args[0] & M32, self.host_response)
            return 0
        except HostAbort as exc:
            return _raw.trap_new(str(exc))

    def _host_error_len(self, caller: int, args: Any) -> int:
        args[0] = len(self.host_error)
        return 0

    def _host_error(self, caller: int, args: Any) -> int:
        try:
            self.write(caller, args[0] & M32, self.host_error)
            return 0
        except HostAbort as exc:
            return _raw.trap_new(str(exc))

    def _console_log(self, caller: int, args: Any) -> int:
        try:
            text = self.read(caller, args[0] & M32, args[2] & M32).decode("utf-8", "replace")
        except HostAbort as exc:
            return _raw.trap_new(str(exc))
        self.guest_log("info", text)
        return 0

    # -- AssemblyScript runtime imports ---------------------------------------------------

    def _as_string(self, caller: int, ptr: int) -> str:
        """An AssemblyScript string: UTF-16LE at ``ptr``, byte length at ``ptr - 4``."""
        if ptr < 4:
            return ""
        try:
            (length,) = struct.unpack("<I", self.read(caller, ptr - 4, 4))
            return self.read(caller, ptr, min(length, 4096)).decode("utf-16-le", "replace")
        except HostAbort:
            self.violation = None  # a bad message pointer must not hide the abort itself
            return ""

    def _env_abort(self, caller: int, args: Any) -> int:
        message = self._as_string(caller, args[0] & M32)
        where = self._as_string(caller, args[2] & M32)
        reason = f"guest aborted: {message or 'no message'}"
        if where:
            reason += f" at {where}:{args[4] & M32}:{args[6] & M32}"
        return _raw.trap_new(reason)

    def _env_seed(self, caller: int, args: Any) -> int:
        (args[0],) = struct.unpack("<Q", struct.pack("<d", float(time.time_ns())))
        return 0

    def _env_trace(self, caller: int, args: Any) -> int:
        count = args[2] & M32
        values = [
            struct.unpack("<d", struct.pack("<Q", args[4 + 2 * i]))[0] for i in range(min(count, 5))
        ]
        text = self._as_string(caller, args[0] & M32)
        self.guest_log("debug", " ".join([text, *(f"{v:g}" for v in values)]))
        return 0

    def close(self) -> None:
        for env in self._env_ids:
            _HOST_FUNCS.pop(env, None)
        self._env_ids.clear()
