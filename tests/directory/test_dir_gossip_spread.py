"""Epidemic spread and partition healing of the directory, in virtual time.

Figures are printed (run with ``-s``); the assertions are the issue's targets.
"""

from __future__ import annotations

import random

import pytest

from meshhost.capabilities.links import LinkDefinition
from meshhost.directory import ActorSummary

ACTOR = "M" + "E" * 55


def _spread_times(net, origin: str) -> list[float]:
    """Run until every host sees ``origin`` run ACTOR; returns per-host arrival times."""
    arrived: dict[str, float] = {}
    start = net.now
    net.hosts[origin].set_actor(ActorSummary(ACTOR, "echo", (), "demo/echo", "A" * 56), 1)
    arrived[origin] = 0.0
    pending = set(net.ids) - {origin}

    def check() -> bool:
        for hid in list(pending):
            if net.hosts[hid].hosts_running(ACTOR):
                arrived[hid] = net.now - start
                pending.discard(hid)
        return not pending

    # check after every timer is slow for 1000 hosts; check in 10 ms slices
    deadline = start + 10.0
    while net.now < deadline and not check():
        net.run_for(0.01)
    return sorted(arrived.values())


def _quantile_time(times: list[float], n: int, fraction: float) -> float:
    need = int(fraction * n + 0.999999)
    return times[need - 1] if len(times) >= need else float("inf")


def test_new_actor_location_reaches_999_permille_of_1000_hosts_within_2s(gossip_net):
    n = 1000
    net = gossip_net(n, seed=7, push_pull_interval_s=3600.0)
    net.run_for(1.0)
    times = _spread_times(net, net.ids[0])
    t50 = _quantile_time(times, n, 0.5)
    t999 = _quantile_time(times, n, 0.999)
    t100 = _quantile_time(times, n, 1.0)
    print(
        f"\nspread to {n} hosts, fan-out 3 every 200 ms, no loss: "
        f"50% {t50:.2f} s, 99.9% {t999:.2f} s, 100% {t100:.2f} s, "
        f"{net.packets} packets (Serf sim, same settings: 99.9% in 1.84 s)"
    )
    assert t999 <= 2.0


def test_spread_under_ten_percent_loss_still_reaches_everyone(gossip_net):
    n = 1000
    net = gossip_net(n, seed=11, loss=0.10, push_pull_interval_s=3600.0)
    net.run_for(1.0)
    times = _spread_times(net, net.ids[0])
    t999 = _quantile_time(times, n, 0.999)
    print(f"\nspread to {n} hosts at 10% loss: 99.9% {t999:.2f} s, 100% {times[-1]:.2f} s")
    assert len(times) == n
    assert t999 <= 3.0


def _link(i: int, provider: str) -> LinkDefinition:
    return LinkDefinition(
        "M" + str(i).rjust(55, "A"), "wasmcloud:keyvalue", "default", provider, {"URL": provider}
    )


def test_links_converge_to_identical_maps_on_all_hosts_after_a_partition_heals(gossip_net):
    n = 60
    # clocks skewed by up to +-2 s: LWW must still pick one winner everywhere
    net = gossip_net(n, seed=3, push_pull_interval_s=5.0, skew_s=lambda r: r.uniform(-2.0, 2.0))
    for i in range(5):
        net.hosts[net.ids[i]].put_link(_link(i, "VBEFORE"))
    net.run_for(5.0)
    left, right = net.ids[: n // 2], net.ids[n // 2 :]
    net.partition([left, right])
    # both sides change the same links and different ones while cut off
    net.hosts[left[0]].put_link(_link(0, "VLEFT"))
    net.hosts[right[0]].put_link(_link(0, "VRIGHT"))
    net.hosts[left[1]].delete_link(_link(1, "").actor_id, "wasmcloud:keyvalue")
    net.hosts[right[1]].put_link(_link(1, "VRIGHT"))
    net.hosts[right[2]].delete_link(_link(2, "").actor_id, "wasmcloud:keyvalue")
    net.hosts[left[3]].put_link(_link(10, "VLEFT"))
    net.hosts[right[3]].config_put("greeting", "hello from the right")
    net.run_for(20.0)
    sides = {tuple(map(repr, net.hosts[h].links())) for h in net.ids}
    assert len(sides) == 2  # each side converged on its own view
    net.heal()
    heal_at = net.now
    converged_at = None

    def identical() -> bool:
        first = net.hosts[net.ids[0]].lww_snapshot()
        return all(net.hosts[h].lww_snapshot() == first for h in net.ids[1:])

    while net.now < heal_at + 120.0:
        net.run_for(0.5)
        if identical():
            converged_at = net.now
            break
    assert converged_at is not None, "link maps still differ 120 s after the heal"
    links = net.hosts[net.ids[0]].links()
    print(
        f"\npartition of {n} hosts healed: identical link/config maps on all hosts "
        f"{converged_at - heal_at:.1f} s after the heal (push-pull every 5 s); {len(links)} links"
    )
    assert all(repr(net.hosts[h].links()) == repr(links) for h in net.ids)
    by_actor = {link.actor_id: link.provider_id for link in links}
    assert by_actor[_link(10, "").actor_id] == "VLEFT"
    assert _link(2, "").actor_id not in by_actor
    assert by_actor[_link(0, "").actor_id] in ("VLEFT", "VRIGHT")
    assert all(net.hosts[h].config_get("greeting") == "hello from the right" for h in net.ids)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_any_partition_then_heal_converges_link_maps_on_every_host(gossip_net, seed):
    """Random groups (2-4), random concurrent puts/deletes on shared keys, then heal."""
    rng = random.Random(seed)
    n = 40
    net = gossip_net(n, seed=seed, push_pull_interval_s=5.0, skew_s=lambda r: r.uniform(-3, 3))
    groups: list[list[str]] = [[] for _ in range(rng.randint(2, 4))]
    for hid in net.ids:
        rng.choice(groups).append(hid)
    net.partition(groups)
    for _ in range(60):
        d = net.hosts[rng.choice(net.ids)]
        actor = rng.randrange(6)
        if rng.random() < 0.3:
            d.delete_link(_link(actor, "").actor_id, "wasmcloud:keyvalue")
        else:
            d.put_link(_link(actor, f"V{rng.randrange(100)}"))
        net.run_for(rng.uniform(0, 0.5))
    net.heal()
    deadline = net.now + 120.0
    while net.now < deadline:
        net.run_for(1.0)
        first = net.hosts[net.ids[0]].lww_snapshot()
        if all(net.hosts[h].lww_snapshot() == first for h in net.ids):
            break
    maps = {repr(net.hosts[h].links()) for h in net.ids}
    assert len(maps) == 1, f"seed {seed}: {len(maps)} different link maps 120 s after the heal"
