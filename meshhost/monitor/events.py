"""Host events as the ``events`` stream sends them (proto/spec/rpc.md, "Events").

One shape for the control op ``events``, the host's recent-events ring and the
dashboard's live feed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["event_to_dict"]


def _kind(event: object) -> str:
    """``MemberJoined`` -> ``host_joined`` (the event kinds of proto/spec/rpc.md)."""
    name = type(event).__name__.removeprefix("Member")
    return "host_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event_to_dict(event: object) -> dict[str, Any]:
    """A membership event object or a control event dict as the ``events`` stream sends it."""
    now = int(time.time() * 1000)
    if isinstance(event, Mapping):
        return {"at_unix_ms": now, **event}
    out: dict[str, Any] = {"kind": _kind(event), "at_unix_ms": now}
    member = getattr(event, "member", None)
    if member is not None:
        out["host"] = member.id
        out["address"] = f"{member.addr[0]}:{member.addr[1]}"
        out["incarnation"] = member.incarnation
    reason = getattr(event, "reason", None)
    if reason is not None:
        out["reason"] = str(reason)
    return out
