"""The reconciler core: each host acts on its own share only, and all hosts together
reach exactly the desired placement."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

import meshhost.apps as apps
from meshhost.apps import (
    Component,
    ComponentType,
    DeleteLink,
    HostView,
    LinkSpec,
    Manifest,
    PutLink,
    Scaler,
    ScalerKind,
    Spread,
    StartActor,
    StopActor,
    compute_placement,
    reconcile,
)
from meshhost.apps.manifest import Linkdef
from meshhost.apps.placement import LINK_WRITERS

ACTOR = "M" + "A" * 55


def app(instances: int = 4, sha: str = "ab" * 32, values: str = "1") -> Manifest:
    return Manifest(
        "shop",
        "v1",
        (
            Component(
                "web",
                ComponentType.ACTOR,
                "file:///web.wasm",
                sha256=sha,
                actor_id=ACTOR,
                scaler=Scaler(ScalerKind.SPREAD, instances, (Spread("default", (), 100),)),
                linkdefs=(Linkdef("kv", "wasmcloud:keyvalue", "default", (("N", values),)),),
            ),
        ),
    )


HOSTS = [HostView.of(f"N{i}") for i in range(5)]


def run_all(desired, running):  # type: ignore[no-untyped-def]
    """Every host reconciles and applies its plan; returns the new running state."""
    result = {}
    for view in HOSTS:
        mine = dict(running.get(view.host_id, {}))
        for action in reconcile(view.host_id, desired, mine):
            if isinstance(action, StartActor):
                mine[action.key] = mine.get(action.key, 0) + action.count
            elif isinstance(action, StopActor):
                mine[action.key] -= action.count
                assert mine[action.key] >= 0
                if not mine[action.key]:
                    del mine[action.key]
        result[view.host_id] = mine
    return result


def test_fresh_hosts_start_their_share_and_then_rest() -> None:
    desired = compute_placement([app()], HOSTS)
    running = run_all(desired, {})
    assert {h: s for h, s in running.items() if s} == desired.as_dict()
    for view in HOSTS:
        plan = reconcile(view.host_id, desired, running[view.host_id], desired.links)
        assert plan == []


def test_surplus_and_undeployed_instances_are_stopped() -> None:
    desired = compute_placement([app(instances=1)], HOSTS)
    (host,) = desired
    key = next(iter(desired[host]))
    other = next(v.host_id for v in HOSTS if v.host_id != host)
    links = desired.links  # present already: the plan is about instances only
    assert reconcile(other, desired, {key: 2, "old/app@1234": 1}, links) == [
        StopActor("old/app@1234", 1),
        StopActor(key, 2),
    ]
    assert reconcile(host, desired, {key: 3}, links) == [StopActor(key, 2)]


def test_module_upgrade_starts_new_before_stopping_old() -> None:
    old = compute_placement([app(sha="ab" * 32)], HOSTS)
    new = compute_placement([app(sha="cd" * 32)], HOSTS)
    assert set(old) == set(new)  # same hosts: ranking ignores the digest
    host = next(iter(new))
    (old_key,) = old[host]
    (new_key,) = new[host]
    plan = reconcile(host, new, dict(old[host]))
    assert [type(a) for a in plan] == [StartActor, StopActor]
    assert plan[0].key == new_key and plan[1] == StopActor(old_key, old[host][old_key])


def test_links_are_put_by_exactly_the_link_writers() -> None:
    desired = compute_placement([app()], HOSTS)
    puts = {
        v.host_id: [a for a in reconcile(v.host_id, desired, {}) if isinstance(a, PutLink)]
        for v in HOSTS
    }
    writers = [h for h, p in puts.items() if p]
    assert len(writers) == LINK_WRITERS
    (link,) = desired.links
    assert all(p == [PutLink(link)] for h, p in puts.items() if h in writers)
    definition = link.to_link_definition()
    assert (
        definition.actor_id,
        definition.contract_id,
        definition.link_name,
        definition.provider_id,
        dict(definition.values),
    ) == (ACTOR, "wasmcloud:keyvalue", "default", "builtin", {"N": "1"})
    # already present with the same value: nothing to do; changed value: put again
    assert not any(
        isinstance(a, PutLink) for h in writers for a in reconcile(h, desired, {}, [link])
    )
    changed = compute_placement([app(values="2")], HOSTS)
    assert all(
        any(isinstance(a, PutLink) for a in reconcile(h, changed, {}, [link])) for h in writers
    )


def test_links_of_undeployed_apps_are_deleted_once_apps_go() -> None:
    stale = LinkSpec("gone", "web", ACTOR, "wasmcloud:messaging", "default", ())
    desired = compute_placement([app()], HOSTS)
    deletes = [
        a
        for v in HOSTS
        for a in reconcile(v.host_id, desired, {}, [stale])
        if isinstance(a, DeleteLink)
    ]
    assert deletes == [DeleteLink(stale)] * LINK_WRITERS
    # an app deployed whose manifest has not arrived here yet keeps its links
    kept = [
        a
        for v in HOSTS
        for a in reconcile(v.host_id, desired, {}, [stale], {"gone"})
        if isinstance(a, DeleteLink)
    ]
    assert kept == []


@given(
    st.integers(0, 30),
    st.dictionaries(
        st.sampled_from([v.host_id for v in HOSTS]),
        st.dictionaries(
            st.sampled_from(["shop/web@" + "ab" * 8, "x/y"]), st.integers(1, 5), max_size=2
        ),
    ),
)
def test_all_hosts_together_reach_exactly_the_requested_count(
    instances: int, running: dict[str, dict[str, int]]
) -> None:
    desired = compute_placement([app(instances)], HOSTS)
    after = run_all(desired, running)
    assert {h: s for h, s in after.items() if s} == desired.as_dict()
    assert sum(s.get("shop/web@" + "ab" * 8, 0) for s in after.values()) == instances
    assert run_all(desired, after) == after  # idempotent


def test_public_exports() -> None:
    assert sorted(apps.__all__) == apps.__all__
    for name in apps.__all__:
        assert hasattr(apps, name), name


def test_importing_apps_loads_no_io_framework() -> None:
    # the static no-IO rule of the apps cores is test_layering's; this checks what
    # importing the package pulls in at run time
    code = (
        "import sys, meshhost.apps; "
        "print(sorted({'trio', 'wasmtime', 'zeroconf'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_host_views_from_membership_snapshots() -> None:
    from meshhost.apps.placement import host_views
    from meshhost.membership import Member, MemberState

    members = [
        Member("N1", ("10.0.0.1", 7946), MemberState.ALIVE, 1, b""),
        Member("N2", ("10.0.0.2", 7946), MemberState.SUSPECT, 1, b""),
        Member("N3", ("10.0.0.3", 7946), MemberState.DEAD, 1, b""),
    ]
    views = host_views(members, {"N1": {"zone": "a"}})
    assert views == [
        HostView.of("N1", {"zone": "a"}),
        HostView.of("N2", None, "suspect"),
        HostView.of("N3", None, "dead"),
    ]
