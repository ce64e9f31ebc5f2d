"""Wasm actor runtime: waPC modules and WIT components on wasmtime, with limits.

The only package of meshhost that imports wasmtime.  Public surface:

* :class:`Runtime` - load / invoke / call_sync / unload (see :mod:`.runtime`).
* :class:`ActorRef`, :class:`HostCallHandler`, :class:`ActorLimits` - the
  contract with the capabilities layer (see :mod:`.api`).
* :class:`LoadedActor`, :class:`Engine` - what ``load`` returns; the shared
  engine with its epoch ticker and compiled-module disk cache.
"""

from meshhost.runtime.api import ActorLimits, ActorRef, HostCallHandler
from meshhost.runtime.engine import EPOCH_TICK_S, Engine
from meshhost.runtime.runtime import LoadedActor, Runtime

__all__ = [
    "EPOCH_TICK_S",
    "ActorLimits",
    "ActorRef",
    "Engine",
    "HostCallHandler",
    "LoadedActor",
    "Runtime",
]
