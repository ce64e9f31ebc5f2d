"""Membership events -> per-host observations, the same for a simulated and a real run.

Both runs are reduced to :class:`Seen` records (when, which host saw it, what,
about whom) and the times of the cut and the heal on the same clock; this
module alone turns them into the observation rows both CSVs carry, so the
sim-to-real gap is never a difference in how the numbers were computed.

Per observing host (``side`` is ``minority`` or ``majority``; "across" are
the hosts on the other side of the cut):

``suspect_s``
    Seconds from the cut until it first suspected (or declared dead) a host
    across; empty if it never did.
``detect_s``
    Seconds from the cut until it first declared a host across dead; empty
    if it declared none dead before the heal.
``all_dead_s``
    Seconds from the cut until it had declared *every* host across dead;
    empty if it had not by the heal (a short cut often ends first: Lifeguard
    starts a suspicion at its longest timeout).
``heal_s``
    Seconds from the heal until every host across that it had suspected or
    declared dead was alive to it again (0: it lost none); empty if that did
    not happen within the horizon.
``false_dead``
    Dead declarations about hosts on its own side (hosts it could reach).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["METRICS", "Seen", "observations"]

METRICS = ("suspect_s", "detect_s", "all_dead_s", "heal_s")
"""The timing fields, plotted by ``meshhost lab compare``."""

DOWN = {"suspect", "dead"}
UP = {"alive", "joined"}


@dataclass(frozen=True, slots=True)
class Seen:
    """Host ``observer`` reported ``kind`` (joined/alive/suspect/dead/left) about ``subject``."""

    t: float
    observer: str
    kind: str
    subject: str


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def observations(
    seen: Iterable[Seen],
    hosts: Sequence[str],
    minority: Sequence[str],
    cut_at: float,
    heal_at: float,
    end_at: float,
    base: dict[str, Any],
) -> list[dict[str, Any]]:
    """One row per host (``base`` first: scenario, mode, seed, parameters)."""
    events = sorted((s for s in seen if cut_at <= s.t <= end_at), key=lambda s: s.t)
    minority_set = set(minority)
    rows = []
    for host in hosts:
        mine = host in minority_set
        across = {h for h in hosts if (h in minority_set) != mine}
        own = {h for h in hosts if (h in minority_set) == mine and h != host}
        first_down: float | None = None
        dead_at: dict[str, float] = {}
        state: dict[str, str] = {}  # subject -> "down"/"up", as of the heal
        back_at: dict[str, float] = {}
        false_dead = 0
        for s in events:
            if s.observer != host:
                continue
            if s.subject in own and s.kind == "dead":
                false_dead += 1
            if s.subject not in across:
                continue
            if s.t < heal_at:
                if s.kind in DOWN:
                    first_down = s.t if first_down is None else first_down
                    state[s.subject] = "down"
                    if s.kind == "dead":
                        dead_at.setdefault(s.subject, s.t)
                elif s.kind in UP:
                    state[s.subject] = "up"
            elif state.get(s.subject) == "down" and s.kind in UP:
                back_at.setdefault(s.subject, s.t)
        lost = [h for h, st in state.items() if st == "down"]
        detect = min(dead_at.values()) - cut_at if dead_at else None
        all_dead = max(dead_at.values()) - cut_at if dead_at and set(dead_at) == across else None
        if all(h in back_at for h in lost):
            heal: float | None = max((back_at[h] for h in lost), default=heal_at) - heal_at
        else:
            heal = None
        rows.append(
            {
                **base,
                "host": host,
                "side": "minority" if mine else "majority",
                "suspect_s": _round(None if first_down is None else first_down - cut_at),
                "detect_s": _round(detect),
                "all_dead_s": _round(all_dead),
                "heal_s": _round(heal),
                "false_dead": false_dead,
            }
        )
    return rows
