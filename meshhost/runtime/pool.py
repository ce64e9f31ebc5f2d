"""Instance pool: at most ``max_instances`` instances of one actor, one call each.

A call takes an idle instance, or makes a new one while fewer than
``max_instances`` exist, or waits (until its deadline) for one to come back.
An instance that trapped, hit a limit or broke the ABI is closed instead of
returned, and the slot is free for a fresh one, so a bad call never leaks
state into the next.  Thread-safe: guests run on trio worker threads and on
callers' threads (``call_sync``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["InstancePool", "PoolClosed", "PoolTimeout"]


class _Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=_Closable)


class PoolTimeout(Exception):
    """Internal: no instance became free before the deadline."""


class PoolClosed(Exception):
    """Internal: the actor was unloaded."""


class InstancePool(Generic[T]):
    def __init__(self, factory: Callable[[], T], max_instances: int) -> None:
        self._factory = factory
        self.max_instances = max_instances
        self._idle: list[T] = []
        self._live = 0
        self._closed = False
        # A plain lock taken directly on every call, and a condition over it only
        # for callers that must wait: Condition's Python-level __enter__ and
        # notify() cost more than the call they guard (~3 us of 6 under load).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = 0
        self.created = 0
        """Instances made so far (tests check that a bad one was replaced)."""
        self.waits = 0
        """Times a caller found every instance busy and had to wait (monitoring)."""

    @property
    def live(self) -> int:
        """Instances that exist now, idle or busy."""
        return self._live

    def acquire(self, deadline: float) -> T:
        """An instance for the caller's exclusive use until :meth:`release`.

        Raises :class:`PoolTimeout` if none is free by ``deadline``
        (``time.monotonic()``), :class:`PoolClosed` after :meth:`close`, and
        whatever the factory raises.
        """
        with self._lock:
            while True:
                if self._closed:
                    raise PoolClosed
                if self._idle:
                    return self._idle.pop()
                if self._live < self.max_instances:
                    self._live += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolTimeout
                self.waits += 1
                self._waiting += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting -= 1
        try:
            instance = self._factory()
        except BaseException:
            with self._lock:
                self._live -= 1
                if self._waiting:
                    self._cond.notify()
            raise
        with self._lock:
            self.created += 1
        return instance

    def release(self, instance: T, healthy: bool) -> None:
        """Give the instance back; an unhealthy one (or any after close) is closed."""
        with self._lock:
            keep = healthy and not self._closed
            if keep:
                self._idle.append(instance)
            else:
                self._live -= 1
            if self._waiting:
                self._cond.notify()
        if not keep:
            instance.close()

    def close(self) -> None:
        """Close idle instances now; busy ones are closed when their call ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._cond.notify_all()
        for instance in idle:
            instance.close()
