"""Invoker: local and remote calls, failover within the deadline, clear errors."""

import random

import pytest
import trio
import trio.testing

from meshhost.errors import (
    DeadlineExceeded,
    ErrorCode,
    HostUnreachable,
    MeshError,
    NoHostForActor,
    RemoteInvocationError,
)
from meshhost.rpc import Candidate, Invocation, Invoker, Router


class ActorFailed(MeshError):
    code = ErrorCode.ACTOR_FAILED


class Lattice:
    """Hosts wired by function calls; each host can be up, dead or hung."""

    def __init__(self, hosts: dict[str, int], runs_actor: set[str]) -> None:
        self.state = {h: "up" for h in hosts}
        self.runs_actor = runs_actor
        self.calls: list[tuple[str, str]] = []
        self.invokers = {h: self._make(h) for h in hosts}

    def _make(self, host: str) -> Invoker:
        async def run_local(inv: Invocation) -> bytes:
            self.calls.append((host, inv.operation))
            if host not in self.runs_actor:
                raise RemoteInvocationError(ErrorCode.NOT_FOUND, "actor not here")
            if inv.operation == "Fail":
                raise ActorFailed("actor trapped: unreachable")
            return host.encode() + b":" + inv.payload

        async def send(target: str, data: bytes, timeout_s: float) -> bytes:
            state = self.state[target]
            if state == "dead":
                raise HostUnreachable(f"connection to {target} refused")
            if state == "hung":
                await trio.sleep(timeout_s)
                raise HostUnreachable(f"{target} did not answer in {timeout_s} s")
            if state.startswith("busy:"):  # answers, but only after this many seconds
                delay = float(state[5:])
                if delay > timeout_s:  # as the transport does: the request times out
                    await trio.sleep(timeout_s)
                    raise HostUnreachable(f"{target} did not answer in {timeout_s} s")
                await trio.sleep(delay)
            return await self.invokers[target].handle(host, data)

        def locate(target: str) -> tuple[str, list[Candidate]]:
            return target, [
                Candidate(h, 1, alive=self.state[h] != "gone") for h in sorted(self.runs_actor)
            ]

        return Invoker(
            host_id=host,
            lattice="lab",
            router=Router(host, random.Random(1)),
            locate=locate,
            send=send,
            run_local=run_local,
            clock=trio.current_time,
        )


async def test_local_call_never_leaves_the_host() -> None:
    lat = Lattice({"A": 0, "B": 0}, runs_actor={"A", "B"})
    assert await lat.invokers["A"].invoke("M1", "Echo", b"hi", timeout_s=5) == b"A:hi"
    assert lat.calls == [("A", "Echo")]


async def test_remote_call_runs_on_the_host_that_has_the_actor() -> None:
    lat = Lattice({"A": 0, "B": 0}, runs_actor={"B"})
    assert await lat.invokers["A"].invoke("M1", "Echo", b"x", timeout_s=5) == b"B:x"


async def test_dead_host_fails_over_to_another_instance() -> None:
    lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
    lat.state["B"] = "dead"
    for _ in range(10):
        assert await lat.invokers["A"].invoke("M1", "Echo", b"x", timeout_s=5) == b"C:x"


async def test_hung_host_costs_at_most_half_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
    lat.state["B"] = lat.state["C"] = "hung"
    start = trio.current_time()
    with pytest.raises(DeadlineExceeded, match="within 4 s"):
        await lat.invokers["A"].invoke("M1", "Echo", b"x", timeout_s=4)
    assert trio.current_time() - start == pytest.approx(4, abs=0.01)


async def test_hung_host_is_skipped_after_one_time_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
    lat.state["B"] = "hung"
    for _ in range(5):
        start = trio.current_time()
        assert await lat.invokers["A"].invoke("M1", "Echo", b"x", timeout_s=4) == b"C:x"
        assert trio.current_time() - start <= 2.0 + 1e-6
    # Only the first call (if it chose B) may have waited; B is on probation after that.
    start = trio.current_time()
    assert await lat.invokers["A"].invoke("M1", "Echo", b"x", timeout_s=4) == b"C:x"
    assert trio.current_time() - start < 1e-6


async def test_a_busy_host_still_answers_when_the_hedge_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # B answers after 3 s of a 5 s budget; C is dead. Whichever is tried first, B's
    # answer is not thrown away at half the budget: the hedge to C fails fast and
    # the caller keeps waiting for B.
    for seed in range(6):
        lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
        lat.invokers["A"].router = Router("A", random.Random(seed))
        lat.state["B"], lat.state["C"] = "busy:3", "dead"
        start = trio.current_time()
        assert await lat.invokers["A"].invoke("M1", "Echo", b"x", timeout_s=5) == b"B:x"
        assert trio.current_time() - start == pytest.approx(3, abs=0.01)


