"""Membership: SWIM + Lifeguard gossip deciding which hosts are alive.

The core (:class:`Swim`) is sans-IO; ``udp.py`` drives it over sealed UDP
datagrams and the simulator (``meshhost.sim``) drives it in virtual time.
"""

from meshhost.membership.awareness import Awareness
from meshhost.membership.broadcast import TransmitLimitedQueue
from meshhost.membership.events import (
    MemberAlive,
    MemberDead,
    MemberEvent,
    MemberJoined,
    MemberLeft,
    MemberSuspect,
    MemberUpdated,
    PeerMisbehaved,
)
from meshhost.membership.signing import AliveVerifier
from meshhost.membership.state import Member, MemberState
from meshhost.membership.suspicion import (
    Suspicion,
    remaining_suspicion_time,
    retransmit_limit,
    suspicion_timeout,
)
from meshhost.membership.swim import Delegate, Swim

__all__ = [
    "AliveVerifier",
    "Awareness",
    "Delegate",
    "Member",
    "MemberAlive",
    "MemberDead",
    "MemberEvent",
    "MemberJoined",
    "MemberLeft",
    "MemberState",
    "MemberSuspect",
    "MemberUpdated",
    "PeerMisbehaved",
    "Suspicion",
    "Swim",
    "TransmitLimitedQueue",
    "remaining_suspicion_time",
    "retransmit_limit",
    "suspicion_timeout",
]
