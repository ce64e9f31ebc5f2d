"""The UDP driver around a scripted core: sealing, dropping, counting, timers."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from meshhost.config import MembershipConfig
from meshhost.errors import MembershipDecodeError
from meshhost.identity.keyring import SEAL_OVERHEAD, Keyring
from meshhost.membership.udp import MembershipDriver

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))


@dataclass
class EchoCore:
    """Answers b"ping" with b"pong"; reports what it got; one timer, then none."""

    timer_at: float | None = None
    received: list[tuple[bytes, Any]] = field(default_factory=list)
    outbox: list[tuple[Any, bytes]] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    timers_fired: int = 0
    pushes: list[tuple[bytes, Any]] = field(default_factory=list)

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        self.received.append((data, addr))
        self.events.append(("got", data))
        if data == b"ping":
            self.outbox.append((addr, b"pong"))

    def handle_timer(self, now: float) -> None:
        self.timers_fired += 1
        self.timer_at = None
        self.events.append(("timer", now))

    def get_timer(self) -> float | None:
        return self.timer_at

    def datagrams_to_send(self) -> list[tuple[Any, bytes]]:
        out, self.outbox = self.outbox, []
        return out

    def next_event(self) -> object | None:
        return self.events.pop(0) if self.events else None

    def join(self, addrs: list[Any], now: float) -> None:
        self.outbox.extend((a, b"ping") for a in addrs)

    def leave(self, now: float) -> None:
        self.events.append(("left", now))

    def update_meta(self, meta: bytes, now: float) -> None:
        self.events.append(("meta", meta))

    def push_pull_due(self, now: float) -> Any | None:
        return None

    def push_pull_payload(self, now: float) -> bytes:
        return b"state"

    def merge_push_pull(self, data: bytes, addr: Any, now: float) -> str | None:
        if data.startswith(b"garbage"):
            return "push-pull state must be an array"
        self.pushes.append((data, addr))
        return None


def ring(secret: bytes = SECRET) -> Keyring:
    return Keyring.create("test", [secret], random_bytes=random.Random(7).randbytes)


async def start(nursery: trio.Nursery, core: EchoCore, host: str = "127.0.0.1"):
    driver = MembershipDriver(core, ring(), MembershipConfig())
    addr = await driver.bind(host, 0)
    await nursery.start(driver.serve)
    return driver, addr


async def next_matching(driver: MembershipDriver, kind: str) -> Any:
    with trio.fail_after(5):
        async for event in driver.events:
            if event[0] == kind:
                return event
    raise AssertionError("event channel closed")


async def test_two_drivers_exchange_sealed_datagrams() -> None:
    async with trio.open_nursery() as nursery:
        a_core, b_core = EchoCore(), EchoCore()
        a, _a_addr = await start(nursery, a_core, "127.0.0.1")
        b, b_addr = await start(nursery, b_core, "127.0.0.2")
        a.join([b_addr])
        assert (await next_matching(b, "got"))[1] == b"ping"
        assert (await next_matching(a, "got"))[1] == b"pong"
        assert b_core.received[0][1][0] == "127.0.0.1"
        assert a.stats.sent == 1 and b.stats.delivered == 1
        nursery.cancel_scope.cancel()


async def test_datagrams_on_the_wire_are_sealed() -> None:
    async with trio.open_nursery() as nursery:
        core = EchoCore()
        driver, _ = await start(nursery, core)
        sniffer = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await sniffer.bind(("127.0.0.1", 0))
        driver.join([sniffer.getsockname()])
        with trio.fail_after(5):
            wire, _ = await sniffer.recvfrom(2048)
        assert b"ping" not in wire
        assert len(wire) == 4 + SEAL_OVERHEAD
        assert ring().open(wire) == b"ping"
        sniffer.close()
        nursery.cancel_scope.cancel()


async def test_bad_packets_are_dropped_counted_and_never_reach_the_core() -> None:
    async with trio.open_nursery() as nursery:
        core = EchoCore()
        driver, addr = await start(nursery, core)
        good = ring().seal(b"ping")
        bad = [
            ring(OTHER_SECRET).seal(b"ping"),  # wrong key
            good[:30],  # truncated below the header
            good[:-1],  # truncated tag
            b"\x00" * 100,  # garbage with an unknown version
            bytes([1]) + bytes(99),  # garbage that looks like version 1
            ring().seal(b"x" * 1200),  # oversized once sealed
            b"\x01" * 60000,  # oversized garbage
        ]
        sender = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await sender.bind(("127.0.0.1", 0))
        for packet in bad:
            await sender.sendto(packet, addr)
        await sender.sendto(good, addr)  # a marker that arrives after the bad ones
        await next_matching(driver, "got")
        assert core.received == [(b"ping", sender.getsockname())]
        stats, seal = driver.stats, driver.keyring.stats
        assert stats.received == len(bad) + 1
        assert stats.oversized == 2
        assert seal.too_short == 1 and seal.bad_version == 1 and seal.bad_auth == 3
        assert stats.delivered == 1
        sender.close()
        nursery.cancel_scope.cancel()


async def test_timer_is_rearmed_after_every_input() -> None:
    async with trio.open_nursery() as nursery:
        core = EchoCore()
        driver, _ = await start(nursery, core)
        # The timer loop went to sleep with no deadline; an input re-arms it.
        armed = driver.now() + 0.05
        core.timer_at = armed
        driver.update_meta(b"m")
        assert (await next_matching(driver, "timer"))[1] >= armed
        assert core.timers_fired == 1
        nursery.cancel_scope.cancel()


async def test_push_pull_request_is_merged_and_answered() -> None:
    async with trio.open_nursery() as nursery:
        core = EchoCore()
        driver, _ = await start(nursery, core)
        reply = await driver.handle_push_pull("NPEER", b"their state", ("127.0.0.9", 9))
        assert reply == b"state"
        assert core.pushes == [(b"their state", ("127.0.0.9", 9))]
        assert driver.stats.push_pulls == 1
        nursery.cancel_scope.cancel()


async def test_malformed_push_pull_is_refused_with_the_reason_not_answered() -> None:
    async with trio.open_nursery() as nursery:
        core = EchoCore()
        driver, _ = await start(nursery, core)
        with pytest.raises(MembershipDecodeError, match="refused: push-pull state must be"):
            await driver.handle_push_pull("NPEER", b"garbage", ("127.0.0.9", 9))
        assert core.pushes == []
        assert (driver.stats.push_pulls, driver.stats.push_pull_failures) == (0, 1)
        nursery.cancel_scope.cancel()


async def test_leave_reaches_the_core_and_returns_within_its_timeout() -> None:
    async with trio.open_nursery() as nursery:
        core = EchoCore()
        driver, _ = await start(nursery, core)
        with trio.fail_after(5):
            await driver.leave(timeout_s=0.2)
        assert (await next_matching(driver, "left"))[0] == "left"
        nursery.cancel_scope.cancel()
