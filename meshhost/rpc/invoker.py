"""The trio side of invocations: send, fail over, answer.

``Invoker.invoke`` asks the router for candidate hosts and tries them in
order within the caller's deadline.  What happens on each kind of failure:

* connection loss, refused connection, or a remote ``unavailable`` /
  ``overloaded`` / ``shutting_down`` / ``not_found`` answer (the actor moved):
  try the next candidate at once;
* no answer within half the remaining time while another candidate exists:
  that candidate is tried too, beside the first (a hedge; the first answer
  wins, the other attempt is cancelled), so a hung host costs at most half
  the budget and a merely busy one may still answer;
* an answer that the actor failed, was denied, or the input was invalid: that
  is the result; it is not retried (running it elsewhere would fail the same).

Calls are delivered at least once: a host that ran a call and lost its
answer (crash, broken connection) or a hedge can make it run on two hosts,
as with wasmCloud's NATS requests.  Every attempt carries the same
invocation id, which guests read to de-duplicate (proto/spec/rpc.md,
"Delivery").

``Invoker.handle`` is the transport handler for channel 1: it decodes the
envelope, refuses expired or looping calls, runs the actor locally and
encodes the result.  A remote host never gets a Python traceback, only a
code and a message.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from meshhost.errors import (
    DeadlineExceeded,
    ErrorCode,
    HopLimitExceeded,
    HostUnreachable,
    InvalidInvocation,
    MeshError,
    NoHostForActor,
    RemoteInvocationError,
)
from meshhost.identity import short_id
from meshhost.observe import NULL_OBSERVER, Observer
from meshhost.rpc.envelope import (
    MAX_HOPS,
    Invocation,
    decode_invocation,
    decode_result,
    encode_invocation,
    encode_result_fields,
)
from meshhost.rpc.router import Candidate, Router
from meshhost.transport.deadlines import Deadlines

__all__ = ["Invoker", "Locator", "Sender"]

log = logging.getLogger(__name__)

RETRY_ELSEWHERE = frozenset(
    {ErrorCode.UNAVAILABLE, ErrorCode.OVERLOADED, ErrorCode.SHUTTING_DOWN, ErrorCode.NOT_FOUND}
)
"""Remote answers that mean "not here, not now": another host may serve the call."""
_ANSWERED_BY = "_meshhost_answered_by"
"""Set on an error the local actor run raised: this host answered the call."""


class Sender(Protocol):
    """Sends an encoded invocation to a host and returns the encoded result.

    Raises HostUnreachable on connection loss, refusal or time-out.
    """

    async def __call__(self, host_id: str, data: bytes, timeout_s: float) -> bytes: ...


class Locator(Protocol):
    """Resolves a target (``M…`` key or call alias) to (actor id, placements)."""

    def __call__(self, target: str) -> tuple[str, list[Candidate]]: ...


Refresh = Callable[[float], Awaitable[None]]
"""``await refresh(timeout_s)``: ask peers for directory state this host may have missed."""
REFRESH_MAX_S = 1.0
"""Longest a call waits for that repair before reporting that no host runs the actor."""

LocalRunner = Callable[[Invocation], Awaitable[bytes]]
"""Runs an invocation on this host.  It must return or raise by the invocation's
deadline (a ``MeshError`` with code ``timeout`` when it cannot): ``handle`` puts
no cancel scope of its own around it, which would cost more than a small call."""


class _Race:
    """One call whose first attempt runs in the caller's task while a hedge may run."""

    __slots__ = ("attempt_scope", "done", "final", "hedge_scope", "results")

    def __init__(self) -> None:
        self.attempt_scope = trio.CancelScope()
        self.hedge_scope = trio.CancelScope()
        self.results: trio.MemorySendChannel[tuple[str, bytes | MeshError]] | None = None
        """Set when the hedge started: where the first attempt's outcome goes."""
        self.done = trio.Event()
        self.final: tuple[bytes, str] | BaseException | None = None


