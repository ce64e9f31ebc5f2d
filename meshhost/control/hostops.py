"""The control ops a host answers today on its Unix socket.

``hosts`` (the membership view), ``events`` (a live stream of membership
events) and ``host_stop`` (graceful leave).  Ops that need actors, links or
invocations are refused with ``unsupported`` and a message saying so, so the
CLI never claims that no host is running when one is.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import trio

from meshhost.control.api import ControlError
from meshhost.errors import ErrorCode

if TYPE_CHECKING:
    from meshhost.host import Host

__all__ = ["HostControl"]

ACTOR_OPS = frozenset(
    {"inventory", "start", "stop", "scale", "link_put", "link_del", "link_list",
     "config_put", "config_get", "config_del", "call", "apply"}
)  # fmt: skip


def _kind(event: object) -> str:
    """``MemberJoined`` -> ``host_joined`` (the event kinds of proto/spec/rpc.md)."""
    name = type(event).__name__.removeprefix("Member")
    return "host_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event_to_dict(event: object) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": _kind(event), "at_unix_ms": int(time.time() * 1000)}
    member = getattr(event, "member", None)
    if member is not None:
        out["host"] = member.id
        out["address"] = f"{member.addr[0]}:{member.addr[1]}"
        out["incarnation"] = member.incarnation
    reason = getattr(event, "reason", None)
    if reason is not None:
        out["reason"] = str(reason)
    return out


class HostControl:
    """Answers control requests for one running host."""

    def __init__(self, host: Host, nursery: trio.Nursery) -> None:
        self.host = host
        self.nursery = nursery

    async def dispatch(self, op: str, args: Mapping[str, Any]) -> Any:
        if op == "hosts":
            status = self.host.status()
            return [
                {
                    "id": m["id"],
                    "address": m["addr"],
                    "state": m["state"],
                    "incarnation": m["incarnation"],
                    "labels": m["labels"],
                    "actors": 0,
                }
                for m in status["members"]
            ]
        if op == "host_stop":
            target = args.get("host")
            if target not in (None, self.host.host_id):
                raise ControlError(
                    ErrorCode.UNSUPPORTED,
                    "stopping another host remotely is not supported yet; "
                    "run `meshhost host stop` on that machine",
                )
            self.nursery.start_soon(self.host.shutdown)
            return {"host": self.host.host_id}
        if op in ACTOR_OPS:
            raise ControlError(
                ErrorCode.UNSUPPORTED,
                f"this host does not serve {op!r} yet: the running host answers "
                "`hosts`, `events` and `host stop`; actors are not wired into `meshhost up`",
            )
        raise ControlError(ErrorCode.UNSUPPORTED, f"unknown control op {op!r}")

    async def events(self, args: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        receive = self.host.subscribe()
        async with receive:
            async for event in receive:
                yield event_to_dict(event)
