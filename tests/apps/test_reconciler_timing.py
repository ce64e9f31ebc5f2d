"""The Reconciler object: join gate, debounce, resync, start back-off."""

from __future__ import annotations

import pytest

from meshhost.apps import (
    Component,
    ComponentType,
    HostView,
    Manifest,
    Reconciler,
    ReconcilerConfig,
    Scaler,
    ScalerKind,
    Spread,
    StartActor,
    StopActor,
)
from meshhost.errors import ConfigError

APP = Manifest(
    "shop",
    "v1",
    (
        Component(
            "web",
            ComponentType.ACTOR,
            "file:///web.wasm",
            scaler=Scaler(ScalerKind.SPREAD, 3, (Spread("default", (), 100),)),
        ),
    ),
)
KEY = "shop/web"


def test_nothing_is_planned_before_membership_has_joined() -> None:
    rec = Reconciler("N1")
    rec.update(0.0, manifests=[APP], running={})
    assert rec.get_timer() == 0.5
    assert rec.handle_timer(0.5) == []  # no member list yet: never act alone
    assert rec.get_timer() is None
    rec.update(1.0, members=[HostView.of("N1")])
    assert rec.handle_timer(1.4) == []  # debounce not over
    assert rec.handle_timer(1.5) == [StartActor(rec.desired.workloads[KEY], 3)]  # type: ignore[union-attr]


def test_a_burst_of_changes_makes_one_plan_from_the_latest_inputs() -> None:
    rec = Reconciler("N1")
    rec.update(0.0, manifests=[APP], running={}, members=[HostView.of("N1")])
    for i in range(2, 10):  # hosts joining in a burst
        rec.update(0.05 * i, members=[HostView.of(f"N{j}") for j in range(1, i + 1)])
    plan = rec.handle_timer(0.5)
    desired = rec.desired
    assert desired is not None and len(desired.candidates) == 9
    assert sum(a.count for a in plan if isinstance(a, StartActor)) == desired.for_host("N1").get(
        KEY, 0
    )


def test_resync_plans_again_without_changes() -> None:
    rec = Reconciler("N1", ReconcilerConfig(resync_interval_s=10.0))
    rec.update(0.0, manifests=[APP], running={}, members=[HostView.of("N1")])
    assert rec.handle_timer(0.5)
    assert rec.get_timer() == 10.5
    # the starts were lost (the driver reports nothing running): the resync repeats them
    assert rec.handle_timer(10.5) == [StartActor(rec.desired.workloads[KEY], 3)]  # type: ignore[union-attr]
    rec.update(11.0, running={KEY: 5})
    assert rec.handle_timer(11.5) == [StopActor(KEY, 2)]


def test_failed_starts_back_off_exponentially() -> None:
    rec = Reconciler("N1", ReconcilerConfig(start_backoff_initial_s=1.0, start_backoff_max_s=4.0))
    rec.update(0.0, manifests=[APP], running={}, members=[HostView.of("N1")])
    assert rec.handle_timer(0.5)
    waits = []
    now = 0.5
    for _ in range(4):
        rec.start_failed(KEY, now)
        assert rec.handle_timer(now) == []  # held back
        retry = rec.get_timer()
        assert retry is not None
        waits.append(round(retry - now, 6))
        now = retry
        assert rec.handle_timer(now) != []
    assert waits == [1.0, 2.0, 4.0, 4.0]
    rec.start_succeeded(KEY)
    rec.start_failed(KEY, now)
    assert rec.get_timer() == now + 1.0


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="debounce_s must be > 0"):
        ReconcilerConfig(debounce_s=0)
    with pytest.raises(ConfigError, match="start_backoff_max_s"):
        ReconcilerConfig(start_backoff_initial_s=5, start_backoff_max_s=1)
