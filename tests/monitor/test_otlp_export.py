"""Spans exported to an OpenTelemetry collector (OTLP/HTTP protobuf), here a tiny receiver on
loopback that decodes each request as the collector would."""

from __future__ import annotations

import http.server
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

# Part of the test extra (the otel exporter brings it): a plain import, so a
# broken install fails here instead of skipping.
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from meshhost.errors import ConfigError
from meshhost.monitor.otlp import otlp_traces_url
from meshhost.testing import Member, client, make_host, signed_example


class Receiver(http.server.ThreadingHTTPServer):
    """Accepts OTLP/HTTP trace exports; keeps every decoded span with its resource."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Any]] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)  # raises on anything that is not OTLP protobuf
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.spans.append((resource, span))
        self.server.paths.append(self.path)
        self.server.content_types.append(self.headers["Content-Type"])
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def test_the_otlp_url_gets_the_traces_path_and_bad_urls_are_refused() -> None:
    assert otlp_traces_url("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/traces"
    assert (
        otlp_traces_url("https://c.example:443/x/v1/traces") == "https://c.example:443/x/v1/traces"
    )
    for bad in ("127.0.0.1:4318", "ftp://h/", "http://"):
        with pytest.raises(ConfigError, match="OTLP endpoint"):
            otlp_traces_url(bad)


async def test_a_hosts_spans_reach_an_otlp_receiver(tmp_path: Path) -> None:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        url = otlp_traces_url(f"http://127.0.0.1:{receiver.server_address[1]}")
        async with trio.open_nursery() as nursery:
            host = make_host(tmp_path, 0)
            host.options = replace(host.options, otlp_url=url)
            await nursery.start(Member(host).run)
            echo, echo_id = signed_example("echo")
            await client(host).request("start", module=echo)
            answer = await client(host).request(
                "call", actor=echo_id, operation="Echo", payload=b"hi"
            )
            trace_id = bytes.fromhex(answer["trace_id"])
            with trio.fail_after(20):  # exported every 2 s
                while len([s for _, s in receiver.spans if s.trace_id == trace_id]) < 2:
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    finally:
        receiver.shutdown()
        receiver.server_close()
    ours = {s.name: (r, s) for r, s in receiver.spans if s.trace_id == trace_id}
    resource, client_span = ours["call Echo"]
    _, server_span = ours["echo Echo"]
    assert resource["service.name"] == "meshhost"
    assert resource["service.instance.id"] == host.host_id
    assert server_span.parent_span_id == client_span.span_id  # the tree survives export
    assert client_span.parent_span_id == b""
    assert client_span.kind == client_span.SPAN_KIND_CLIENT
    assert server_span.kind == server_span.SPAN_KIND_SERVER
    assert server_span.end_time_unix_nano >= server_span.start_time_unix_nano > 0
    attrs = {a.key: a.value.string_value for a in server_span.attributes}
    assert attrs["actor"] == echo_id and attrs["meshhost.host"] == host.host_id
    assert set(receiver.paths) == {"/v1/traces"}
    assert set(receiver.content_types) == {"application/x-protobuf"}


def test_up_refuses_a_bad_otlp_url_before_starting(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshhost",
            "up",
            "--otlp",
            "127.0.0.1:4318",
            "--data-dir",
            str(tmp_path / "h"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "give an http:// or https:// URL" in done.stderr and "Traceback" not in done.stderr
