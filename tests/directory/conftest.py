"""Fixtures for directory tests: host ids, a manual clock and a seeded gossip network.

``GossipNet`` is a small deterministic stand-in for SWIM's dissemination: every
host gossips to ``fanout`` random peers every ``interval_s`` (memberlist:
3 peers every 200 ms), each packet carrying what ``Directory.broadcasts``
returns, with random latency and loss, and does push-pull with one random
peer every ``push_pull_interval_s``.  Partitions drop traffic between groups.
Everything is driven from one seeded ``random.Random`` in virtual time, so a
run is reproducible from its seed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from meshhost.directory import Directory, DirectoryConfig

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def host_id(i: int) -> str:
    """A 56-character N… id (shape only; the directory does not verify keys)."""
    body = ""
    n = i
    for _ in range(10):
        body += ALPHABET[n % 32]
        n //= 32
    return ("N" + body).ljust(56, "A")


class ManualClock:
    """Seconds, moved by hand."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@dataclass(order=True)
class _Timer:
    at: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class GossipNet:
    """N directories gossiping in virtual time (see module docstring)."""

    START = 1_764_000_000.0

    def __init__(
        self,
        n: int,
        seed: int,
        *,
        fanout: int = 3,
        interval_s: float = 0.2,
        latency_s: tuple[float, float] = (0.0005, 0.005),
        loss: float = 0.0,
        packet_bytes: int = 1100,
        push_pull_interval_s: float = 30.0,
        skew_s: Callable[[random.Random], float] | None = None,
        config: DirectoryConfig | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = self.START
        self.fanout = fanout
        self.interval_s = interval_s
        self.latency_s = latency_s
        self.loss = loss
        self.packet_bytes = packet_bytes
        self.push_pull_interval_s = push_pull_interval_s
        self.ids = [host_id(i) for i in range(n)]
        self.group: dict[str, int] = dict.fromkeys(self.ids, 0)
        self.down: set[str] = set()
        self.hosts: dict[str, Directory] = {}
        self.packets = 0
        self._timers: list[_Timer] = []
        self._seq = 0
        for hid in self.ids:
            skew = skew_s(self.rng) if skew_s else 0.0
            self.hosts[hid] = Directory(
                hid,
                clock=lambda skew=skew: self.now + skew,
                config=config,
                member_count=lambda: n,
            )
            self._at(self.now + self.rng.uniform(0, interval_s), self._gossip_loop(hid))
            self._at(
                self.now + self.rng.uniform(0, push_pull_interval_s), self._push_pull_loop(hid)
            )

    # scheduling
    def _at(self, when: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, _Timer(when, self._seq, action))

    def run_until(self, t: float, stop: Callable[[], bool] | None = None) -> None:
        """Run timers up to virtual time ``t`` (or until ``stop()`` is true after a step)."""
        while self._timers and self._timers[0].at <= t:
            timer = heapq.heappop(self._timers)
            self.now = timer.at
            timer.action()
            if stop is not None and stop():
                return
        self.now = max(self.now, t)

    def run_for(self, seconds: float, stop: Callable[[], bool] | None = None) -> None:
        self.run_until(self.now + seconds, stop)

    # network model
    def reachable(self, a: str, b: str) -> bool:
        return a not in self.down and b not in self.down and self.group[a] == self.group[b]

    def partition(self, groups: list[list[str]]) -> None:
        for g, members in enumerate(groups):
            for hid in members:
                self.group[hid] = g

    def heal(self) -> None:
        self.group = dict.fromkeys(self.ids, 0)

    def _gossip_loop(self, hid: str) -> Callable[[], None]:
        def tick() -> None:
            if hid not in self.down:
                me = self.hosts[hid]
                for peer in self.rng.sample(self.ids, self.fanout + 1):
                    if peer == hid:
                        continue
                    payloads = me.broadcasts(self.packet_bytes)
                    if not payloads:
                        break
                    self.packets += 1
                    if self.rng.random() < self.loss or not self.reachable(hid, peer):
                        continue
                    delay = self.rng.uniform(*self.latency_s)
                    self._at(self.now + delay, self._deliver(hid, peer, payloads))
            self._at(self.now + self.interval_s, tick)

        return tick

    def _deliver(self, sender: str, peer: str, payloads: list[bytes]) -> Callable[[], None]:
        def arrive() -> None:
            if self.reachable(sender, peer):
                for p in payloads:
                    self.hosts[peer].notify_message(sender, p)

        return arrive

    def _push_pull_loop(self, hid: str) -> Callable[[], None]:
        def tick() -> None:
            peer = self.rng.choice(self.ids)
            if peer != hid and self.reachable(hid, peer):
                self.push_pull(hid, peer)
            self._at(self.now + self.push_pull_interval_s, tick)

        return tick

    def push_pull(self, a: str, b: str) -> None:
        """One TCP push-pull exchange between a and b (both directions)."""
        state_a = self.hosts[a].local_state()
        self.hosts[b].merge_remote_state(a, state_a)
        self.hosts[a].merge_remote_state(b, self.hosts[b].local_state())

    def drain_events(self) -> None:
        for d in self.hosts.values():
            while d.next_event() is not None:
                pass


@pytest.fixture
def gossip_net() -> type[GossipNet]:
    return GossipNet
