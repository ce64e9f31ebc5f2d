"""Safe WASI preview1 stubs for waPC actors.

wasmCloud 0.x actors built with Rust or TinyGo often import a few WASI
functions (``fd_write`` for panics and prints, ``random_get``,
``clock_time_get``, ``environ_*``, ``proc_exit``).  An actor gets no files,
no sockets, no environment and no arguments:

* ``fd_write`` to fd 1/2 goes to the handler's ``log`` (levels ``info`` /
  ``error``), line by line; other fds are ``EBADF``.
* ``fd_read`` of stdin reads end-of-file; ``fd_fdstat_get`` describes fds
  0-2 as character devices; ``fd_prestat_get`` says there are no preopens.
* ``random_get`` fills from ``os.urandom``; ``clock_time_get`` and
  ``clock_res_get`` give real time (wall and monotonic clocks).
* ``environ_*`` and ``args_*`` report nothing; ``sched_yield`` does nothing.
* ``proc_exit(code)`` stops the guest (a trap); code 0 during a start
  function counts as a clean end of initialisation.
* Every other WASI function returns ``ENOSYS`` (or traps if its type has no
  errno result).

Only the functions the module imports are defined.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

import wasmtime

from meshhost.runtime import _raw
from meshhost.runtime.instance import HostAbort

__all__ = ["WASI_MODULES", "WasiState", "stub"]

WASI_MODULES = ("wasi_snapshot_preview1", "wasi_unstable")

ERRNO_SUCCESS = 0
ERRNO_BADF = 8
ERRNO_INVAL = 28
ERRNO_NOSYS = 52

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME = 2
CLOCK_THREAD_CPUTIME = 3

FILETYPE_CHARACTER_DEVICE = 2
MAX_LOG_LINE = 16 * 1024
"""Longest buffered stdout/stderr line before it is flushed to the log anyway."""
MAX_IOVECS = 1024
"""Upper bound on iovecs per fd_write (Linux IOV_MAX), checked before reading them."""

M32 = 0xFFFFFFFF


class WasiState:
    """Per-instance WASI state: partial output lines of stdout and stderr."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}


HostFn = Callable[[int, Any], int]


class WapcInstance(Protocol):
    """What a WASI function needs of the waPC instance it serves (a
    :class:`~meshhost.runtime.wapc.WapcInstance`; a protocol here, so wasi does
    not import the module that imports it)."""

    wasi: WasiState
    exit_code: int | None

    def read(self, caller: int, ptr: int, length: int) -> bytes: ...

    def write(self, caller: int, ptr: int, data: bytes) -> None: ...

    def guest_log(self, level: str, message: str) -> None: ...


def stub(inst: WapcInstance, name: str, ty: wasmtime.FuncType) -> HostFn:
    """The host function serving WASI import ``name`` for ``inst``."""
    impl = _IMPLS.get(name)
    if impl is not None:
        params = tuple(str(p) for p in ty.params)
        results = tuple(str(r) for r in ty.results)
        if (params, results) == _IMPL_TYPES[name]:
            return lambda caller, args: _run(impl, inst, caller, args)
    if tuple(str(r) for r in ty.results) == ("i32",):

        def nosys(caller: int, args: Any) -> int:
            args[0] = ERRNO_NOSYS
            return 0

        return nosys

    def unsupported(caller: int, args: Any) -> int:
        return _raw.trap_new(f"WASI function {name} is not supported by meshhost")

    return unsupported


def _run(
    impl: Callable[[WapcInstance, int, Any], int], inst: WapcInstance, caller: int, args: Any
) -> int:
    try:
        errno = impl(inst, caller, args)
    except HostAbort as exc:
        return _raw.trap_new(str(exc))
    if errno is not None:
        args[0] = errno
    return 0


def _u32(args: Any, k: int) -> int:
    return int(args[2 * k]) & M32


def fd_write(inst: WapcInstance, caller: int, args: Any) -> int:
    fd, iovs, n, out = _u32(args, 0), _u32(args, 1), _u32(args, 2), _u32(args, 3)
    if fd not in (1, 2):
        return ERRNO_BADF
    if n > MAX_IOVECS:
        return ERRNO_INVAL
    table = inst.read(caller, iovs, 8 * n)
    total = 0
    buf = inst.wasi.lines[fd]
    for i in range(n):
        ptr, length = struct.unpack_from("<II", table, 8 * i)
        data = inst.read(caller, ptr, length)
        total += length
        buf += data
    level = "info" if fd == 1 else "error"
    while True:
        cut = buf.find(b"\n")
        if cut < 0:
            break
        inst.guest_log(level, buf[:cut].decode("utf-8", "replace"))
        del buf[: cut + 1]
    if len(buf) > MAX_LOG_LINE:
        inst.guest_log(level, buf.decode("utf-8", "replace"))
        buf.clear()
    inst.write(caller, out, struct.pack("<I", total))
    return ERRNO_SUCCESS


