"""The instance pool hands a released instance to a caller waiting for one."""

from __future__ import annotations

import threading
import time

from meshhost.runtime.pool import InstancePool


class _Instance:
    def close(self) -> None:
        pass


def test_a_waiting_caller_gets_the_released_instance_at_once() -> None:
    pool: InstancePool[_Instance] = InstancePool(_Instance, max_instances=1)
    first = pool.acquire(time.monotonic() + 1)
    got: list[tuple[_Instance, float]] = []

    def wait_for_one() -> None:
        got.append((pool.acquire(time.monotonic() + 30), time.monotonic()))

    waiter = threading.Thread(target=wait_for_one)
    waiter.start()
    while pool.waits == 0:  # the waiter is parked on the condition
        time.sleep(0.001)
    released = time.monotonic()
    pool.release(first, healthy=True)
    waiter.join(timeout=30)
    assert got and got[0][0] is first
    # Woken by the release, not by its 30 s deadline running out.
    assert got[0][1] - released < 10
    assert pool.live == 1 and pool.created == 1
