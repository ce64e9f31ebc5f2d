"""Build membership messages from golden-vector fields (shared by the vector test)."""

from meshhost.membership.messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    Nack,
    Ping,
    PushPullEntry,
    Suspect,
    User,
)
from meshhost.membership.state import MemberState


def _alive(f):
    return Alive(
        f["node"],
        (f["addr"][0], f["addr"][1]),
        f["incarnation"],
        bytes.fromhex(f["meta"]),
        bytes.fromhex(f["signature"]),
    )


def message(kind, f):
    if kind == "ping":
        return Ping(f["seq"], f["target"], f["source"])
    if kind == "indirect_ping":
        return IndirectPing(
            f["seq"],
            f["target"],
            (f["target_addr"][0], f["target_addr"][1]),
            f["requester"],
            f["want_nack"],
        )
    if kind == "ack":
        return Ack(f["seq"])
    if kind == "nack":
        return Nack(f["seq"])
    if kind == "suspect":
        return Suspect(f["node"], f["incarnation"], f["sender"])
    if kind == "alive":
        return _alive(f)
    if kind == "dead":
        return Dead(f["node"], f["incarnation"], f["sender"])
    if kind == "user":
        return User(f["sender"], bytes.fromhex(f["payload"]))
    raise KeyError(kind)


def entry(f):
    return PushPullEntry(_alive(f["alive"]), MemberState(f["state"]), f["incarnation"])
