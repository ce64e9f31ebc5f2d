"""The directory riding on the real SWIM core in the deterministic simulator.

Each simulated host runs ``Swim(..., delegate=Directory(...))``; membership
events are fed to the directory as the host process does (``MemberDead`` /
``MemberLeft`` -> ``forget_host``, ``MemberJoined`` -> ``host_alive``).
Figures are printed (``-s``).  The 1000-host figure comes from
``python -m tests.sim.sim_spread`` (minutes of CPU); here 100 hosts keep the
suite fast.
"""

from __future__ import annotations

import pytest

from meshhost.capabilities.links import LinkDefinition
from meshhost.config import MembershipConfig
from meshhost.directory import ActorSummary, Directory, MemoryStore
from meshhost.identity.nkeys import Prefix, generate
from meshhost.membership.events import MemberDead, MemberJoined, MemberLeft
from meshhost.membership.swim import Swim
from meshhost.sim.cluster import acquaint
from meshhost.sim.host import SimHost
from meshhost.sim.loop import Simulator

ACTOR = "M" + "E" * 55
WARM_UP_S = 15.0
"""A lattice booted all at once gossips every host's alive (and address)
first; directory messages get the room left over, so measure once that
settles (about 10 s for 100 hosts)."""


class Lattice:
    """``n`` simulated hosts, each a SWIM core with a Directory delegate."""

    def __init__(self, n: int, seed: int, *, skew_s: float = 0.0) -> None:
        self.sim = Simulator(seed)
        self.config = MembershipConfig()
        self.dirs: dict[int, Directory] = {}
        self.sim.observers.append(self._observe)
        hosts = [
            self.sim.add_host(
                self._make, start=False, clock_offset=self.sim.rng.uniform(-skew_s, skew_s)
            )
            for _ in range(n)
        ]
        for h in hosts:
            h.start(0.0)
        self._converge(hosts)
        self.run_for(WARM_UP_S)

    def run_for(self, seconds: float) -> None:
        """Run the simulation and drain directory events (as a host process does)."""
        self.sim.run_for(seconds)
        for d in self.dirs.values():
            while d.next_event() is not None:
                pass

    def _make(self, host: SimHost, now: float, rng) -> Swim:
        identity = host.disk.get("identity")
        if identity is None:
            identity = host.disk["identity"] = generate(Prefix.SERVER, rng.randbytes)
        store = host.disk.setdefault("directory", MemoryStore())
        sim = self.sim
        d = Directory(identity.public_key, clock=lambda: host.local(sim.now), store=store)
        core = Swim(identity, host.addr, self.config, rng, now, delegate=d)
        d.attach_membership(
            is_live=lambda i: i in core.live_ids(), member_count=lambda: len(core.live_ids())
        )
        d.set_address(f"{host.addr[0]}:{host.addr[1]}")
        self.dirs[host.index] = d
        return core

    def _observe(self, sim: Simulator, host: SimHost, event: object) -> None:
        d = self.dirs[host.index]
        if isinstance(event, MemberDead | MemberLeft):
            d.forget_host(event.member.id)
        elif isinstance(event, MemberJoined):
            d.host_alive(event.member.id)

    def _converge(self, hosts: list[SimHost]) -> None:
        # Start already acquainted: the push-pull merges a running lattice
        # would have made (as meshhost.sim.cluster's "converged" bootstrap).
        acquaint([h.core for h in hosts])
        for h in hosts:
            self.sim.pump(h)

    def live(self) -> list[Directory]:
        return [self.dirs[h.index] for h in self.sim.hosts if h.up]


def spread_times(lat: Lattice, origin: int) -> list[float]:
    start = lat.sim.now
    lat.dirs[origin].set_actor(ActorSummary(ACTOR, "echo", (), "demo/echo"), 1)
    arrived = {origin: 0.0}
    while lat.sim.now < start + 10.0 and len(arrived) < len(lat.dirs):
        lat.run_for(0.02)
        for i, d in lat.dirs.items():
            if i not in arrived and d.hosts_running(ACTOR):
                arrived[i] = lat.sim.now - start
    return sorted(arrived.values())


