"""Placement under churn on 100 hosts, in virtual time, replayable from a seed.

The production ``compute_placement`` and ``reconcile`` run on every simulated
host against *that host's own membership view*; only membership itself is a
model here (the real SWIM core is exercised in ``test_sim_swim.py``). The
model follows SWIM/Lifeguard timing on the LAN profile for 100 hosts:

* a crashed or cut-off host is suspected by each observer 0.5-3 s later and
  declared dead 8-15 s later (suspicion timeout 4 x log10(100) x 1 s = 8 s,
  shrinking from longer with confirmations); suspects keep their share;
* a joining or restarted host is seen alive 0.2-2.5 s later (gossip), and
  itself reconciles only after its join push-pull (0.3-1.5 s) has given it
  the view of the hosts it can reach;
* after a partition heals, each pair sees the other alive again 0.5-20 s
  later (reconnect every 10 s, then push-pull and gossip);
* an instance starts 0.05-1 s after the host decides to start it;
* a host reconciles at most every 0.5 s, when its view or instances changed.

Every delay comes from ``random.Random(seed)``; a failing run prints its SEED
and schedule, and the same seed replays the same trace.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from meshhost.apps import (
    HostState,
    HostView,
    Placement,
    StartActor,
    StopActor,
    compute_placement,
    reconcile,
)
from tests.sim.sim_apps import APPS

N_HOSTS = 100
FAULT_WINDOW_S = 60.0
SETTLE_S = 5.0
"""Desired counts must be met this long after membership has converged."""
SUSPECT_S = (0.5, 3.0)
DEAD_S = (8.0, 15.0)
SEEN_ALIVE_S = (0.2, 2.5)
JOIN_SYNC_S = (0.3, 1.5)
HEAL_S = (0.5, 20.0)
START_S = (0.05, 1.0)
RECONCILE_PERIOD_S = 0.5
"""Hosts reconcile at most this often (membership events are debounced, as the
host driver should do: a partition makes hundreds of view changes in seconds)."""

HOST_IDS = [f"N{i:03d}" for i in range(N_HOSTS)]
LABELS = {
    h: {"zone": "abc"[i % 3], **({"role": "edge"} if i % 5 == 0 else {})}
    for i, h in enumerate(HOST_IDS)
}

VIEWS = {(h, s): HostView.of(h, LABELS[h], s) for h in HOST_IDS for s in HostState}


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str  # join | crash | restart | partition | heal
    hosts: tuple[str, ...] = ()


@dataclass
class SimHost:
    host_id: str
    up: bool = False
    synced_at: float = math.inf
    view: dict[str, HostState] = field(default_factory=dict)
    version: dict[str, tuple[int, int]] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    dirty: bool = True
    life: int = 0
    """Bumped on crash and restart, so a start decided in a previous life is dropped."""


class LatticeModel:
    """Hosts with their own views, driven by a fault schedule, in virtual time."""

    def __init__(self, seed: int, initially_up: int = 80) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.hosts = {h: SimHost(h) for h in HOST_IDS}
        self.side: dict[str, int] = {}
        self.queue: list[tuple[float, int, str, tuple[object, ...]]] = []
        self.counter = 0
        self.fault_seq = 0
        self.last_view_change = 0.0
        self.trace = hashlib.blake2b(digest_size=16)
        self.placements: dict[tuple[tuple[str, HostState], ...], Placement] = {}
        self.stats = {"starts": 0, "stops": 0}
        self.next_tick = 0.0
        for h in HOST_IDS[:initially_up]:
            host = self.hosts[h]
            host.up, host.synced_at = True, 0.0
            host.view = {o: HostState.ALIVE for o in HOST_IDS[:initially_up]}
            host.version = {o: (0, 0) for o in HOST_IDS[:initially_up]}

    # -- event plumbing

    def at(self, when: float, kind: str, *args: object) -> None:
        self.counter += 1
        heapq.heappush(self.queue, (when, self.counter, kind, args))

    def reachable(self, a: str, b: str) -> bool:
        return self.hosts[a].up and self.hosts[b].up and self.side.get(a, 0) == self.side.get(b, 0)

    def learn(
        self,
        observer: str,
        subject: str,
        state: HostState,
        delay: tuple[float, float],
        phase: int = 0,
    ) -> None:
        self.at(
            self.now + self.rng.uniform(*delay),
            "view",
            observer,
            subject,
            state,
            (self.fault_seq, phase),
        )

    def lose(self, observer: str, subject: str) -> None:
        self.learn(observer, subject, HostState.SUSPECT, SUSPECT_S, 0)
        self.learn(observer, subject, HostState.DEAD, DEAD_S, 1)

    # -- faults

    def apply_fault(self, fault: Fault) -> None:
        self.fault_seq += 1
        self.trace.update(repr((self.now, fault)).encode())
        up = [h for h in HOST_IDS if self.hosts[h].up]
        if fault.kind in ("join", "restart"):
            for h in fault.hosts:
                host = self.hosts[h]
                if host.up:
                    continue
                host.up, host.view, host.version = True, {}, {}
                host.life += 1
                host.running, host.pending, host.synced_at = {}, {}, math.inf
                self.at(self.now + self.rng.uniform(*JOIN_SYNC_S), "sync", h, self.fault_seq)
                for o in up:
                    if self.reachable(o, h):
                        self.learn(o, h, HostState.ALIVE, SEEN_ALIVE_S)
        elif fault.kind == "crash":
            for h in fault.hosts:
                host = self.hosts[h]
                if not host.up:
                    continue
                reach = [o for o in up if o != h and self.reachable(o, h)]
                host.up, host.running, host.pending, host.view = False, {}, {}, {}
                host.life += 1
                for o in reach:
                    self.lose(o, h)
        elif fault.kind == "partition":
            cut = set(fault.hosts)
            before = {h: self.side.get(h, 0) for h in HOST_IDS}
            self.side = {h: (1 if h in cut else 0) for h in HOST_IDS}
            for a in up:
                for b in up:
                    if a == b:
                        continue
                    if before[a] == before[b] and not self.reachable(a, b):
                        self.lose(a, b)
                    elif before[a] != before[b] and self.reachable(a, b):
                        self.learn(a, b, HostState.ALIVE, HEAL_S)
        elif fault.kind == "heal":
            was = dict(self.side)
            self.side = {}
            for a in up:
                for b in up:
                    if a != b and was.get(a, 0) != was.get(b, 0):
                        self.learn(a, b, HostState.ALIVE, HEAL_S)

    # -- the loop

    def handle(self, kind: str, args: tuple[object, ...]) -> None:
        if kind == "fault":
            (fault,) = args
            assert isinstance(fault, Fault)
            self.apply_fault(fault)
        elif kind == "view":
            observer, subject, state, version = args
            host = self.hosts[str(observer)]
            assert isinstance(version, tuple)
            if host.up and version > host.version.get(str(subject), (-1, -1)):
                host.version[str(subject)] = version
                assert isinstance(state, HostState)
                if host.view.get(str(subject)) != state:
                    host.view[str(subject)] = state
                    host.dirty = True
                    self.last_view_change = self.now
        elif kind == "sync":
            h, seq = str(args[0]), int(args[1])  # type: ignore[call-overload]
            host = self.hosts[h]
            if host.up and host.synced_at == math.inf:
                for o in HOST_IDS:
                    if o == h or self.reachable(o, h):
                        host.view.setdefault(o, HostState.ALIVE)
                        host.version.setdefault(o, (seq, 0))
                host.synced_at, host.dirty = self.now, True
                self.last_view_change = self.now
        elif kind == "started":
            h, key, count, life = args
            host = self.hosts[str(h)]
            if host.up and life == host.life:
                # a stop may have cancelled part of this start meanwhile
                n = min(int(count), host.pending.get(str(key), 0))  # type: ignore[call-overload]
                if n:
                    host.pending[str(key)] -= n
                    host.running[str(key)] = host.running.get(str(key), 0) + n
                    host.dirty = True

    def placement_for(self, host: SimHost) -> Placement:
        view = tuple(sorted(host.view.items()))
        if view not in self.placements:
            members = [VIEWS[h, s] for h, s in view]
            self.placements[view] = compute_placement(APPS, members)
        return self.placements[view]

    def reconcile_dirty(self) -> None:
        for h in HOST_IDS:
            host = self.hosts[h]
            if not (host.up and host.dirty and host.synced_at <= self.now):
                continue
            host.dirty = False
            desired = self.placement_for(host)
            have = {
                k: host.running.get(k, 0) + host.pending.get(k, 0)
                for k in set(host.running) | set(host.pending)
            }
            for action in reconcile(h, desired, have, desired.links):
                if isinstance(action, StartActor):
                    self.stats["starts"] += action.count
                    host.pending[action.key] = host.pending.get(action.key, 0) + action.count
                    self.at(
                        self.now + self.rng.uniform(*START_S),
                        "started",
                        h,
                        action.key,
                        action.count,
                        host.life,
                    )
                elif isinstance(action, StopActor):
                    self.stats["stops"] += action.count
                    from_pending = min(host.pending.get(action.key, 0), action.count)
                    if from_pending:
                        host.pending[action.key] -= from_pending
                    if action.count > from_pending:
                        host.running[action.key] -= action.count - from_pending
                        if not host.running[action.key]:
                            del host.running[action.key]
                self.trace.update(repr((round(self.now, 6), h, action)).encode())

    def run_until(self, end: float) -> None:
        while True:
            when = self.queue[0][0] if self.queue else math.inf
            if min(when, self.next_tick) > end:
                break
            if self.next_tick <= when:
                self.now = self.next_tick
                self.next_tick += RECONCILE_PERIOD_S
                self.reconcile_dirty()
            else:
                _, _, kind, args = heapq.heappop(self.queue)
                self.now = when
                self.handle(kind, args)
        self.now = end

    def run_schedule(self, faults: list[Fault]) -> float:
        """Run the faults, then until membership has converged; returns that time."""
        for fault in faults:
            self.at(fault.at, "fault", fault)
        self.run_until(max((f.at for f in faults), default=0.0))
        while self.queue and any(k != "started" for _, _, k, _ in self.queue):
            self.run_until(max(when for when, _, k, _ in self.queue if k != "started"))
        return max(self.last_view_change, self.now)

    # -- observations

    def truth(self) -> Placement:
        members = [HostView.of(h, LABELS[h]) for h in HOST_IDS if self.hosts[h].up]
        return compute_placement(APPS, members)

    def running(self) -> dict[str, dict[str, int]]:
        return {h: dict(host.running) for h, host in self.hosts.items() if host.up and host.running}

    def totals(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for share in self.running().values():
            for key, count in share.items():
                result[key] = result.get(key, 0) + count
        return result


@st.composite
def schedules(draw: st.DrawFn) -> list[Fault]:
    faults = []
    down = set(HOST_IDS[80:])
    up = set(HOST_IDS[:80])
    partitioned = False
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, int(FAULT_WINDOW_S * 10))) / 10
        kind = draw(st.sampled_from(["join", "crash", "restart", "partition", "heal"]))
        if kind in ("join", "restart") and down:
            hosts = draw(
                st.lists(st.sampled_from(sorted(down)), min_size=1, max_size=5, unique=True)
            )
        elif kind == "crash" and len(up) > 10:
            hosts = draw(
                st.lists(st.sampled_from(sorted(up)), min_size=1, max_size=10, unique=True)
            )
        elif kind == "partition":
            hosts = draw(st.lists(st.sampled_from(HOST_IDS), min_size=1, max_size=50, unique=True))
        else:
            kind, hosts = "heal", []
        faults.append(Fault(at, kind, tuple(sorted(hosts))))
    faults.sort(key=lambda f: f.at)
    # Keep the bookkeeping of who may join/crash roughly right (the model ignores
    # impossible faults anyway), and always end with a heal.
    for fault in faults:
        if fault.kind == "crash":
            up -= set(fault.hosts)
            down |= set(fault.hosts)
        elif fault.kind in ("join", "restart"):
            down -= set(fault.hosts)
            up |= set(fault.hosts)
        partitioned = fault.kind == "partition" or (partitioned and fault.kind != "heal")
    last = faults[-1].at if faults else 0.0
    faults.append(Fault(last + 0.1, "heal"))
    return faults


def check_converged(model: LatticeModel, seed: int, faults: list[Fault]) -> None:
    truth = model.truth()
    context = f"SEED={seed} schedule={faults}"
    for h, host in model.hosts.items():
        if host.up:
            expected = {o: HostState.ALIVE for o in HOST_IDS if model.hosts[o].up}
            assert {o: s for o, s in host.view.items() if s != HostState.DEAD} == expected, (
                f"{h} view not converged; {context}"
            )
    assert model.running() == truth.as_dict(), f"running != desired; {context}"
    requested = {key: truth.total(key) for key in truth.workloads}
    assert model.totals() == {k: v for k, v in requested.items() if v}, context


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), schedules())
def test_desired_counts_are_met_after_faults_stop(seed: int, faults: list[Fault]) -> None:
    model = LatticeModel(seed)
    converged = model.run_schedule(faults)
    model.run_until(converged + SETTLE_S)
    check_converged(model, seed, faults)
    # and nothing moves any more once converged
    before = dict(model.stats)
    model.run_until(converged + SETTLE_S + 30.0)
    assert model.stats == before, f"SEED={seed} churn after convergence"


def test_a_run_replays_from_its_seed() -> None:
    faults = [
        Fault(3.0, "crash", tuple(HOST_IDS[:7])),
        Fault(9.5, "join", tuple(HOST_IDS[80:84])),
        Fault(20.0, "partition", tuple(HOST_IDS[::20])),
        Fault(40.0, "heal"),
    ]
    digests = []
    for _ in range(2):
        model = LatticeModel(1234)
        model.run_until(model.run_schedule(faults) + SETTLE_S)
        digests.append(model.trace.hexdigest())
    assert digests[0] == digests[1]
    other = LatticeModel(4321)
    other.run_until(other.run_schedule(faults) + SETTLE_S)
    assert other.trace.hexdigest() != digests[0]


DAEMON_PREFIX = "agent/"


def moves_elsewhere(model: LatticeModel, fault: Fault) -> tuple[int, int, int, int]:
    """Run one fault from a converged lattice; returns (others' stops, others' starts,
    the event host's share before, after), daemonscaler instances left out."""
    before = model.running()
    converged = model.run_schedule([fault])
    model.run_until(converged + SETTLE_S)
    after = model.running()
    stops = starts = 0
    for h in set(before) | set(after):
        if h in fault.hosts:
            continue
        for key in set(before.get(h, {})) | set(after.get(h, {})):
            if key.startswith(DAEMON_PREFIX):
                continue  # per-host instances never move
            delta = after.get(h, {}).get(key, 0) - before.get(h, {}).get(key, 0)
            starts += max(delta, 0)
            stops += max(-delta, 0)

    def own(state: dict[str, dict[str, int]]) -> int:
        return sum(
            n
            for h in fault.hosts
            for k, n in state.get(h, {}).items()
            if not k.startswith(DAEMON_PREFIX)
        )

    own_before, own_after = own(before), own(after)
    return stops, starts, own_before, own_after


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(HOST_IDS[:80]), st.sampled_from(HOST_IDS[80:]))
def test_one_host_joining_or_crashing_moves_only_its_own_share(
    seed: int, victim: str, newcomer: str
) -> None:
    model = LatticeModel(seed)
    model.run_until(2.0)  # start the initial placement
    model.run_until(model.run_schedule([]) + SETTLE_S)
    total = sum(model.totals().values())
    model.stats = {"starts": 0, "stops": 0}
    stops, starts, own_before, own_after = moves_elsewhere(
        model, Fault(model.now + 1, "crash", (victim,))
    )
    assert (stops, starts) == (0, own_before), f"SEED={seed}"
    stops, starts, own_before, own_after = moves_elsewhere(
        model, Fault(model.now + 1, "join", (newcomer,))
    )
    assert (stops, starts) == (own_after, 0), f"SEED={seed}"
    # the bound: what moves on the others is at most 1/N of all
    # instances plus the event host's own share
    assert stops <= math.ceil(total / 80) + own_after, f"SEED={seed}"


def test_partition_duplicates_are_removed_after_heal() -> None:
    for seed in (1,):
        model = LatticeModel(seed)
        model.run_until(model.run_schedule([]) + SETTLE_S)
        requested = model.totals()
        cut = tuple(HOST_IDS[:80:2])  # half of each zone on each side
        model.run_until(model.run_schedule([Fault(model.now + 1, "partition", cut)]) + SETTLE_S)
        during = model.totals()
        # both sides run the whole count: availability first, duplicates by design
        assert during["web/front@" + "front" * 3 + "f"] == 2 * 40, f"SEED={seed}"
        assert during["cache/redis@" + "redis" * 3 + "r"] == 2 * 7, f"SEED={seed}"
        healed = model.run_schedule([Fault(model.now + 1, "heal")])
        model.run_until(healed + SETTLE_S)
        assert model.totals() == requested, f"SEED={seed}"
        check_converged(model, seed, [])
