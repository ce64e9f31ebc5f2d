"""Hybrid logical clock (Kulkarni et al., 2014) for lattice-wide writes.

Theory of operation.  A stamp is ``(wall_ms, logical, node)``: the largest
physical time (Unix milliseconds) this clock has seen, a counter that orders
events within the same millisecond, and the id of the host that issued it,
which breaks the last ties so two hosts never produce equal stamps.  Stamps
compare as tuples in that order, so "later write wins" is a total order every
host evaluates the same way.

* :meth:`HybridClock.now` stamps a local event.  The stamp is strictly greater
  than every stamp this clock issued or observed before, even when the
  physical clock stands still or steps backwards.
* :meth:`HybridClock.observe` folds in a stamp received from a peer, so the
  next local stamp is greater than it (causality across hosts).

Skew tolerance.  A peer whose clock runs far ahead would drag every clock in
the lattice along with it.  ``observe`` therefore refuses to move this clock
more than ``max_drift_ms`` ahead of the local physical time and raises
:class:`~meshhost.errors.ClockDriftError` instead; the caller still merges the
peer's data (the stamps order it deterministically on every host) but the
local clock stays sane.

Wire layout (``proto/spec/directory.md``): ``wall_ms`` and ``logical`` are
packed into one unsigned 64-bit integer, ``wall_ms << 16 | logical`` (48 bits
of milliseconds last until the year 10889; 16 bits allow 65536 events per
millisecond before the clock borrows the next millisecond), followed by the
node id as a separate string.

Pure: the physical time comes in as an argument; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshhost.errors import ClockDriftError, DecodeError, LocalProtocolError

__all__ = [
    "LOGICAL_BITS",
    "MAX_DRIFT_MS",
    "MAX_LOGICAL",
    "MAX_WALL_MS",
    "HybridClock",
    "Stamp",
]

LOGICAL_BITS = 16
"""Bits of the packed stamp that hold the logical counter."""
MAX_LOGICAL = (1 << LOGICAL_BITS) - 1
"""Events per millisecond before the clock borrows the next millisecond."""
MAX_WALL_MS = (1 << (64 - LOGICAL_BITS)) - 1
"""48 bits of Unix milliseconds: enough until the year 10889."""
MAX_DRIFT_MS = 60_000
"""How far a peer's stamp may pull this clock ahead of local physical time.

NTP keeps LAN hosts within milliseconds; a minute tolerates hosts that have
not synced yet after boot, and still bounds how far one broken clock can drag
the lattice forward.  Beyond it the peer's data is merged but not trusted to
move the clock."""


@dataclass(frozen=True, slots=True, order=True)
class Stamp:
    """One HLC reading; totally ordered by (wall_ms, logical, node)."""

    wall_ms: int
    logical: int
    node: str

    def __post_init__(self) -> None:
        if not 0 <= self.wall_ms <= MAX_WALL_MS:
            raise LocalProtocolError(f"HLC wall time {self.wall_ms} ms is outside 0..2**48-1")
        if not 0 <= self.logical <= MAX_LOGICAL:
            raise LocalProtocolError(f"HLC logical counter {self.logical} is outside 0..65535")

    def packed(self) -> int:
        """The 64-bit wire form of (wall_ms, logical); the node travels separately."""
        return (self.wall_ms << LOGICAL_BITS) | self.logical

    @classmethod
    def unpack(cls, packed: object, node: object) -> Stamp:
        """Rebuild a stamp from its wire form; raises DecodeError on bad input."""
        if type(packed) is not int or not 0 <= packed < (1 << 64):
            raise DecodeError(f"HLC stamp must be an unsigned 64-bit integer, got {packed!r:.40}")
        if not isinstance(node, str):
            raise DecodeError("HLC stamp node id must be a string")
        return cls(packed >> LOGICAL_BITS, packed & MAX_LOGICAL, node)

    def successor(self, node: str) -> Stamp:
        """The smallest stamp issued by ``node`` that is greater than this one.

        Raises LocalProtocolError past the last representable stamp (only a
        forged stamp from a peer can get there).
        """
        if node > self.node:
            return Stamp(self.wall_ms, self.logical, node)
        if self.logical < MAX_LOGICAL:
            return Stamp(self.wall_ms, self.logical + 1, node)
        if self.wall_ms >= MAX_WALL_MS:
            raise LocalProtocolError(
                f"no stamp orders after {self.wall_ms} ms (written by {self.node}); "
                "that writer's clock or software is broken"
            )
        return Stamp(self.wall_ms + 1, 0, node)


class HybridClock:
    """A hybrid logical clock owned by one host.

    ``node`` is the host id written into every stamp.  ``max_drift_ms`` bounds
    how far :meth:`observe` may move the clock ahead of physical time.
    """

    def __init__(self, node: str, *, max_drift_ms: int = MAX_DRIFT_MS) -> None:
        if max_drift_ms < 0:
            raise LocalProtocolError("max_drift_ms must be >= 0")
        self.node = node
        self.max_drift_ms = max_drift_ms
        self._wall_ms = 0
        self._logical = 0

    @property
    def last(self) -> Stamp:
        """The greatest stamp issued or observed so far (wall 0 before any)."""
        return Stamp(self._wall_ms, self._logical, self.node)

    def now(self, physical_ms: int) -> Stamp:
        """Stamp a local event at physical time ``physical_ms``.

        Returns a stamp strictly greater than every stamp returned or observed
        before, whatever ``physical_ms`` does (it may stand still or go back).
        """
        physical_ms = _clamp_ms(physical_ms)
        if physical_ms > self._wall_ms:
            self._wall_ms, self._logical = physical_ms, 0
        else:
            self._tick_logical()
        return Stamp(self._wall_ms, self._logical, self.node)

    def observe(self, remote: Stamp, physical_ms: int) -> None:
        """Fold a peer's stamp into this clock so later local stamps exceed it.

        Raises ClockDriftError, leaving the clock unchanged, when ``remote`` is
        more than ``max_drift_ms`` ahead of ``physical_ms``.
        """
        physical_ms = _clamp_ms(physical_ms)
        ahead_ms = remote.wall_ms - physical_ms
        if ahead_ms > self.max_drift_ms:
            raise ClockDriftError(
                f"stamp from {remote.node} is {ahead_ms} ms ahead of our clock "
                f"(limit {self.max_drift_ms} ms); check NTP on both hosts"
            )
        self.restore(remote)

    def restore(self, stamp: Stamp) -> None:
        """Move the clock to at least ``stamp`` without a drift check.

        For stamps this host wrote itself (reloaded from disk after a restart),
        so it never reissues a stamp it issued before.
        """
        if (stamp.wall_ms, stamp.logical) > (self._wall_ms, self._logical):
            self._wall_ms, self._logical = stamp.wall_ms, stamp.logical

    def _tick_logical(self) -> None:
        if self._logical < MAX_LOGICAL:
            self._logical += 1
        else:  # 65536 events in one millisecond: borrow the next millisecond
            self._wall_ms += 1
            self._logical = 0


def _clamp_ms(physical_ms: int) -> int:
    return min(max(int(physical_ms), 0), MAX_WALL_MS)
