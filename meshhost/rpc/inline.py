"""When an actor call may run on the trio thread instead of a worker thread.

A guest call on a worker thread (``Runtime.invoke``) costs a thread hop of
about 100 µs on the shared 2-core machines (``bench/runtime.py``), ten times a
small waPC call.  Running the guest inline on the trio thread avoids the hop
but stalls every other task of the host while it runs, and a guest that
makes a host call needing trio (a provider bridging back, a remote actor
call) cannot run there at all.

So a call runs inline only when all of these hold:

* the actor has no capability claims and no link lets it call another actor,
  so none of its host calls can need trio (its calls fail policy instead);
* its request is small (``INLINE_MAX_PAYLOAD``);
* it has proved fast: the moving average of its measured run times is under
  ``INLINE_MAX_AVERAGE_S``, from at least ``INLINE_WARMUP_CALLS`` calls.

Every call feeds its run time back, so an actor that turns slow (a bigger
input, a busy machine) goes back to worker threads by itself.  Pure: no
clock, the caller measures.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INLINE_MAX_AVERAGE_S", "INLINE_MAX_PAYLOAD", "INLINE_WARMUP_CALLS", "InlineGate"]

INLINE_MAX_AVERAGE_S = 0.0005
"""An inline call stalls the host's event loop; 0.5 ms is far below a SWIM
probe timeout (500 ms) even when a few hundred such calls queue up."""
INLINE_MAX_PAYLOAD = 64 * 1024
"""Bigger requests copy enough bytes that the hop is not what costs."""
INLINE_WARMUP_CALLS = 8
"""Calls measured on worker threads before an actor may run inline."""
_SMOOTHING = 0.2
"""Weight of the newest sample in the moving average."""
SAMPLE_CAP_S = 4 * INLINE_MAX_AVERAGE_S
"""Samples count at most this much: one preempted call (milliseconds on a busy
machine) must not send a fast actor to worker threads; two in a row do."""


@dataclass(slots=True)
class _Record:
    calls: int = 0
    average_s: float = 0.0


class InlineGate:
    """Per-actor record of run times; decides inline vs worker thread."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}

    def allows(self, actor_id: str, payload_len: int, *, may_need_trio: bool) -> bool:
        """Whether a call of ``payload_len`` bytes to ``actor_id`` may run inline."""
        if may_need_trio or payload_len > INLINE_MAX_PAYLOAD:
            return False
        record = self._records.get(actor_id)
        return (
            record is not None
            and record.calls >= INLINE_WARMUP_CALLS
            and record.average_s < INLINE_MAX_AVERAGE_S
        )

    def observe(self, actor_id: str, elapsed_s: float) -> None:
        """A call to ``actor_id`` ran for ``elapsed_s`` (inline or on a thread)."""
        record = self._records.setdefault(actor_id, _Record())
        elapsed_s = min(elapsed_s, SAMPLE_CAP_S)
        if record.calls == 0:
            record.average_s = elapsed_s
        else:
            record.average_s += _SMOOTHING * (elapsed_s - record.average_s)
        record.calls += 1

    def forget(self, actor_id: str) -> None:
        """The actor was stopped or replaced: measure the new one afresh."""
        self._records.pop(actor_id, None)
