"""Churn: hosts failing and coming back at random, as a Poisson process.

:func:`churn` schedules, from ``start_s`` to ``until_s``, failures at
``rate_per_s`` (exponential gaps) on random running hosts.  Each failure is
a crash, or with probability ``leave`` a graceful leave (the core announces
it, then the host stops); the host comes back after a down time uniform in
``down_s`` (``None``: never), with its disk wiped with probability ``wipe``
(a new identity).  At most ``max_down`` hosts are down at once (default:
any number but the last).  Every draw comes from a PRNG seeded from the
simulator's, so a run replays from its seed.  The returned list fills as
the run goes: ``(virtual time, host index, action)`` with action
``"crash"``, ``"leave"`` or ``"restart"``.
"""

from __future__ import annotations

import random

from meshhost.sim.host import SimHost
from meshhost.sim.loop import Simulator

__all__ = ["ChurnLog", "churn"]

ChurnLog = list[tuple[float, int, str]]


def churn(
    sim: Simulator,
    rate_per_s: float,
    *,
    start_s: float | None = None,
    until_s: float,
    down_s: tuple[float, float] | None = (5.0, 30.0),
    leave: float = 0.0,
    wipe: float = 0.0,
    max_down: int | None = None,
) -> ChurnLog:
    """Schedule churn on ``sim`` (see the module docstring); returns its log.

    Raises ``ValueError`` for a rate that is not positive, probabilities
    outside [0, 1] or a down-time range that is not ``0 <= low <= high``.
    """
    if not rate_per_s > 0:
        raise ValueError(f"rate_per_s must be > 0, got {rate_per_s!r}")
    for name, p in (("leave", leave), ("wipe", wipe)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability, got {p!r}")
    if down_s is not None and not 0 <= down_s[0] <= down_s[1]:
        raise ValueError(f"down_s must be (low, high) with 0 <= low <= high, got {down_s!r}")
    rng = random.Random(sim.rng.getrandbits(64))
    log: ChurnLog = []
    limit = max_down if max_down is not None else max(0, len(sim.hosts) - 1)
    t = sim.now if start_s is None else start_s

    def fail() -> None:
        up = [h for h in sim.hosts if h.up and not h.core.left]
        down = len(sim.hosts) - len(up)
        if not up or down >= limit:
            return
        host = up[rng.randrange(len(up))]
        if rng.random() < leave:
            host.core.leave(host.local(sim.now))
            sim.pump(host)
            log.append((sim.now, host.index, "leave"))
            sim.after(0.5, sim.crash, host)  # its leave goes out, then it stops
        else:
            sim.crash(host)
            log.append((sim.now, host.index, "crash"))
        if down_s is not None:
            sim.after(rng.uniform(*down_s) + 0.5, back, host, rng.random() < wipe)

    def back(host: SimHost, wipe_disk: bool) -> None:
        sim.restart(host, wipe_disk=wipe_disk)
        log.append((sim.now, host.index, "restart"))

    while True:
        t += rng.expovariate(rate_per_s)
        if t >= until_s:
            break
        sim.at(t, fail)
    return log
