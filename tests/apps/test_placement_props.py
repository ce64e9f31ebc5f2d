"""Properties of the desired placement: deterministic, exact, minimal movement."""

from __future__ import annotations

import random

from hypothesis import assume, given
from hypothesis import strategies as st

from meshhost.apps import (
    Component,
    ComponentType,
    HostState,
    HostView,
    Manifest,
    Scaler,
    ScalerKind,
    Spread,
    component_key,
    compute_placement,
)
from meshhost.apps.manifest import Linkdef
from meshhost.apps.placement import hrw_rank, link_writers, split_by_weight

LABELS = {"zone": ["a", "b", "c"], "role": ["web", "edge"]}

requirements = st.dictionaries(
    st.sampled_from(sorted(LABELS)), st.sampled_from(["a", "b", "c", "web", "edge"]), max_size=2
).map(lambda d: tuple(sorted(d.items())))


@st.composite
def scalers(draw: st.DrawFn) -> Scaler:
    kind = draw(st.sampled_from([ScalerKind.SPREAD, ScalerKind.SPREAD, ScalerKind.DAEMON]))
    count = draw(st.integers(1, 3))
    spreads = tuple(
        Spread(f"s{i}", draw(requirements), draw(st.integers(0, 100))) for i in range(count)
    )
    if sum(s.weight for s in spreads) == 0:
        spreads = (Spread("s0", spreads[0].requirements, 1), *spreads[1:])
    return Scaler(kind, draw(st.integers(0, 40 if kind is ScalerKind.SPREAD else 3)), spreads)


@st.composite
def manifests(draw: st.DrawFn) -> list[Manifest]:
    result = []
    for a in range(draw(st.integers(1, 3))):
        components = tuple(
            Component(
                name=f"c{c}",
                type=ComponentType.ACTOR,
                image=f"file:///apps/{a}/{c}.wasm",
                sha256=f"{a}{c}" * 32,
                scaler=draw(scalers()),
                linkdefs=(Linkdef("kv", "wasmcloud:keyvalue", "default", (("A", str(c)),)),),
            )
            for c in range(draw(st.integers(1, 3)))
        )
        result.append(Manifest(name=f"app{a}", version="v1", components=components))
    return result


# Every label set a host can have (none, one or both keys), drawn in one step.
LABEL_SETS = [
    {**({"zone": z} if z else {}), **({"role": r} if r else {})}
    for z in [None, *LABELS["zone"]]
    for r in [None, *LABELS["role"]]
]
STATES = [HostState.ALIVE] * 4 + [HostState.SUSPECT, HostState.DEAD]


@st.composite
def hosts(draw: st.DrawFn, min_size: int = 0) -> list[HostView]:
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, len(LABEL_SETS) - 1), st.sampled_from(STATES)),
            min_size=min_size,
            max_size=20,
        )
    )
    return [
        HostView.of(f"N{i:03d}", LABEL_SETS[lab], state) for i, (lab, state) in enumerate(pairs)
    ]


def live(views: list[HostView]) -> list[HostView]:
    return [v for v in views if v.state in (HostState.ALIVE, HostState.SUSPECT)]


@given(manifests(), hosts(), st.randoms(use_true_random=False))
def test_every_host_computes_the_same_placement_whatever_the_order(
    apps: list[Manifest], views: list[HostView], rnd: random.Random
) -> None:
    first = compute_placement(apps, views)
    shuffled_apps, shuffled_views = apps[:], views[:]
    rnd.shuffle(shuffled_apps)
    rnd.shuffle(shuffled_views)
    second = compute_placement(shuffled_apps, shuffled_views)
    assert first.as_dict() == second.as_dict()
    assert first.links == second.links
    assert first.unsatisfied == second.unsatisfied
    assert first.workloads == second.workloads


