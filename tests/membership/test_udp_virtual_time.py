"""The real SWIM core behind the real UDP driver, on trio's fake network in virtual time.

No sockets, no threads: ``tests/membership/udpnet.py`` carries the datagrams and
the autojump clock skips idle time, so a LAN-profile failure detection that
takes seconds runs in milliseconds and the same test always sees the same
timeline shape.
"""

from __future__ import annotations

import random

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from meshhost.config import MembershipConfig
from meshhost.identity import nkeys
from meshhost.identity.keyring import Keyring
from meshhost.membership import MemberDead, MemberState, Swim
from meshhost.membership.udp import MembershipDriver
from tests.membership.udpnet import enable_udp_net

SECRET = bytes(range(32))
N = 5


async def start_driver(nursery: trio.Nursery, i: int, config: MembershipConfig):
    identity = nkeys.generate(nkeys.Prefix.SERVER, random.Random(i).randbytes)
    ring = Keyring("vt", [SECRET], random_bytes=random.Random(1000 + i).randbytes)
    offset = 1_700_000_000.0  # a fixed "Unix time" so incarnations are reproducible
    addr = (f"10.0.0.{i + 1}", 7946)
    core = Swim(identity, addr, config, random.Random(i), trio.current_time() + offset)
    driver = MembershipDriver(core, ring, config, clock_offset=offset)
    await driver.bind(*addr)
    scope = trio.CancelScope()

    async def run(*, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await driver.serve(task_status=task_status)

    await nursery.start(run)
    return core, driver, scope


async def test_five_drivers_converge_and_detect_a_crash_in_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    enable_udp_net()
    config = MembershipConfig()  # LAN numbers
    async with trio.open_nursery() as nursery:
        hosts = [await start_driver(nursery, i, config) for i in range(N)]
        for _core, driver, _scope in hosts[1:]:
            driver.join([("10.0.0.1", 7946)])
        start = trio.current_time()
        ids = {core.id for core, _, _ in hosts}
        while not all(core.alive_ids() == ids for core, _, _ in hosts):
            assert trio.current_time() - start < 60, "no convergence in 60 virtual s"
            await trio.sleep(0.1)
        converged_s = trio.current_time() - start

        victim_core, _victim_driver, victim_scope = hosts[-1]
        victim_scope.cancel()  # a crash: no leave, the socket just goes away
        crashed_at = trio.current_time()
        survivors = hosts[:-1]

        def dead_everywhere() -> bool:
            return all(
                (m := core.member(victim_core.id)) is not None and m.state == MemberState.DEAD
                for core, _, _ in survivors
            )

        while not dead_everywhere():
            assert trio.current_time() - crashed_at < 60, "crash not detected in 60 virtual s"
            await trio.sleep(0.1)
        detected_s = trio.current_time() - crashed_at
        print(
            f"virtual time: converged {converged_s:.1f} s, crash dead everywhere {detected_s:.1f} s"
        )
        # Suspicion alone lasts >= 4 * probe interval with LAN numbers (N < 10).
        assert detected_s >= config.suspicion_mult * config.probe_interval_s
        events = []
        for _core, driver, _scope in survivors:
            while True:
                try:
                    events.append(driver.events.receive_nowait())
                except trio.WouldBlock:
                    break
        assert sum(isinstance(e, MemberDead) for e in events) == len(survivors)
        for _core, driver, _scope in survivors:
            assert driver.stats.oversized_out == 0 and driver.keyring.stats.rejected == 0
        nursery.cancel_scope.cancel()


SEALER = Keyring("vt", [SECRET], random_bytes=random.Random(5).randbytes)


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=1400),  # raw garbage, some oversized
            st.binary(max_size=1100).map(SEALER.seal),  # authenticated garbage
        ),
        max_size=20,
    )
)
def test_random_datagrams_change_nothing_and_never_raise(datagrams: list[bytes]) -> None:
    async def scenario() -> None:
        config = MembershipConfig()
        identity = nkeys.generate(nkeys.Prefix.SERVER, random.Random(1).randbytes)
        core = Swim(identity, ("10.0.0.1", 7946), config, random.Random(1), 1000.0)
        driver = MembershipDriver(
            core, Keyring("vt", [SECRET]), config, clock_offset=1000.0 - trio.current_time()
        )
        before = core.members()
        for data in datagrams:
            driver.datagram_received(data, ("10.0.0.9", 7946))
        assert core.members() == before
        s = driver.stats
        assert s.received == len(datagrams)
        assert s.oversized + driver.keyring.stats.rejected + s.delivered == s.received
        assert s.core_errors == 0

    trio.run(scenario, clock=trio.testing.MockClock())
