"""Lattice events as CloudEvents 1.0 (JSON format), typed as wasmCloud 0.x names them.

wasmCloud 0.x hosts publish their lattice events as CloudEvents with
``type`` ``com.wasmcloud.lattice.<name>``, ``source`` the host's id and a
random ``id``.  meshhost's events (proto/spec/rpc.md, "Events") map onto
those names where the meaning is the same; the kinds wasmCloud has no name
for keep meshhost's own under ``dev.meshhost.lattice.``.  The table is
``TYPES``; proto/spec/rpc.md ("Events as CloudEvents") and the vectors in
proto/vectors/rpc.json say the same.  Pure: the caller passes the id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["MESHHOST_PREFIX", "TYPES", "WASMCLOUD_PREFIX", "event_type", "to_cloudevent"]

WASMCLOUD_PREFIX = "com.wasmcloud.lattice."
MESHHOST_PREFIX = "dev.meshhost.lattice."
SPECVERSION = "1.0"
DATACONTENTTYPE = "application/json"

TYPES: dict[str, str] = {
    "host_joined": WASMCLOUD_PREFIX + "host_started",
    "host_left": WASMCLOUD_PREFIX + "host_stopped",
    "actor_started": WASMCLOUD_PREFIX + "actor_started",
    "actor_stopped": WASMCLOUD_PREFIX + "actor_stopped",
    "link_put": WASMCLOUD_PREFIX + "linkdef_set",
    "link_deleted": WASMCLOUD_PREFIX + "linkdef_deleted",
}
"""meshhost event kind -> CloudEvents ``type`` where wasmCloud 0.x has the same event.
``config_changed`` maps to ``config_set`` or ``config_deleted`` by its ``deleted`` field."""

_ENVELOPE_KEYS = frozenset({"kind", "at_unix_ms"})


def event_type(event: Mapping[str, Any]) -> str:
    """The CloudEvents ``type`` of one ``events`` stream entry."""
    kind = str(event.get("kind", "unknown"))
    if kind == "config_changed":
        return WASMCLOUD_PREFIX + ("config_deleted" if event.get("deleted") else "config_set")
    return TYPES.get(kind, MESHHOST_PREFIX + kind)


def _time(at_unix_ms: Any) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. ``2025-11-24T16:00:00.000Z``."""
    ms = at_unix_ms if isinstance(at_unix_ms, int) and at_unix_ms >= 0 else 0
    stamp = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}Z"


def to_cloudevent(event: Mapping[str, Any], *, source: str, event_id: str) -> dict[str, Any]:
    """One ``events`` stream entry as a CloudEvent (JSON format, structured mode).

    ``source`` is the id of the host that reported it (as wasmCloud uses its
    host key); ``event_id`` must be unique per source (the CLI draws a UUID 4).
    ``data`` holds the event's own fields (everything but ``kind`` and
    ``at_unix_ms``) and ``kind``, so nothing is lost in the mapping.
    """
    data = {k: v for k, v in event.items() if k not in _ENVELOPE_KEYS}
    data["kind"] = event.get("kind", "unknown")
    return {
        "specversion": SPECVERSION,
        "type": event_type(event),
        "source": source,
        "id": event_id,
        "time": _time(event.get("at_unix_ms")),
        "datacontenttype": DATACONTENTTYPE,
        "data": data,
    }