def fd_read(inst: WapcInstance, caller: int, args: Any) -> int:
    if _u32(args, 0) != 0:
        return ERRNO_BADF
    inst.write(caller, _u32(args, 3), b"\0\0\0\0")  # 0 bytes: end of file
    return ERRNO_SUCCESS


def fd_fdstat_get(inst: WapcInstance, caller: int, args: Any) -> int:
    if _u32(args, 0) > 2:
        return ERRNO_BADF
    # struct fdstat { u8 filetype; u16 flags; u64 rights_base; u64 rights_inheriting } = 24 bytes
    inst.write(
        caller,
        _u32(args, 1),
        struct.pack("<BxHxxxxQQ", FILETYPE_CHARACTER_DEVICE, 0, (1 << 64) - 1, 0),
    )
    return ERRNO_SUCCESS


def fd_badf(inst: WapcInstance, caller: int, args: Any) -> int:
    return ERRNO_BADF


def random_get(inst: WapcInstance, caller: int, args: Any) -> int:
    length = _u32(args, 1)
    inst.read(caller, _u32(args, 0), length)  # bounds check before generating
    inst.write(caller, _u32(args, 0), os.urandom(length))
    return ERRNO_SUCCESS


def _clock_ns(clock_id: int) -> int | None:
    if clock_id == CLOCK_REALTIME:
        return time.time_ns()
    if clock_id == CLOCK_MONOTONIC:
        return time.monotonic_ns()
    if clock_id == CLOCK_PROCESS_CPUTIME:
        return time.process_time_ns()
    if clock_id == CLOCK_THREAD_CPUTIME:
        return time.thread_time_ns()
    return None


def clock_time_get(inst: WapcInstance, caller: int, args: Any) -> int:
    now = _clock_ns(_u32(args, 0))
    if now is None:
        return ERRNO_INVAL
    inst.write(caller, _u32(args, 2), struct.pack("<Q", now))
    return ERRNO_SUCCESS


def clock_res_get(inst: WapcInstance, caller: int, args: Any) -> int:
    if _clock_ns(_u32(args, 0)) is None:
        return ERRNO_INVAL
    inst.write(caller, _u32(args, 1), struct.pack("<Q", 1000))
    return ERRNO_SUCCESS


def sizes_get(inst: WapcInstance, caller: int, args: Any) -> int:
    """environ_sizes_get / args_sizes_get: zero entries, zero bytes."""
    inst.write(caller, _u32(args, 0), b"\0\0\0\0")
    inst.write(caller, _u32(args, 1), b"\0\0\0\0")
    return ERRNO_SUCCESS


def nothing(inst: WapcInstance, caller: int, args: Any) -> int:
    """environ_get / args_get (nothing to copy), sched_yield."""
    return ERRNO_SUCCESS


def proc_exit(inst: WapcInstance, caller: int, args: Any) -> int:
    inst.exit_code = _u32(args, 0)
    raise HostAbort(f"proc_exit({inst.exit_code})")


_IMPLS: dict[str, Callable[[WapcInstance, int, Any], Any]] = {
    "fd_write": fd_write,
    "fd_read": fd_read,
    "fd_fdstat_get": fd_fdstat_get,
    "fd_prestat_get": fd_badf,
    "fd_prestat_dir_name": fd_badf,
    "fd_close": fd_badf,
    "fd_seek": fd_badf,
    "random_get": random_get,
    "clock_time_get": clock_time_get,
    "clock_res_get": clock_res_get,
    "environ_sizes_get": sizes_get,
    "args_sizes_get": sizes_get,
    "environ_get": nothing,
    "args_get": nothing,
    "sched_yield": nothing,
    "proc_exit": proc_exit,
}
_I = "i32"
_IMPL_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fd_write": ((_I, _I, _I, _I), (_I,)),
    "fd_read": ((_I, _I, _I, _I), (_I,)),
    "fd_fdstat_get": ((_I, _I), (_I,)),
    "fd_prestat_get": ((_I, _I), (_I,)),
    "fd_prestat_dir_name": ((_I, _I, _I), (_I,)),
    "fd_close": ((_I,), (_I,)),
    "fd_seek": ((_I, "i64", _I, _I), (_I,)),
    "random_get": ((_I, _I), (_I,)),
    "clock_time_get": ((_I, "i64", _I), (_I,)),
    "clock_res_get": ((_I, _I), (_I,)),
    "environ_sizes_get": ((_I, _I), (_I,)),
    "args_sizes_get": ((_I, _I), (_I,)),
    "environ_get": ((_I, _I), (_I,)),
    "args_get": ((_I, _I), (_I,)),
    "sched_yield": ((), (_I,)),
    "proc_exit": ((_I,), ()),
}