async def test_the_first_of_two_slow_hosts_to_answer_wins(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
    lat.state["B"], lat.state["C"] = "busy:3", "busy:3.5"
    start = trio.current_time()
    answer = await lat.invokers["A"].invoke("M1", "Echo", b"x", timeout_s=5)
    took = trio.current_time() - start
    # B first: answers at 3 s; C first: B is hedged in at 2.5 s and answers at 5.5 s,
    # after C's 3.5 s answer.  Either way the earlier answer is taken.
    assert (answer, took) in (
        (b"B:x", pytest.approx(3, abs=0.01)),
        (b"C:x", pytest.approx(3.5, abs=0.01)),
    )


async def test_actor_failure_is_the_answer_and_is_not_retried() -> None:
    lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
    with pytest.raises(RemoteInvocationError, match="actor trapped") as info:
        await lat.invokers["A"].invoke("M1", "Fail", b"", timeout_s=5)
    assert info.value.code == ErrorCode.ACTOR_FAILED
    assert len([c for c in lat.calls if c[1] == "Fail"]) == 1


async def test_no_host_runs_the_actor_says_so() -> None:
    lat = Lattice({"A": 0, "B": 0}, runs_actor=set())
    with pytest.raises(NoHostForActor, match="no host in lattice 'lab' runs actor M1"):
        await lat.invokers["A"].invoke("M1", "Echo", b"", timeout_s=5)
    lat = Lattice({"A": 0, "B": 0}, runs_actor={"B"})
    lat.state["B"] = "gone"
    with pytest.raises(NoHostForActor, match=r"\(1 host known to run it, none alive\)"):
        await lat.invokers["A"].invoke("M1", "Echo", b"", timeout_s=5)


async def test_all_hosts_dead_gives_the_last_reason() -> None:
    lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
    lat.state["B"] = lat.state["C"] = "dead"
    with pytest.raises(HostUnreachable, match="refused"):
        await lat.invokers["A"].invoke("M1", "Echo", b"", timeout_s=5)


async def test_expired_invocation_is_refused_by_the_target() -> None:
    lat = Lattice({"A": 0, "B": 0}, runs_actor={"B"})
    with pytest.raises(DeadlineExceeded):
        await lat.invokers["A"].invoke("M1", "Echo", b"", timeout_s=0)


async def test_a_placement_gossip_missed_is_found_by_asking_peers_once() -> None:
    lat = Lattice({"A": 0, "B": 0}, runs_actor={"B"})
    invoker = lat.invokers["A"]
    known = {"B": False}
    real_locate = invoker._locate

    def locate(target: str) -> tuple[str, list[Candidate]]:
        actor, placements = real_locate(target)
        return actor, [p for p in placements if known[p.host_id]]

    refreshes: list[float] = []

    async def refresh(timeout_s: float) -> None:
        refreshes.append(timeout_s)
        known["B"] = True  # a peer told us B runs it

    invoker._locate = locate
    invoker.refresh = refresh
    assert await invoker.invoke("M1", "Echo", b"x", timeout_s=5) == b"B:x"
    assert len(refreshes) == 1 and 0 < refreshes[0] <= 1.0

    known["B"] = False
    refreshes.clear()

    async def refresh_in_vain(timeout_s: float) -> None:
        refreshes.append(timeout_s)

    invoker.refresh = refresh_in_vain
    with pytest.raises(NoHostForActor, match="no host in lattice 'lab' runs actor M1"):
        await invoker.invoke("M1", "Echo", b"x", timeout_s=5)
    assert len(refreshes) == 1  # asked once, then the clear error


def track_cancels(lat: Lattice, invoker: Invoker) -> list[str]:
    """Wrap ``invoker``'s send: the hosts whose request was cancelled before it ended."""
    cancelled: list[str] = []
    send = invoker._send

    async def tracked(target: str, data: bytes, timeout_s: float) -> bytes:
        try:
            return await send(target, data, timeout_s)
        except trio.Cancelled:
            cancelled.append(target)
            raise

    invoker._send = tracked
    return cancelled


async def test_a_hedge_that_answers_first_wins_and_the_first_attempt_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first attempt runs in the caller's own task; when the hedge (started at
    # half the budget) answers before it, the caller returns that answer and the
    # first attempt is cancelled (the peer is told to stop), whichever went first.
    for seed in range(6):
        lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
        a = lat.invokers["A"]
        a.router = Router("A", random.Random(seed))
        cancelled = track_cancels(lat, a)
        lat.state["B"], lat.state["C"] = "busy:4.5", "busy:1"
        start = trio.current_time()
        assert await a.invoke("M1", "Echo", b"x", timeout_s=5) == b"C:x"
        took = trio.current_time() - start
        assert took == pytest.approx(1, abs=0.01) or took == pytest.approx(3.5, abs=0.01)
        assert cancelled == ([] if took < 2 else ["B"])


async def test_cancelling_a_hedged_call_cancels_every_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lat = Lattice({"A": 0, "B": 0, "C": 0}, runs_actor={"B", "C"})
    a = lat.invokers["A"]
    cancelled = track_cancels(lat, a)
    lat.state["B"] = lat.state["C"] = "busy:9"
    with trio.move_on_after(3):  # after the hedge started at 2.5 s
        await a.invoke("M1", "Echo", b"x", timeout_s=5)
    await trio.sleep(0.1)  # the hedging task sees its cancellation
    assert sorted(cancelled) == ["B", "C"]
    assert a.router.in_flight("B") == a.router.in_flight("C") == 0


async def test_a_failed_call_is_counted_where_it_was_answered() -> None:
    # An actor that ran and failed was answered (here or by a peer): `where` says
    # which; `none` is for calls no host ran (no host, unreachable, timed out).
    seen: list[tuple[str, str]] = []

    class Seen:
        def invocation(self, actor: str, op: str, where: str, outcome: str, s: float) -> None:
            seen.append((where, outcome))

        def __getattr__(self, name: str) -> object:
            return lambda *args: None

    lat = Lattice({"A": 0, "B": 0}, runs_actor={"A"})
    for host in ("A", "B"):
        lat.invokers[host].observer = Seen()  # type: ignore[assignment]
        with pytest.raises(MeshError):
            await lat.invokers[host].invoke("M1", "Fail", b"", timeout_s=5)
    lat.state["A"] = "dead"
    with pytest.raises(MeshError):
        await lat.invokers["B"].invoke("M1", "Echo", b"", timeout_s=5)
    assert seen == [("local", "actor_failed"), ("remote", "actor_failed"), ("none", "unavailable")]
