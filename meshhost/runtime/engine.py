"""One wasmtime Engine per runtime: epoch ticker, optional fuel, compiled-module disk cache.

Theory of operation
-------------------
* **Epochs.**  The engine is built with ``epoch_interruption``; a daemon
  thread calls ``increment_epoch()`` every :data:`EPOCH_TICK_S`.  Before each
  guest call the runtime sets the store's deadline to a number of ticks from
  now; running wasm checks the epoch at loop heads and function entries and
  traps with ``TrapCode.INTERRUPT`` once it passes.  One thread serves every
  store; its cost is one atomic increment per tick, but each tick also wakes
  the thread and takes the GIL from the trio loop (200 times a second).  So
  the thread starts with the first actor (:meth:`Engine.start_ticking`, from
  ``Runtime.load`` before any guest code runs) and a host that runs no actor
  (a caller, a gateway) has none.  It then runs until :meth:`Engine.close`:
  unloading the last actor leaves calls in flight on its old instances, and
  they still need their limits.
* **Fuel** (optional, ``consume_fuel=True``) counts instructions instead; it
  is deterministic but makes all guest code ~10-30 % slower, so it is off by
  default.
* **Disk cache.**  Compiling is the slow part of starting an actor (ms for
  small guests, seconds for big ones).  A compiled artifact is written to
  ``<cache_dir>/<sha256 of the binary>.<kind>.<engine fingerprint>.cwasm`` and
  deserialized next time.  The fingerprint covers the wasmtime version and
  the engine flags, so a different engine never tries a foreign artifact; if
  one still fails to load (corrupt file, other CPU) it is recompiled and
  replaced.  Files are written to a temporary name, fsync'd, then renamed, so
  a crash never leaves a torn artifact.  Each file ends with the SHA-256 of
  the artifact, checked before deserializing: wasmtime checks only headers,
  and a flipped bit in the code of a cached artifact crashed the process
  (SIGILL, SIGSEGV) when the actor ran.  The check is not a defence against
  an attacker: the cache directory must be trusted (it holds native code).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Literal

import wasmtime
from wasmtime import component as wcomponent

from meshhost.datadir import make_private_dir, replace_atomically
from meshhost.errors import ConfigError

__all__ = ["EPOCH_TICK_S", "CacheStats", "Compiled", "Engine", "wat_to_wasm"]


def wat_to_wasm(text: str) -> bytes:
    """Compile WebAssembly text to a binary module (for the shipped examples)."""
    return bytes(wasmtime.wat2wasm(text))


log = logging.getLogger("meshhost.runtime")

_CHECKSUM_BYTES = 32
"""Each cache file ends with the SHA-256 of the artifact before it."""

EPOCH_TICK_S = 0.005
"""Epoch ticker period: the resolution of CPU-time and deadline limits.  5 ms
keeps limits tight while the ticker thread stays negligible (200 wakeups/s)."""

Kind = Literal["module", "component"]


@dataclass(slots=True)
class CacheStats:
    """Counters for tests and benchmarks: how often we compiled vs reused."""

    compiles: int = 0
    cache_hits: int = 0
    cache_errors: int = 0
    compile_seconds: float = 0.0
    """Time spent compiling (cache misses), summed; for monitoring."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled actor binary and where it came from."""

    kind: Kind
    code: wasmtime.Module | wcomponent.Component
    digest: str
    """SHA-256 (hex) of the whole binary: the cache key."""
    from_cache: bool
    cache_path: Path