@given(manifests(), hosts())
def test_counts_are_exact_and_requirements_honoured(
    apps: list[Manifest], views: list[HostView]
) -> None:
    placement = compute_placement(apps, views)
    labels = {v.host_id: v.label_map for v in live(views)}
    dead = {v.host_id for v in views} - set(labels)
    assert not dead & set(placement), "a dead host was given instances"
    for app in apps:
        for component in app.components:
            scaler = component.scaler
            assert scaler is not None
            key = component_key(app.name, component.name, component.sha256)
            placed = {h: share[key] for h, share in placement.items() if key in share}
            for host in placed:
                assert any(s.matches(labels[host]) for s in scaler.spread), (
                    "placed on a host matching no spread entry"
                )
            missing = [
                u
                for u in placement.unsatisfied
                if u.component == component.name and u.app == app.name
            ]
            if scaler.kind is ScalerKind.DAEMON:
                matching = {
                    h for h, lab in labels.items() if any(s.matches(lab) for s in scaler.spread)
                }
                expected = {h: scaler.instances for h in matching} if scaler.instances else {}
                assert placed == expected
                assert bool(missing) == (not matching and scaler.instances > 0)
                continue
            counts = split_by_weight(scaler.instances, [s.weight for s in scaler.spread])
            unplaceable = sum(
                n
                for s, n in zip(scaler.spread, counts, strict=True)
                if not any(s.matches(lab) for lab in labels.values())
            )
            assert sum(placed.values()) == scaler.instances - unplaceable
            assert sum(u.wanted for u in missing) == unplaceable
            for u in missing:
                assert "no live host has" in u.message


@given(manifests(), hosts(min_size=1))
def test_single_spread_is_balanced_within_one(apps: list[Manifest], views: list[HostView]) -> None:
    simple = [
        Manifest(
            a.name,
            a.version,
            tuple(
                Component(
                    c.name,
                    c.type,
                    c.image,
                    c.sha256,
                    scaler=Scaler(ScalerKind.SPREAD, 17, (Spread("all", (), 100),)),
                )
                for c in a.components
            ),
        )
        for a in apps
    ]
    placement = compute_placement(simple, views)
    hosts_alive = [v.host_id for v in live(views)]
    for key in placement.workloads:
        per_host = [placement.for_host(h).get(key, 0) for h in hosts_alive]
        if per_host:
            assert sum(per_host) == 17
            assert max(per_host) - min(per_host) <= 1


def moved(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], skip: str
) -> tuple[int, int]:
    """(instances stopped, instances started) on hosts other than ``skip``."""
    stopped = started = 0
    for host in set(before) | set(after):
        if host == skip:
            continue
        for key in set(before.get(host, {})) | set(after.get(host, {})):
            delta = after.get(host, {}).get(key, 0) - before.get(host, {}).get(key, 0)
            started += max(delta, 0)
            stopped += max(-delta, 0)
    return stopped, started


@given(manifests(), hosts(min_size=1), st.data())
def test_join_moves_only_the_new_hosts_share(
    apps: list[Manifest], views: list[HostView], data: st.DataObject
) -> None:
    newcomer = HostView.of("Nnew", data.draw(st.sampled_from(LABEL_SETS)))
    before = compute_placement(apps, views).as_dict()
    after = compute_placement(apps, [*views, newcomer]).as_dict()
    stopped, started = moved(before, after, "Nnew")
    gained = sum(after.get("Nnew", {}).values())
    # No other host gains anything; the instances that move are exactly the
    # newcomer's share, except those that were unplaceable before it came.
    assert started == 0
    assert stopped <= gained


@given(manifests(), hosts(min_size=2), st.data())
def test_leave_moves_only_the_leaving_hosts_share(
    apps: list[Manifest], views: list[HostView], data: st.DataObject
) -> None:
    candidates = [v for v in views if v.state is not HostState.DEAD]
    assume(candidates)
    leaving = data.draw(st.sampled_from(candidates))
    before = compute_placement(apps, views).as_dict()
    rest = [v for v in views if v is not leaving]
    after = compute_placement(apps, rest).as_dict()
    stopped, started = moved(before, after, leaving.host_id)
    assert stopped == 0, "a surviving host lost an instance when another left"
    assert started <= sum(before.get(leaving.host_id, {}).values())


