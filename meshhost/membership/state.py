"""Member states, the member record, and the rules for which news wins.

SWIM orders everything it hears about a host by ``(incarnation, state)``:
only the host itself raises its incarnation (to refute a suspicion or to
announce new metadata), and at one incarnation ``dead``/``left`` beat
``suspect``, which beats ``alive``.  The table below is that order written
out: for the state we hold and the kind of message, the smallest incarnation
the message must carry to change anything.  A message below it is stale and
is dropped (and counted).

    held \\ message     alive        suspect      dead / leave
    alive              inc > held   inc >= held  inc >= held
    suspect            inc > held   confirm only inc >= held
    dead, left         inc > held   ignored      ignored

``suspect`` about a host already suspected only counts as an independent
confirmation (Lifeguard); news about a dead or left host other than a newer
``alive`` changes nothing.  A host that hears itself suspected or declared
dead refutes with a higher incarnation instead (see ``swim.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "MESSAGE_KINDS",
    "Member",
    "MemberState",
    "accepts",
]

Addr = tuple[str, int]


class MemberState(enum.IntEnum):
    """A host's liveness as one observer sees it. Wire values, append-only."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


@dataclass(frozen=True, slots=True)
class Member:
    """A snapshot of one host as this observer sees it.

    ``incarnation`` is the highest incarnation heard for the host (it may be
    that of a suspect or dead message); ``meta`` and ``addr`` come from the
    host's latest signed alive message.
    """

    id: str
    addr: Addr
    state: MemberState
    incarnation: int
    meta: bytes


MESSAGE_KINDS = ("alive", "suspect", "dead")

# (held state, message kind) -> how the message incarnation must compare with
# the held one for the message to be applied: ">" strictly newer, ">=" newer or
# equal, None: never applied (news about a dead host other than alive).
_RULES: dict[tuple[MemberState, str], str | None] = {
    (MemberState.ALIVE, "alive"): ">",
    (MemberState.ALIVE, "suspect"): ">=",
    (MemberState.ALIVE, "dead"): ">=",
    (MemberState.SUSPECT, "alive"): ">",
    (MemberState.SUSPECT, "suspect"): "confirm",
    (MemberState.SUSPECT, "dead"): ">=",
    (MemberState.DEAD, "alive"): ">",
    (MemberState.DEAD, "suspect"): None,
    (MemberState.DEAD, "dead"): None,
    (MemberState.LEFT, "alive"): ">",
    (MemberState.LEFT, "suspect"): None,
    (MemberState.LEFT, "dead"): None,
}


def accepts(held: MemberState, held_incarnation: int, kind: str, incarnation: int) -> str:
    """Decide what a message of ``kind`` at ``incarnation`` does to a held record.

    Returns ``"apply"``, ``"confirm"`` (a suspect about a suspect at a current
    incarnation: count it as a confirmation), ``"stale"`` (older than what we
    hold: drop and count) or ``"ignore"`` (not news for this state).
    """
    rule = _RULES[(held, kind)]
    if rule is None:
        return "ignore"
    if incarnation < held_incarnation:
        return "stale"
    if rule == ">":
        return "apply" if incarnation > held_incarnation else "stale"
    if rule == "confirm":
        return "confirm"
    return "apply"