class Engine:
    """The shared wasmtime engine.  Thread-safe; the epoch ticker starts with
    :meth:`start_ticking` and ``close()`` stops it."""

    def __init__(
        self, cache_dir: Path, *, consume_fuel: bool = False, epoch_tick_s: float = EPOCH_TICK_S
    ) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.consume_fuel = consume_fuel
        config.wasm_component_model = True
        self.wasm = wasmtime.Engine(config)
        self.consume_fuel = consume_fuel
        self.epoch_tick_s = epoch_tick_s
        self.cache_dir = Path(cache_dir)
        try:
            make_private_dir(self.cache_dir)
        except OSError as exc:
            raise ConfigError(
                f"cannot use the compiled-module cache {self.cache_dir}: "
                f"{exc.strerror or exc}; move what is there aside"
            ) from None
        flags = f"wasmtime {version('wasmtime')} epoch=1 fuel={int(consume_fuel)} cm=1"
        self.fingerprint = hashlib.sha256(flags.encode()).hexdigest()[:16]
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def start_ticking(self) -> None:
        """Start the epoch ticker unless it runs (or the engine is closed).

        Must be called before any guest code of this engine runs: without
        ticks, the epoch deadlines of its calls never pass.  Thread-safe,
        idempotent.
        """
        with self._lock:
            if self._ticker is not None or self._stop.is_set():
                return
            self._ticker = threading.Thread(target=self._tick, name="meshhost-epoch", daemon=True)
            self._ticker.start()

    @property
    def ticking(self) -> bool:
        """Whether the epoch ticker thread runs."""
        ticker = self._ticker
        return ticker is not None and ticker.is_alive()

    def _tick(self) -> None:
        while not self._stop.wait(self.epoch_tick_s):
            self.wasm.increment_epoch()

    def ticks_for(self, seconds: float) -> int:
        """Epoch ticks to allow for ``seconds`` of run time (rounded up, plus one
        because the current tick may be almost over)."""
        if seconds <= 0:
            return 1
        return int(seconds / self.epoch_tick_s) + 2

    def close(self) -> None:
        """Stop the epoch ticker (running guests then only stop at their fuel limit)."""
        with self._lock:
            self._stop.set()
            ticker = self._ticker
        if ticker is not None and ticker.is_alive() and threading.current_thread() is not ticker:
            ticker.join(timeout=1.0)

    def cache_path(self, digest: str, kind: Kind) -> Path:
        return self.cache_dir / f"{digest}.{kind}.{self.fingerprint}.cwasm"

    def compile(self, binary: bytes, kind: Kind) -> Compiled:
        """Return the compiled form of ``binary``, from the disk cache when possible.

        Raises ``wasmtime.WasmtimeError`` when the binary does not validate
        (the runtime turns that into ``ActorLoadError``).
        """
        digest = hashlib.sha256(binary).hexdigest()
        path = self.cache_path(digest, kind)
        if path.exists():
            try:
                code = self._deserialize(path, kind)
            except (wasmtime.WasmtimeError, OSError) as exc:
                log.warning("discarding unusable compiled artifact %s: %s", path, exc)
                with self._lock:
                    self.stats.cache_errors += 1
                path.unlink(missing_ok=True)
            else:
                with self._lock:
                    self.stats.cache_hits += 1
                return Compiled(kind, code, digest, True, path)
        started = time.perf_counter()
        code = (
            wcomponent.Component(self.wasm, binary)
            if kind == "component"
            else wasmtime.Module(self.wasm, binary)
        )
        took = time.perf_counter() - started
        with self._lock:
            self.stats.compiles += 1
            self.stats.compile_seconds += took
        self._store(path, bytes(code.serialize()))
        return Compiled(kind, code, digest, False, path)

    def _deserialize(self, path: Path, kind: Kind) -> wasmtime.Module | wcomponent.Component:
        data = path.read_bytes()
        artifact, checksum = data[:-_CHECKSUM_BYTES], data[-_CHECKSUM_BYTES:]
        if len(data) <= _CHECKSUM_BYTES or hashlib.sha256(artifact).digest() != checksum:
            raise wasmtime.WasmtimeError("checksum mismatch: the file is damaged")
        if kind == "component":
            return wcomponent.Component.deserialize(self.wasm, artifact)
        return wasmtime.Module.deserialize(self.wasm, artifact)

    def _store(self, path: Path, artifact: bytes) -> None:
        try:
            replace_atomically(path, [artifact, hashlib.sha256(artifact).digest()])
        except OSError as exc:  # a full or read-only disk only costs the next start a compile
            log.warning("could not write compiled artifact %s: %s", path, exc)