@given(manifests(), hosts(min_size=1), st.data())
def test_a_suspect_host_keeps_its_share(
    apps: list[Manifest], views: list[HostView], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(views) - 1))
    suspect = [
        HostView(v.host_id, v.labels, HostState.SUSPECT)
        if i == index and v.state is HostState.ALIVE
        else v
        for i, v in enumerate(views)
    ]
    assert compute_placement(apps, views).as_dict() == compute_placement(apps, suspect).as_dict()


def test_nothing_matching_is_a_clear_status() -> None:
    app = Manifest(
        "shop",
        "v1",
        (
            Component(
                "web",
                ComponentType.ACTOR,
                "file:///w.wasm",
                scaler=Scaler(ScalerKind.SPREAD, 3, (Spread("gpu", (("gpu", "yes"),), 100),)),
            ),
        ),
    )
    placement = compute_placement([app], [HostView.of("N1", {"zone": "a"})])
    assert placement.as_dict() == {}
    (problem,) = placement.unsatisfied
    assert (problem.app, problem.component, problem.spread, problem.wanted) == (
        "shop",
        "web",
        "gpu",
        3,
    )
    assert problem.message == "spread 'gpu' needs 3 instance(s) but no live host has gpu=yes"


def test_four_instances_over_three_hosts_is_two_one_one() -> None:
    app = Manifest(
        "echo",
        "v1",
        (
            Component(
                "echo",
                ComponentType.ACTOR,
                "file:///e.wasm",
                scaler=Scaler(ScalerKind.SPREAD, 4, (Spread("default", (), 100),)),
            ),
        ),
    )
    views = [HostView.of(f"N{i}") for i in range(3)]
    placement = compute_placement([app], views)
    assert sorted(share["echo/echo"] for share in placement.values()) == [1, 1, 2]
    # kill the host with two: its two go one to each survivor
    big = next(h for h, share in placement.items() if share["echo/echo"] == 2)
    after = compute_placement([app], [v for v in views if v.host_id != big])
    assert sorted(share["echo/echo"] for share in after.values()) == [2, 2]


@given(st.integers(0, 10_000), st.lists(st.integers(0, 1000), min_size=1, max_size=8))
def test_split_by_weight_is_exact_and_proportional(total: int, weights: list[int]) -> None:
    parts = split_by_weight(total, weights)
    if sum(weights) == 0:
        assert parts == [0] * len(weights)
        return
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / sum(weights)) < 1


def test_split_by_weight_examples() -> None:
    assert split_by_weight(4, [80, 20]) == [3, 1]
    assert split_by_weight(3, [100, 100, 100]) == [1, 1, 1]
    assert split_by_weight(2, [100, 100, 100]) == [1, 1, 0]  # ties: earlier entry
    assert split_by_weight(1, [20, 80]) == [0, 1]
    assert split_by_weight(0, [1, 2]) == [0, 0]


@given(st.text(min_size=1, max_size=20), st.sets(st.text(min_size=1, max_size=8), max_size=12))
def test_rank_depends_only_on_the_pair(key: str, host_ids: set[str]) -> None:
    ranked = hrw_rank(key, host_ids)
    assert sorted(ranked) == sorted(host_ids)
    for drop in host_ids:
        assert hrw_rank(key, host_ids - {drop}) == [h for h in ranked if h != drop]


def test_two_writers_per_link() -> None:
    candidates = [f"N{i}" for i in range(10)]
    writers = link_writers(("M1", "wasmcloud:keyvalue", "default"), candidates)
    assert len(writers) == 2
    assert set(writers) <= set(candidates)
    assert link_writers(("M1", "wasmcloud:keyvalue", "default"), reversed(candidates)) == writers
