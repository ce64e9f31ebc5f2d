"""Built-in scenarios a YAML scenario can name (``scenario: crash_detection``).

Each is ``run(seed, **params)`` over :mod:`meshhost.sim.scenarios`, with
the membership profile by name (``profile: lan``) and a default grid in its
``PARAMS`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SCENARIOS"]


def _membership(profile: str) -> Any:
    from meshhost.config import PROFILES
    from meshhost.errors import ScenarioError

    if profile not in PROFILES:
        raise ScenarioError(
            f"unknown profile {profile!r}; choose from {', '.join(sorted(PROFILES))}"
        )
    return PROFILES[profile]().membership


def crash_detection(seed: int, n: int = 10, profile: str = "lan") -> list[dict[str, Any]]:
    """Crash detection: seconds until each other host declares a crashed host dead"""
    from meshhost.sim.scenarios import crash_detection as measure

    return [{"detect_s": t} for t in measure(seed, n, _membership(profile))]


def false_positives(
    seed: int, n: int = 20, loss: float = 0.1, minutes: float = 10.0, profile: str = "lan"
) -> dict[str, Any]:
    """False positives: dead declarations when nobody died (loss + a stalling host)"""
    from meshhost.sim.scenarios import false_dead_under_loss_and_pauses as measure

    r = measure(seed, n, _membership(profile), duration_s=minutes * 60, loss=loss)
    return {
        "false_dead": r.dead_declarations,
        "suspicions": r.suspicions,
        "refutations": r.refutations,
        "pauses": r.pauses,
    }


def partition_heal(
    seed: int,
    n: int = 20,
    minority: int = 10,
    one_way: bool = False,
    cut_s: float = 60.0,
    profile: str = "lan",
) -> dict[str, Any]:
    """Partition heal: seconds from removing a cut until every host has one view"""
    from meshhost.sim.scenarios import partition_heal as measure

    r = measure(seed, n, _membership(profile), minority, one_way, cut_s=cut_s)
    return {"heal_s": r.heal_s, "views_disturbed": r.split_views}


def restart_all(seed: int, n: int = 20, profile: str = "lan") -> dict[str, Any]:
    """Restart every host at once: seconds until one view"""
    from meshhost.sim.scenarios import restart_all as measure

    return {"one_view_s": measure(seed, n, _membership(profile))}


def broadcast(seed: int, n: int = 100, loss: float = 0.0, profile: str = "lan") -> dict[str, Any]:
    """Broadcast: seconds until a metadata update reaches 50 / 99 / 99.9 % of hosts"""
    from meshhost.sim.scenarios import broadcast_reach

    r = broadcast_reach(seed, n, _membership(profile), loss=loss)
    return {
        "reach50_s": r.time_to_fraction(0.5),
        "reach99_s": r.time_to_fraction(0.99),
        "reach999_s": r.time_to_fraction(0.999),
        "reached": r.reached,
    }


def directory_convergence(
    seed: int,
    n: int = 10,
    minority: int = 5,
    cut_s: float = 30.0,
    writes: int = 20,
    keys: int = 3,
    profile: str = "lan",
) -> dict[str, Any]:
    """Directory convergence: conflicting writes on both sides of a cut, checked after the heal"""
    from meshhost.lab.dirsim import partition_writes

    return partition_writes(
        seed, n, _membership(profile), minority=minority, cut_s=cut_s, writes=writes, keys=keys
    )


crash_detection.PARAMS = {"n": [10, 50]}  # type: ignore[attr-defined]
false_positives.PARAMS = {"loss": [0.0, 0.1]}  # type: ignore[attr-defined]
partition_heal.PARAMS = {"one_way": [False, True]}  # type: ignore[attr-defined]
restart_all.PARAMS = {"n": [10, 50]}  # type: ignore[attr-defined]
broadcast.PARAMS = {"n": [100], "loss": [0.0, 0.1]}  # type: ignore[attr-defined]
directory_convergence.PARAMS = {"minority": [1, 5]}  # type: ignore[attr-defined]

SCENARIOS: dict[str, Callable[..., Any]] = {
    fn.__name__: fn
    for fn in (
        crash_detection,
        false_positives,
        partition_heal,
        restart_all,
        broadcast,
        directory_convergence,
    )
}
