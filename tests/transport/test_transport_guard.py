"""Handshake guards (sans-IO): the per-source token bucket and the replay cache."""

from __future__ import annotations

import pytest

from meshhost.config import TransportConfig
from meshhost.errors import ConfigError, LocalProtocolError
from meshhost.transport.guard import HandshakeRateLimiter, ReplayCache


def test_a_source_gets_its_burst_then_the_rate_and_others_are_unaffected() -> None:
    limiter = HandshakeRateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.allow("10.0.0.1", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("10.0.0.2", 0.0)  # another source has its own bucket
    assert limiter.allow("10.0.0.1", 0.5)  # one token back after 1 / rate
    assert not limiter.allow("10.0.0.1", 0.5)
    assert [limiter.allow("10.0.0.1", 100.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.refused == 4


def test_the_clock_going_backwards_adds_no_tokens() -> None:
    limiter = HandshakeRateLimiter(rate_per_s=10.0, burst=1)
    assert limiter.allow("a", 5.0) and not limiter.allow("a", 1.0)


def test_zero_rate_means_no_limit_and_sources_are_bounded() -> None:
    assert all(HandshakeRateLimiter(0, 1).allow("a", 0.0) for _ in range(1000))
    limiter = HandshakeRateLimiter(rate_per_s=1.0, burst=1, max_sources=2)
    assert limiter.allow("a", 0.0) and limiter.allow("b", 0.0) and limiter.allow("c", 0.0)
    assert len(limiter._buckets) == 2  # "a", idle longest, was forgotten
    assert limiter.allow("a", 0.0) and not limiter.allow("c", 0.0)
    with pytest.raises(LocalProtocolError):
        HandshakeRateLimiter(1.0, 0)


def test_replay_cache_catches_a_key_within_the_window_only() -> None:
    cache = ReplayCache(window_s=10.0, max_entries=100)
    assert cache.check(b"k1", 0.0)
    assert not cache.check(b"k1", 5.0)
    assert cache.check(b"k2", 5.0)
    assert cache.check(b"k1", 10.5)  # expired: past the window a replay is harmless
    assert not cache.check(b"k2", 10.5)
    assert cache.replays == 2


def test_replay_cache_is_bounded() -> None:
    cache = ReplayCache(window_s=1000.0, max_entries=3)
    for i in range(10):
        assert cache.check(bytes([i]), float(i))
    assert len(cache) == 3
    assert not cache.check(bytes([9]), 20.0) and cache.check(bytes([0]), 20.0)


def test_config_validates_the_rate_limit() -> None:
    with pytest.raises(ConfigError):
        TransportConfig(handshake_rate_per_s=-1)
    with pytest.raises(ConfigError):
        TransportConfig(handshake_rate_per_s=float("nan"))
    with pytest.raises(ConfigError):
        TransportConfig(handshake_burst=0)
    assert TransportConfig(handshake_rate_per_s=0).handshake_rate_per_s == 0
