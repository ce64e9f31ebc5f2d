"""Handshake guards: a per-source rate limit and a replay cache, sans-IO.

A responder meets strangers.  Two cheap checks keep them from costing more
than a MAC check each (proto/spec/transport.md, "Strangers"):

* :class:`HandshakeRateLimiter` - a token bucket per source IP address,
  consulted when a connection is accepted, before any byte is read: a source
  that opens connections faster than ``rate_per_s`` (after a ``burst``) has
  the excess closed at once, without a session being made.
* :class:`ReplayCache` - the initiator ephemeral keys of recently accepted
  message 1s.  A message 1 captured on the wire and sent again verifies (it
  carries a valid MAC), so it is recognised by its ephemeral key and dropped
  before the responder does its two X25519 operations for message 2.  Past
  the window a replay is harmless anyway: message 2 is encrypted under a key
  that needs the ephemeral private key the replayer does not have.

Both take ``now`` (seconds, any monotonic origin) and hold bounded memory:
evicting the oldest entry when full only ever lets through what the
protocol already makes harmless.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from meshhost.errors import LocalProtocolError

__all__ = [
    "REPLAY_CACHE_ENTRIES",
    "REPLAY_WINDOW_S",
    "HandshakeRateLimiter",
    "ReplayCache",
]

REPLAY_WINDOW_S = 120.0
"""How long an accepted ephemeral key is remembered: well past the handshake
timeout, after which the original handshake is over either way."""
REPLAY_CACHE_ENTRIES = 16384
"""Ephemeral keys remembered at most (~2 MB): only message 1s that proved the
PSK are recorded, and those are rate-limited per source."""
MAX_SOURCES = 4096
"""Source addresses whose buckets are kept; the longest idle is forgotten first
(a forgotten source starts again with a full bucket)."""


class ReplayCache:
    """Remembers keys for ``window_s``; ``check`` says whether one is new."""

    __slots__ = ("_max", "_seen", "_window", "replays")

    def __init__(
        self, window_s: float = REPLAY_WINDOW_S, max_entries: int = REPLAY_CACHE_ENTRIES
    ) -> None:
        if window_s <= 0 or max_entries <= 0:
            raise LocalProtocolError("replay cache window and size must be positive")
        self._window = window_s
        self._max = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self.replays = 0
        """Keys presented again within the window."""

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, key: bytes, now: float) -> bool:
        """True (and remember ``key``) if it was not seen within the window;
        False for a replay (counted in ``replays``)."""
        seen = self._seen
        horizon = now - self._window
        while seen:
            oldest, at = next(iter(seen.items()))
            if at > horizon:
                break
            del seen[oldest]
        if key in seen:
            self.replays += 1
            return False
        seen[key] = now
        if len(seen) > self._max:
            seen.popitem(last=False)
        return True


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class HandshakeRateLimiter:
    """A token bucket per source: ``burst`` connections at once, then ``rate_per_s``.

    ``allow(source, now)`` takes one token from ``source``'s bucket and says
    whether there was one.  ``rate_per_s <= 0`` disables the limit.
    """

    __slots__ = ("_buckets", "_burst", "_max_sources", "_rate", "refused")

    def __init__(self, rate_per_s: float, burst: int, max_sources: int = MAX_SOURCES) -> None:
        if burst < 1 or max_sources < 1:
            raise LocalProtocolError("handshake burst and source count must be at least 1")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0
        """Connections refused so far."""

    def allow(self, source: str, now: float) -> bool:
        if self._rate <= 0:
            return True
        buckets = self._buckets
        bucket = buckets.get(source)
        if bucket is None:
            bucket = buckets[source] = _Bucket(self._burst, now)
            if len(buckets) > self._max_sources:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(source)
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        self.refused += 1
        return False
