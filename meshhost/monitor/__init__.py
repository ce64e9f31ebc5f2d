"""Monitoring: every host counts what it does and answers for itself.

* :class:`HostMetrics` (:mod:`.metrics`): the host's Prometheus registry and
  its :class:`~meshhost.observe.Observer`;
* :func:`snapshot` (:mod:`.snapshot`): the host's figures as plain data, the
  read API of ``meshhost metrics``, ``meshhost top`` and the dashboard (the
  control op ``metrics`` returns it, from any host for any host);
* :func:`readiness` / :func:`check_ready` (:mod:`.health`);
* :func:`serve_monitoring` (:mod:`.http`): ``/metrics``, ``/healthz``,
  ``/readyz`` for ``meshhost up --metrics ADDR``;
* :mod:`.spans`: W3C trace context and the bounded ring of the host's recent
  spans, a dependency-free leaf that the actor host below records into;
  :mod:`.tracing` puts a trace together from every live host (op ``trace``).

Nothing here needs a collector or another server; see docs/monitoring.md.
"""

from meshhost.monitor.health import check_ready, readiness
from meshhost.monitor.metrics import HostMetrics
from meshhost.monitor.snapshot import SCHEMA, RecentEvents, metric_families, snapshot
from meshhost.monitor.spans import Span, SpanRing, TraceContext, parse_traceparent
from meshhost.monitor.window import RecentCalls

__all__ = [
    "SCHEMA",
    "HostMetrics",
    "RecentCalls",
    "RecentEvents",
    "Span",
    "SpanRing",
    "TraceContext",
    "check_ready",
    "metric_families",
    "parse_traceparent",
    "readiness",
    "snapshot",
]
