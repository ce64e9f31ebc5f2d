"""Monitoring: every host counts what it does and answers for itself.

* :class:`HostMetrics` (:mod:`.metrics`): the host's Prometheus registry and
  its :class:`~meshhost.observe.Observer`;
* :func:`snapshot` (:mod:`.snapshot`): the host's figures as plain data, the
  read API of ``meshhost metrics``, ``meshhost top`` and the dashboard (the
  control op ``metrics`` returns it, from any host for any host);
* :func:`readiness` / :func:`check_ready` (:mod:`.health`);
* :func:`serve_monitoring` (:mod:`.http`): ``/metrics``, ``/healthz``,
  ``/readyz`` for ``meshhost up --metrics ADDR``.

Nothing here needs a collector or another server; see docs/monitoring.md.
"""

from meshhost.monitor.health import check_ready, readiness
from meshhost.monitor.metrics import HostMetrics
from meshhost.monitor.snapshot import SCHEMA, RecentEvents, metric_families, snapshot
from meshhost.monitor.window import RecentCalls

__all__ = [
    "SCHEMA",
    "HostMetrics",
    "RecentCalls",
    "RecentEvents",
    "check_ready",
    "metric_families",
    "readiness",
    "snapshot",
]
