"""Wasm actor runtime: waPC modules and WIT components on wasmtime, with limits.

The only package of meshhost that imports wasmtime.  Public surface:

* :class:`Runtime` - load / invoke / call_sync / unload (see :mod:`.runtime`).
* :class:`ActorRef`, :class:`HostCallHandler`, :class:`ActorLimits` - the
  contract with the capabilities layer (see :mod:`.api`).
* :class:`LoadedActor`, :class:`Engine` - what ``load`` returns; the shared
  engine with its epoch ticker and compiled-module disk cache.
* :func:`current_deadline` - for handlers: the running call's deadline.
* :func:`wat_to_wasm` - WebAssembly text to binary (the shipped examples).
"""

from meshhost.runtime.api import ActorLimits, ActorRef, HostCallHandler
from meshhost.runtime.engine import EPOCH_TICK_S, Engine, wat_to_wasm
from meshhost.runtime.runtime import LoadedActor, Runtime, current_deadline

__all__ = [
    "EPOCH_TICK_S",
    "ActorLimits",
    "ActorRef",
    "Engine",
    "HostCallHandler",
    "LoadedActor",
    "Runtime",
    "current_deadline",
    "wat_to_wasm",
]
