"""Optional export of a host's spans to an OpenTelemetry collector (OTLP over HTTP).

Off unless ``meshhost up --otlp URL`` is given, and only with the ``otel``
extra installed (``pip install 'meshhost[otel]'``: opentelemetry-sdk and
the OTLP/HTTP protobuf exporter).  Tracing itself needs none of this: every
host keeps its spans and ``meshhost trace`` gathers them.  The exporter is
for people who already run a collector (Jaeger, Tempo, the OTel collector).

Every :data:`EXPORT_INTERVAL_S` the spans recorded since the last round are
converted to the SDK's ``ReadableSpan`` (ids, parent, kind, times, status
and attributes as meshhost recorded them; resource ``service.name``
``meshhost``, ``service.instance.id`` the host id) and sent in one request
by ``OTLPSpanExporter`` on a worker thread.  A collector that is down costs
a logged warning per round; spans that fell out of the ring meanwhile are
not sent.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import trio

from meshhost.errors import ConfigError
from meshhost.monitor.spans import Span, SpanRing

__all__ = ["EXPORT_INTERVAL_S", "export_spans", "otlp_traces_url", "require_otel"]

log = logging.getLogger(__name__)

EXPORT_INTERVAL_S = 2.0
"""How often new spans are sent: a batch per round, seconds behind at most."""
EXPORT_TIMEOUT_S = 5.0
"""One export request (the exporter's own retries included) gives up after this."""
TRACES_PATH = "/v1/traces"
EXTRA_HINT = "install the otel extra: pip install 'meshhost[otel]'"


def otlp_traces_url(text: str) -> str:
    """The collector's traces endpoint from ``--otlp``: ``http://host:4318`` gets
    ``/v1/traces`` added; a URL with a path is used as given.  Raises ConfigError."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"OTLP endpoint {text!r}: give an http:// or https:// URL, e.g. http://127.0.0.1:4318"
        )
    path = parts.path if parts.path not in ("", "/") else TRACES_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def require_otel() -> None:
    """Raise ConfigError saying what to install when the otel extra is missing."""
    _load()


def _load() -> Any:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
    except ImportError as exc:
        raise ConfigError(
            f"OTLP export needs opentelemetry ({exc.name} is missing): {EXTRA_HINT}"
        ) from None
    return (
        OTLPSpanExporter,
        Resource,
        ReadableSpan,
        SpanContext,
        SpanKind,
        Status,
        StatusCode,
        TraceFlags,
    )


class _Converter:
    """meshhost spans -> the SDK's ReadableSpan, for one host."""

    def __init__(self, host_id: str, lattice: str) -> None:
        (_, resource, self.readable, self.context, kind, self.status, self.code, self.flags) = (
            _load()
        )
        self.resource = resource.create(
            {
                "service.name": "meshhost",
                "service.instance.id": host_id,
                "meshhost.lattice": lattice,
            }
        )
        self.kinds = {"client": kind.CLIENT, "server": kind.SERVER, "internal": kind.INTERNAL}

    def __call__(self, span: Span) -> Any:
        flags = self.flags(self.flags.SAMPLED)
        context = self.context(
            int.from_bytes(span.trace_id, "big"), int.from_bytes(span.span_id, "big"), False, flags
        )
        parent = (
            self.context(
                int.from_bytes(span.trace_id, "big"),
                int.from_bytes(span.parent_id, "big"),
                True,
                flags,
            )
            if span.parent_id
            else None
        )
        status = (
            self.status(self.code.OK)
            if span.status == "ok"
            else self.status(self.code.ERROR, span.status)
        )
        return self.readable(
            name=span.name,
            context=context,
            parent=parent,
            resource=self.resource,
            attributes={**dict(span.attributes), "meshhost.host": span.host},
            kind=self.kinds.get(span.kind, self.kinds["internal"]),
            start_time=span.start_ns,
            end_time=span.end_ns,
            status=status,
        )


async def export_spans(
    ring: SpanRing,
    url: str,
    *,
    host_id: str,
    lattice: str,
    interval_s: float = EXPORT_INTERVAL_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Send the spans ``ring`` records from now on to ``url`` until cancelled.

    Raises ConfigError at once when the otel extra is not installed.
    """
    exporter_class = _load()[0]
    convert = _Converter(host_id, lattice)
    exporter = exporter_class(endpoint=url, timeout=EXPORT_TIMEOUT_S)
    seq = ring.last_seq
    task_status.started()
    try:
        while True:
            await trio.sleep(interval_s)
            seq, new = ring.since(seq)
            if not new:
                continue
            batch = [convert(span) for span in new]
            result = await trio.to_thread.run_sync(exporter.export, batch, abandon_on_cancel=True)
            if getattr(result, "name", "") != "SUCCESS":
                log.warning("OTLP export of %d spans to %s failed", len(batch), url)
    finally:
        exporter.shutdown()