class Invoker:
    def __init__(
        self,
        *,
        host_id: str,
        lattice: str,
        router: Router,
        locate: Locator,
        send: Sender,
        run_local: LocalRunner,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        refresh: Refresh | None = None,
    ) -> None:
        self.host_id = host_id
        self.lattice = lattice
        self.router = router
        self._locate = locate
        self._send = send
        self._run_local = run_local
        self._clock = clock
        self._random_bytes = random_bytes
        self.refresh = refresh
        """Used once per call before it reports that no host runs the
        actor (gossip may have missed this host; see the directory driver)."""
        self._id_prefix = random_bytes(8)
        self._ids = itertools.count(1)  # next() on it is atomic: worker threads draw ids too
        self.observer: Observer = NULL_OBSERVER
        """Told how each call ended (set by the host when it is monitored)."""
        self._timer = Deadlines()
        self._timer_token: trio.lowlevel.TrioToken | None = None

    def new_id(self) -> bytes:
        """A fresh invocation id: this host's 8 random bytes, then a 64-bit counter.

        Thread-safe.  A failover or hedge resends the same invocation, so
        its id, unchanged (proto/spec/rpc.md, "Delivery").
        """
        return self._id_prefix + next(self._ids).to_bytes(8, "big")

    async def invoke(self, target: str, operation: str, payload: bytes, **options: Any) -> bytes:
        """Run ``operation`` on actor ``target`` somewhere in the lattice; return its answer.

        Options as for :meth:`call`.  Raises NoHostForActor, DeadlineExceeded,
        HopLimitExceeded, HostUnreachable, or RemoteInvocationError / the local
        MeshError when the actor failed.
        """
        answer, _host = await self.call(target, operation, payload, **options)
        return answer

    async def call(
        self,
        target: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float,
        origin_actor: str = "",
        trace_id: bytes | None = None,
        hops: int = 0,
        deadline_unix_ms: int | None = None,
        parent_span: bytes = b"",
        trace_flags: int = 0,
    ) -> tuple[bytes, str]:
        """:meth:`invoke`, also returning the id of the host that answered.

        ``timeout_s`` bounds the whole call, failovers included (``deadline_unix_ms``
        may shorten it: a caller's own deadline); ``origin_actor``, ``trace_id`` and
        ``hops`` carry an actor-to-actor call chain; ``parent_span`` and
        ``trace_flags`` the caller's W3C trace context (the envelope carries them).
        """
        if hops > MAX_HOPS:
            raise HopLimitExceeded(f"call chain to {target} exceeds {MAX_HOPS} hops")
        actor_id, placements = self._locate(target)
        started = time.perf_counter()
        try:
            answer, host = await self._call(
                target,
                actor_id,
                placements,
                operation,
                payload,
                timeout_s,
                origin_actor,
                trace_id,
                hops,
                deadline_unix_ms,
                parent_span,
                trace_flags,
            )
        except MeshError as exc:
            self.observer.invocation(
                actor_id,
                operation,
                self._where_failed(exc),
                exc.code.name.lower(),
                time.perf_counter() - started,
            )
            raise
        self.observer.invocation(
            actor_id,
            operation,
            "local" if host == self.host_id else "remote",
            "ok",
            time.perf_counter() - started,
        )
        return answer, host

    async def _call(
        self,
        target: str,
        actor_id: str,
        placements: list[Candidate],
        operation: str,
        payload: bytes,
        timeout_s: float,
        origin_actor: str,
        trace_id: bytes | None,
        hops: int,
        deadline_unix_ms: int | None,
        parent_span: bytes = b"",
        trace_flags: int = 0,
    ) -> tuple[bytes, str]:
        now = self._clock()
        deadline = now + timeout_s
        if deadline_unix_ms is not None:
            deadline = min(deadline, deadline_unix_ms / 1000)
        inv_id = self.new_id()
        inv = Invocation(
            id=inv_id,
            origin_host=self.host_id,
            origin_actor=origin_actor,
            target=actor_id,
            operation=operation,
            payload=payload,
            deadline_unix_ms=int(deadline * 1000),
            trace_id=trace_id or inv_id,  # a new trace is named after its first call
            hops=hops,
            parent_span=parent_span,
            trace_flags=trace_flags,
        )
        if deadline <= now:
            raise DeadlineExceeded(f"the deadline for actor {target} passed before the call")
        order = self.router.candidates(placements, now)
        if len(order) == 1:  # the common case: one candidate, no hedging machinery
            try:
                return await self._attempt(order[0], inv, deadline - now), order[0]
            except MeshError as exc:
                if exc.code not in RETRY_ELSEWHERE:
                    raise
                self.observer.failover(actor_id)
                return await self._fail_over(target, inv, deadline, timeout_s, [order[0]], exc)
        if order:
            return await self._hedged(target, inv, deadline, timeout_s, order[0], now)
        return await self._fail_over(target, inv, deadline, timeout_s, [], None)

    async def _hedged(
        self,
        target: str,
        inv: Invocation,
        deadline: float,
        timeout_s: float,
        first: str,
        now: float,
    ) -> tuple[bytes, str]:
        """Several candidates: the first attempt runs in this task, with no nursery.

        Only when it has not answered by half the remaining time (a timer, not
        a cancel scope, which would cancel it) does :meth:`_fail_over` start,
        in a task of its own, with this attempt counted as outstanding: it
        hedges to the next candidate and takes this attempt's outcome when it
        comes (or cancels it when a hedge answers first).  A nursery, a task
        and a channel per call cost ~70 µs of CPU, several times a whole call.
        """
        race = _Race()
        entry = self._hedge_timer().add(
            self._trio_deadline(now + (deadline - now) / 2),
            lambda: self._start_hedge(race, target, inv, deadline, timeout_s, first),
        )
        outcome: bytes | MeshError | None = None
        try:
            with trio.CancelScope() as race.attempt_scope:
                try:
                    outcome = await self._attempt(first, inv, deadline - now)
                except MeshError as exc:
                    outcome = exc
        except BaseException:  # cancelled by our caller: no hedge, or stop it
            race.hedge_scope.cancel()
            raise
        finally:
            self._timer.cancel(entry)
        if race.results is None:  # no hedge started: as with one candidate
            if isinstance(outcome, bytes):
                return outcome, first
            assert outcome is not None
            if outcome.code not in RETRY_ELSEWHERE:
                raise outcome
            self.observer.failover(inv.target)
            return await self._fail_over(target, inv, deadline, timeout_s, [first], outcome)
        if outcome is not None:  # ours ended first: the hedging task decides
            race.results.send_nowait((first, outcome))
        try:
            await race.done.wait()
        except trio.Cancelled:
            race.hedge_scope.cancel()
            raise
        if isinstance(race.final, BaseException):
            raise race.final
        if race.final is None:  # the hedging task was cancelled: the run is ending
            raise DeadlineExceeded(f"the call to actor {target} was stopped")
        return race.final

    def _hedge_timer(self) -> Deadlines:
        """The timer of hedges, its task started in the current trio run if need be."""
        token = trio.lowlevel.current_trio_token()
        if self._timer_token is not token:
            self._timer = Deadlines()
            self._timer_token = token
            trio.lowlevel.spawn_system_task(self._timer.run, name="invoker hedge timer")
        return self._timer

    def _start_hedge(
        self,
        race: _Race,
        target: str,
        inv: Invocation,
        deadline: float,
        timeout_s: float,
        first: str,
    ) -> None:
        """Half the time is gone and ``first`` has not answered: hand over to _fail_over."""
        results: trio.MemorySendChannel[tuple[str, bytes | MeshError]]
        results, answers = trio.open_memory_channel(math.inf)
        race.results = results

        async def hedge() -> None:
            try:
                with race.hedge_scope:
                    race.final = await self._fail_over(
                        target,
                        inv,
                        deadline,
                        timeout_s,
                        [first],
                        None,
                        answers=(results, answers),
                        outstanding=1,
                    )
            except Exception as exc:
                race.final = exc
            finally:
                race.attempt_scope.cancel()  # ours lost (or the caller is gone)
                race.done.set()

        trio.lowlevel.spawn_system_task(hedge, name=f"invocation {inv.id.hex()} hedge")

    async def _fail_over(
        self,
        target: str,
        inv: Invocation,
        deadline: float,
        timeout_s: float,
        tried: list[str],
        last_error: MeshError | None,
        *,
        answers: tuple[
            trio.MemorySendChannel[tuple[str, bytes | MeshError]],
            trio.MemoryReceiveChannel[tuple[str, bytes | MeshError]],
        ]
        | None = None,
        outstanding: int = 0,
    ) -> tuple[bytes, str]:
        """Try candidates until one answers or the deadline passes.

        ``answers`` and ``outstanding``: attempts already made elsewhere (by
        :meth:`_hedged`) that will send their outcome on that channel.

        An attempt that fails fast (connection refused, actor moved) is
        followed at once by the next candidate.  An attempt still without an
        answer after half the remaining time is *not* cancelled: the next
        candidate is tried beside it (a hedge) and the first answer wins, so a
        host that is merely busy can still answer while a hung one costs at
        most half the budget.
        """
        results: trio.MemorySendChannel[tuple[str, bytes | MeshError]]
        if answers is None:
            results, receive = trio.open_memory_channel(math.inf)
        else:
            results, receive = answers

        async def attempt(host: str) -> None:
            try:
                outcome: bytes | MeshError = await self._attempt(
                    host, inv, max(0.0, deadline - self._clock())
                )
            except MeshError as exc:
                outcome = exc
            results.send_nowait((host, outcome))

        final: tuple[bytes, str] | MeshError
        refreshed = False
        async with trio.open_nursery() as nursery:
            hedge_at = self._clock()  # launch the first candidate now
            while True:
                now = self._clock()
                if now >= hedge_at and now < deadline:
                    placements = self._locate(target)[1]
                    order = [h for h in self.router.candidates(placements, now) if h not in tried]
                    if order:
                        if tried:
                            self.observer.retry(inv.target, "hedge" if outstanding else "failover")
                        tried.append(order[0])
                        outstanding += 1
                        nursery.start_soon(attempt, order[0])
                        remaining = deadline - now
                        hedge_at = now + remaining / 2 if len(order) > 1 else deadline
                    else:
                        hedge_at = deadline
                    if outstanding == 0:
                        if not refreshed and self.refresh is not None:
                            refreshed = True  # ask peers once before giving up
                            await self.refresh(min(REFRESH_MAX_S, deadline - now))
                            hedge_at = self._clock()
                            continue
                        final = self._no_host(target, inv.target, placements, tried, last_error)
                        break
                if now >= deadline:
                    final = DeadlineExceeded(
                        f"no answer from actor {target} within {timeout_s:g} s"
                        + (f" (tried {', '.join(short_id(h) for h in tried)})" if tried else "")
                    )
                    final.__cause__ = last_error
                    break
                with trio.move_on_at(self._trio_deadline(min(hedge_at, deadline))):
                    host, outcome = await receive.receive()
                    outstanding -= 1
                    if isinstance(outcome, bytes):
                        final = (outcome, host)  # slower hedges lose
                        break
                    if outcome.code not in RETRY_ELSEWHERE:
                        final = outcome
                        break
                    log.info(
                        "invocation %s on %s failed over: %s", inv.id.hex(), short_id(host), outcome
                    )
                    last_error = outcome
                    self.observer.failover(inv.target)
                    hedge_at = self._clock()  # failed fast: the next candidate now
            nursery.cancel_scope.cancel()
        if isinstance(final, MeshError):
            raise final
        return final

    def _trio_deadline(self, at: float) -> float:
        """Our clock's ``at`` as a trio deadline."""
        return trio.current_time() + max(0.0, at - self._clock())

    def _no_host(
        self,
        target: str,
        actor_id: str,
        placements: list[Candidate],
        tried: list[str],
        last_error: MeshError | None,
    ) -> MeshError:
        if isinstance(last_error, HostUnreachable):
            hosts = ", ".join(short_id(h) for h in tried)
            return HostUnreachable(
                f"actor {target}: no host that runs it answered (tried {hosts}); "
                f"it may have crashed. Last error: {last_error}"
            )
        if last_error is not None:
            return last_error
        known = len({p.host_id for p in placements})
        if known:
            return NoHostForActor(
                f"no host in lattice {self.lattice!r} runs actor {target}"
                f" ({known} host{'s' if known != 1 else ''} known to run it, none alive)"
            )
        hint = (
            ""
            if actor_id.startswith("M")
            else (
                " (it is neither an actor key, M… of 56 characters, nor the call alias "
                "of a running actor)"
            )
        )
        return NoHostForActor(f"no host in lattice {self.lattice!r} runs actor {target}{hint}")

    def _where_failed(self, exc: MeshError) -> str:
        """The ``where`` of a failed call: the host that ran it and answered with the
        error (``local``, ``remote``), or ``none`` when no host ran it."""
        if exc.code in RETRY_ELSEWHERE:
            return "none"
        host = getattr(exc, _ANSWERED_BY, "") or (
            exc.host if isinstance(exc, RemoteInvocationError) else ""
        )
        if not host:
            return "none"
        return "local" if host == self.host_id else "remote"

    async def _attempt(self, host: str, inv: Invocation, timeout_s: float) -> bytes:
        self.router.started(host)
        reachable = False
        try:
            if host == self.host_id:
                reachable = True
                try:
                    return await self._run_local(inv)
                except MeshError as exc:
                    setattr(exc, _ANSWERED_BY, self.host_id)  # ran here: counted as local
                    raise
            try:
                body = encode_invocation(inv)
            except ValueError as exc:  # a name over the wire limit: the caller's input
                raise InvalidInvocation(f"cannot send this call to another host: {exc}") from None
            data = await self._send(host, body, timeout_s)
            reachable = True
            result = decode_result(data)
            if result.code != ErrorCode.OK:
                raise RemoteInvocationError(result.code, result.error, result.host or host)
            return result.payload
        finally:
            self.router.finished(host, reachable=reachable, now=self._clock())

    async def handle(self, peer_id: str, data: bytes) -> bytes:
        """Answer an invocation sent by ``peer_id`` (transport channel 1 handler)."""
        inv = decode_invocation(data)
        code, payload, error = ErrorCode.OK, b"", ""
        if inv.deadline_unix_ms / 1000 <= self._clock():
            code, error = ErrorCode.TIMEOUT, "the caller's deadline passed before the call arrived"
        else:
            try:
                payload = await self._run_local(inv)
            except MeshError as exc:
                code, error = exc.code, str(exc)
        return encode_result_fields(inv.id, code, payload, error, self.host_id)
