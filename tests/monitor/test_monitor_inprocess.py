"""One host in this process: /metrics, /healthz, /readyz and the snapshot read API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import trio
from prometheus_client.parser import text_string_to_metric_families

from meshhost.monitor import SCHEMA, snapshot
from meshhost.testing import signed_example
from tests.monitor.monitor_helpers import http_get, lone_host


def values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


async def test_a_monitored_host_serves_metrics_health_and_a_snapshot(tmp_path: Path) -> None:
    host = lone_host(tmp_path)
    module, actor_id = signed_example("echo")
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        assert host.metrics_addr is not None
        await host.actors.start(module)
        for _ in range(5):
            assert await host.actors.invoke(actor_id, "Echo", b"hi") == b"hi"
        status, body = await http_get(host.metrics_addr, "/metrics")
        assert status == 200
        text = body.decode()
        calls = values(text, "meshhost_invocations_total")
        key = tuple(
            sorted(
                {
                    "host": host.host_id,
                    "lattice": "mon",
                    "actor": actor_id,
                    "operation": "Echo",
                    "where": "local",
                    "outcome": "ok",
                }.items()
            )
        )
        assert calls[key] == 5
        assert sum(values(text, "meshhost_actor_calls_total").values()) == 5
        [compiles] = values(text, "meshhost_runtime_compiles_total").values()
        [compiling] = values(text, "meshhost_runtime_compile_seconds_total").values()
        assert compiles == 1 and compiling > 0  # a fresh data dir: nothing cached
        [started] = values(text, "meshhost_actor_start_duration_seconds_count").values()
        assert started == 1
        instances = values(text, "meshhost_actor_instances")
        assert list(instances.values()) == [1]
        status, body = await http_get(host.metrics_addr, "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, body = await http_get(host.metrics_addr, "/readyz")
        assert status == 200 and json.loads(body)["ready"] is True, body
        status, _ = await http_get(host.metrics_addr, "/nothing")
        assert status == 404

        snap = snapshot(host)
        assert snap["schema"] == SCHEMA and snap["host"] == host.host_id
        [row] = snap["actors"]
        assert row["id"] == actor_id and row["calls_total"] == 5 and row["errors_total"] == 0
        assert row["calls_per_s"] > 0 and 0 < row["p50_s"] <= row["p99_s"]
        assert any(e["kind"] == "actor_started" for e in snap["events"])
        names = {f["name"] for f in snap["metrics"]}
        assert {"meshhost_invocations", "meshhost_members"} <= names
        json.dumps(snap)  # plain data
        nursery.cancel_scope.cancel()


async def test_a_host_whose_seeds_are_all_missing_is_not_ready(tmp_path: Path) -> None:
    host = lone_host(tmp_path, seeds=("127.0.0.72:9",))
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        assert host.metrics_addr is not None
        status, body = await http_get(host.metrics_addr, "/readyz")
        answer = json.loads(body)
        assert status == 503 and answer["ready"] is False
        assert answer["checks"]["joined"] is False and "seeds" in answer["reason"]
        nursery.cancel_scope.cancel()


DOCS = Path(__file__).resolve().parents[2] / "docs"
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")


def named_metrics(text: str) -> set[str]:
    return set(re.findall(r"\bmeshhost_[a-z0-9_]*[a-z0-9]", text))


async def test_every_metric_in_the_docs_and_the_grafana_dashboard_is_served(
    tmp_path: Path,
) -> None:
    documented = named_metrics((DOCS / "monitoring.md").read_text())
    dashboard = json.loads((DOCS / "grafana" / "meshhost.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    graphed = named_metrics("\n".join(exprs))
    assert len(documented) > 40 and len(graphed) > 40
    host = lone_host(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        assert host.metrics_addr is not None
        status, body = await http_get(host.metrics_addr, "/metrics")
        nursery.cancel_scope.cancel()
    assert status == 200
    families = {f.name for f in text_string_to_metric_families(body.decode())}
    served = {family + suffix for family in families for suffix in SUFFIXES}
    assert documented - served == set(), "documented but not served"
    assert graphed - served == set(), "in the Grafana dashboard but not served"
    # And the other way: every family a host serves is documented.
    undocumented = {f for f in families if not {f + s for s in SUFFIXES} & documented}
    assert undocumented == set(), "served but not in docs/monitoring.md"
