"""One host's figures as plain data: what ``meshhost metrics``, ``top`` and the dashboard read.

:func:`snapshot` is the read API of the monitor.  It returns a JSON-able
(and msgpack-able) dict whose shape is stable (``schema`` changes if a key
is ever removed or changes meaning; new keys may appear)::

    {
      "schema": 1,
      "host": "N…", "lattice": "default", "at_unix_ms": 1765000000000,
      "ready": {"ready": true, "reason": "", "checks": {"joined": true, ...}},
      "health": {"score": 0},                      # Lifeguard local health
      "members": [{"id", "address", "state", "labels"}, ...],
      "actors": [{"id", "name", "instances",       # actors running on this host
                  "calls_total", "errors_total",   # run here since the host started
                  "calls_per_s", "errors_per_s",   # over the last ~10 s (*)
                  "p50_s", "p99_s"}, ...],
      "events": [{"kind", "at_unix_ms", ...}, ...],  # the most recent last
      "metrics": [{"name", "type", "help",
                   "samples": [{"name", "labels", "value"}, ...]}, ...]
    }

(*) Rates and percentiles cover the time since the previous snapshot up to
10 s back (the first snapshot: since the host started); p50 and p99 are
interpolated within the histogram buckets of ``meshhost_actor_call_duration_seconds``.

``metrics`` holds exactly what ``/metrics`` exposes (the same registry,
read once), so the terminal and Prometheus never disagree.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from meshhost.monitor.health import readiness

if TYPE_CHECKING:
    from meshhost.monitor.source import MetricsView, MonitoredHost

__all__ = ["SCHEMA", "RecentEvents", "metric_families", "snapshot"]

SCHEMA = 1
RECENT_EVENTS = 50


class RecentEvents:
    """The last :data:`RECENT_EVENTS` events of a host, as the events stream sends them."""

    def __init__(self, limit: int = RECENT_EVENTS) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)

    def add(self, event: Mapping[str, Any]) -> None:
        self._events.append(dict(event))

    def list(self) -> list[dict[str, Any]]:
        return list(self._events)


def _number(value: float) -> float | str:
    """JSON has no infinity or NaN: those travel as text (``+Inf`` as Prometheus writes)."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def metric_families(metrics: MetricsView) -> list[dict[str, Any]]:
    """Every metric of the host's registry as plain data (see the module docstring)."""
    out = []
    for family in metrics.registry.collect():
        out.append(
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "samples": [
                    {"name": s.name, "labels": dict(s.labels), "value": _number(s.value)}
                    for s in family.samples
                    if not s.name.endswith("_created")  # creation times say nothing here
                ],
            }
        )
    return out


def snapshot(host: MonitoredHost, *, with_metrics: bool = True) -> dict[str, Any]:
    """The figures of ``host`` now (it must be monitored: ``host.monitor`` set)."""
    metrics = host.monitor
    members = host.status()["members"]
    inventory = host.actors.inventory()["actors"] if host.built else []
    recent = metrics.recent_figures() if metrics is not None else {}
    actors = []
    for actor in inventory:
        figures = recent.get(actor["id"], {})
        actors.append(
            {
                "id": actor["id"],
                "name": actor.get("name", ""),
                "instances": actor["instances"],
                "calls_total": figures.get("calls_total", 0),
                "errors_total": figures.get("errors_total", 0),
                "calls_per_s": figures.get("calls_per_s", 0.0),
                "errors_per_s": figures.get("errors_per_s", 0.0),
                "p50_s": figures.get("p50_s", 0.0),
                "p99_s": figures.get("p99_s", 0.0),
            }
        )
    return {
        "schema": SCHEMA,
        "host": host.host_id,
        "lattice": host.config.lattice,
        "at_unix_ms": int(time.time() * 1000),
        "ready": readiness(host),
        "health": {"score": host.core.awareness if host.built else 0},
        "members": [
            {"id": m["id"], "address": m["addr"], "state": m["state"], "labels": m["labels"]}
            for m in members
        ],
        "actors": actors,
        "events": host.recent_events.list() if host.recent_events is not None else [],
        "metrics": metric_families(metrics) if with_metrics and metrics is not None else [],
    }