def test_real_swim_carries_a_new_actor_location_to_999_permille_of_100_hosts_within_2s():
    n = 100
    lat = Lattice(n, seed=21, skew_s=0.5)
    times = spread_times(lat, 0)
    need = -(-999 * n // 1000)
    assert len(times) == n
    print(
        f"\nreal SWIM gossip (LAN profile), {n} hosts: 50% {times[n // 2]:.2f} s, "
        f"99.9% {times[need - 1]:.2f} s, 100% {times[-1]:.2f} s"
    )
    assert times[need - 1] <= 2.0


def test_a_crashed_hosts_actors_leave_every_directory_and_stay_gone():
    lat = Lattice(25, seed=5)
    victim = lat.sim.hosts[7]
    victim_id = lat.dirs[7].host_id
    spread_times(lat, 7)
    assert all(d.hosts_running(ACTOR) for d in lat.live())
    lat.sim.crash(victim)
    crashed_at = lat.sim.now
    gone_at = None
    while lat.sim.now < crashed_at + 120.0:
        lat.sim.run_for(0.5)
        if all(not d.hosts_running(ACTOR) and victim_id not in d.hosts() for d in lat.live()):
            gone_at = lat.sim.now
            break
    assert gone_at is not None, "a dead host's actor is still listed 120 s after the crash"
    print(f"\ncrashed host's actor left all 24 directories {gone_at - crashed_at:.1f} s after")
    lat.sim.run_for(60.0)  # stale gossip and push-pulls must not bring it back
    assert all(not d.hosts_running(ACTOR) for d in lat.live())


def _link(actor: int, provider: str) -> LinkDefinition:
    actor_id = "M" + str(actor).rjust(55, "A")
    return LinkDefinition(actor_id, "wasmcloud:keyvalue", "default", provider, {"URL": provider})


def test_links_converge_on_all_hosts_after_a_partition_heals_and_survive_a_full_restart():
    n = 30
    lat = Lattice(n, seed=9, skew_s=1.0)
    sim = lat.sim
    hosts = sim.hosts
    left, right = hosts[: n // 2], hosts[n // 2 :]
    lat.dirs[0].put_link(_link(1, "VBEFORE"))
    sim.run_for(5.0)
    cut = sim.partition(left, right)
    lat.dirs[left[0].index].put_link(_link(1, "VLEFT"))
    lat.dirs[right[0].index].put_link(_link(1, "VRIGHT"))
    lat.dirs[right[1].index].put_link(_link(2, "VRIGHT"))
    lat.dirs[left[1].index].config_put("mode", "left")
    sim.run_for(60.0)  # long enough for each side to declare the other dead
    sim.heal(cut)
    healed_at = sim.now
    converged_at = None
    while sim.now < healed_at + 180.0:
        sim.run_for(1.0)
        snaps = [d.lww_snapshot() for d in lat.live()]
        everyone = all(len(d.hosts()) == n for d in lat.live())
        if everyone and all(s == snaps[0] for s in snaps):
            converged_at = sim.now
            break
    assert converged_at is not None, "link maps differ 180 s after the partition healed"
    links = lat.dirs[0].links()
    print(
        f"\nreal SWIM, {n} hosts split 15/15 for 60 s: identical link/config maps and "
        f"every host's state everywhere {converged_at - healed_at:.1f} s after the heal"
    )
    assert len(links) == 2 and {lk.provider_id for lk in links} <= {"VLEFT", "VRIGHT"}
    # full lattice restart with disks: links and config are there before any gossip
    for h in hosts:
        sim.crash(h)
    for h in hosts:
        sim.restart(h)
    for d in lat.live():
        assert [lk.provider_id for lk in d.links()] == [lk.provider_id for lk in links]
        assert d.config_get("mode") == "left"


def _converged(lat: Lattice, n: int, within_s: float) -> float | None:
    start = lat.sim.now
    while lat.sim.now < start + within_s:
        lat.sim.run_for(1.0)
        live = lat.live()
        snaps = [d.lww_snapshot() for d in live]
        if all(len(d.hosts()) == n for d in live) and all(s == snaps[0] for s in snaps):
            return lat.sim.now - start
    return None


def test_links_converge_after_a_three_way_split_and_a_one_way_cut():
    n = 24
    lat = Lattice(n, seed=13, skew_s=2.0)
    sim, rng = lat.sim, lat.sim.rng
    g = [sim.hosts[0:8], sim.hosts[8:16], sim.hosts[16:24]]
    cuts = [sim.partition(g[0], g[1]), sim.partition(g[0], g[2]), sim.partition(g[1], g[2])]
    for step in range(30):
        host = rng.choice(sim.hosts)
        d = lat.dirs[host.index]
        if step % 4 == 3:
            d.delete_link(_link(rng.randrange(4), "").actor_id, "wasmcloud:keyvalue")
        else:
            d.put_link(_link(rng.randrange(4), f"V{step}"))
        sim.run_for(1.5)
    sim.run_for(20.0)
    for cut in cuts:
        sim.heal(cut)
    after_split = _converged(lat, n, 180.0)
    assert after_split is not None, "link maps differ 180 s after a three-way split healed"
    one_way = sim.partition(g[0], g[2], one_way=True)  # g0 cannot reach g2; g2 reaches g0
    for step in range(10):
        lat.dirs[rng.choice(g[0] + g[2]).index].put_link(_link(rng.randrange(4), f"W{step}"))
        sim.run_for(3.0)
    sim.heal(one_way)
    after_one_way = _converged(lat, n, 180.0)
    assert after_one_way is not None, "link maps differ 180 s after a one-way cut healed"
    print(
        f"\nreal SWIM, {n} hosts: identical link maps {after_split:.0f} s after a three-way "
        f"split healed, {after_one_way:.0f} s after a one-way cut healed"
    )


@pytest.mark.parametrize("kib", [2, 20])
def test_a_large_manifest_reaches_every_host_in_pieces_over_real_swim_packets(kib):
    n = 30
    lat = Lattice(n, seed=17)
    manifest = bytes(range(256)) * 4 * kib  # real wadm manifests are 1-3 KiB
    start = lat.sim.now
    lat.dirs[3].put("control.manifests", "shop@v1", manifest)
    done_at = None
    while lat.sim.now < start + 60.0:
        lat.run_for(0.1)
        if all(d.get("control.manifests", "shop@v1") == manifest for d in lat.live()):
            done_at = lat.sim.now
            break
    assert done_at is not None, f"a {kib} KiB manifest did not reach every host in 60 s"
    print(f"\n{kib} KiB manifest reached all {n} hosts {done_at - start:.1f} s after the write")
