"""The monitor's pure parts: recent figures from tallies, and the exposition of tallies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from meshhost.monitor import metrics as metrics_module
from meshhost.monitor.metrics import CALL_BUCKETS, HostMetrics
from meshhost.monitor.window import ActorTally, RecentCalls, bucket_quantile

BOUNDS = (1.0, 2.0, 4.0)


def test_quantiles_interpolate_inside_their_bucket() -> None:
    assert bucket_quantile(0.5, BOUNDS, [0, 0, 0, 0]) == 0.0
    assert bucket_quantile(0.5, BOUNDS, [0, 10, 0, 0]) == pytest.approx(1.5)
    assert bucket_quantile(0.5, BOUNDS, [10, 10, 0, 0]) == pytest.approx(1.0)
    assert bucket_quantile(0.99, BOUNDS, [0, 0, 0, 5]) == 4.0  # above every bound


@given(st.lists(st.integers(0, 50), min_size=4, max_size=4), st.floats(0.01, 0.99))
def test_a_quantile_lies_within_the_bounds_and_grows_with_q(counts: list[int], q: float) -> None:
    value = bucket_quantile(q, BOUNDS, counts)
    assert 0.0 <= value <= BOUNDS[-1]
    assert bucket_quantile(min(1.0, q + 0.01), BOUNDS, counts) >= value


def test_rates_are_over_the_recent_past_not_since_start() -> None:
    recent = RecentCalls(BOUNDS, start=0.0, window_s=10.0)
    first = recent.summary(100.0, {"M": ActorTally(1000, 10, (1000, 0, 0, 0))})
    assert first["M"]["calls_per_s"] == pytest.approx(10.0)  # since start: 1000 in 100 s
    later = recent.summary(102.0, {"M": ActorTally(1100, 30, (1000, 100, 0, 0))})
    assert later["M"]["calls_per_s"] == pytest.approx(50.0)  # 100 calls in the last 2 s
    assert later["M"]["errors_per_s"] == pytest.approx(10.0)
    assert later["M"]["p50_s"] == pytest.approx(1.5)  # all of them in the 1..2 s bucket
    assert later["M"]["calls_total"] == 1100 and later["M"]["errors_total"] == 30
    # Remembered tallies older than the window stop counting.
    quiet = recent.summary(200.0, {"M": ActorTally(1100, 30, (1000, 100, 0, 0))})
    assert quiet["M"]["calls_per_s"] == 0.0


def test_observed_calls_are_exposed_as_prometheus_counters_and_histograms() -> None:
    metrics = HostMetrics("NHOST", "lab")
    for seconds in (0.00002, 0.0003, 0.0003, 2.0):
        metrics.invocation("MACTOR", "Echo", "remote", "ok", seconds)
    metrics.invocation("MACTOR", "Echo", "none", "timeout", 5.0)
    metrics.ran("MACTOR", "Echo", "NPEER", "ok", 0.0003)
    metrics.failover("MACTOR")
    metrics.retry("MACTOR", "hedge")
    text = generate_latest(metrics.registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }

    def get(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"host": "NHOST", "lattice": "lab", **labels}.items())))]

    assert (
        get(
            "meshhost_invocations_total",
            actor="MACTOR",
            operation="Echo",
            where="remote",
            outcome="ok",
        )
        == 4
    )
    assert get("meshhost_invocation_deadline_exceeded_total", actor="MACTOR") == 1
    hist = "meshhost_invocation_duration_seconds"
    assert get(hist + "_count", actor="MACTOR", where="remote") == 4
    assert get(hist + "_sum", actor="MACTOR", where="remote") == pytest.approx(2.00062, 1e-9)
    assert get(hist + "_bucket", actor="MACTOR", where="remote", le="2.5e-05") == 1
    assert get(hist + "_bucket", actor="MACTOR", where="remote", le="0.0005") == 3
    assert get(hist + "_bucket", actor="MACTOR", where="remote", le="+Inf") == 4
    assert len(CALL_BUCKETS) + 1 == sum(
        1 for name, labels in samples if name == hist + "_bucket" and ("where", "remote") in labels
    )
    assert (
        get(
            "meshhost_actor_calls_total",
            actor="MACTOR",
            operation="Echo",
            peer="NPEER",
            outcome="ok",
        )
        == 1
    )
    assert get("meshhost_invocation_failovers_total", actor="MACTOR") == 1
    assert get("meshhost_invocation_retries_total", actor="MACTOR", reason="hedge") == 1


def test_made_up_names_cannot_grow_the_series_without_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = 50  # the rule, at a size that is quick to check (MAX_SERIES in production)
    monkeypatch.setattr(metrics_module, "MAX_SERIES", limit)
    metrics = HostMetrics("NHOST", "lab")
    for i in range(limit + 1000):
        metrics.invocation(f"actor-{i}", f"op-{i}", "none", "not_found", 0.001)
        metrics.ran("MACTOR", f"op-{i}", "NPEER", "ok", 0.001)
    text = generate_latest(metrics.registry).decode()
    made = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "meshhost_invocations_total"
    ]
    assert limit < len(made) <= limit + 101
    assert sum(s.value for s in made) == limit + 1000  # nothing lost, only folded
    assert any(s.labels["actor"] == "_other" and s.labels["operation"] == "_other" for s in made)
    ran = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "meshhost_actor_calls_total"
    ]
    assert len(ran) == limit + 1
    assert [s.value for s in ran if s.labels["operation"] == "_other"] == [1000]
