"""Events the SWIM core reports to its host (frozen, slotted, dispatched by type).

Every membership event carries a :class:`~meshhost.membership.state.Member`
snapshot taken when the change happened.  The core never reports events
about the local host itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshhost.membership.state import Member

__all__ = [
    "MemberAlive",
    "MemberDead",
    "MemberEvent",
    "MemberJoined",
    "MemberLeft",
    "MemberSuspect",
    "MemberUpdated",
    "PeerMisbehaved",
]

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class MemberJoined:
    """A host we did not know, or knew as dead/left, is alive."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberAlive:
    """A suspected host refuted the suspicion: it is alive again."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberSuspect:
    """A host missed its probes; it is dead unless it refutes in time."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberDead:
    """A host failed (suspicion timed out, or we heard it was declared dead)."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """A host announced a graceful leave."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberUpdated:
    """A live host announced new metadata or a new address (``member.meta``)."""

    member: Member


@dataclass(frozen=True, slots=True)
class PeerMisbehaved:
    """Bytes from ``addr`` broke the protocol (malformed, oversized, forged).

    Nothing was changed; the matching ``Swim.stats`` counter was raised.
    """

    addr: Addr
    reason: str


MemberEvent = (
    MemberJoined
    | MemberAlive
    | MemberSuspect
    | MemberDead
    | MemberLeft
    | MemberUpdated
    | PeerMisbehaved
)
