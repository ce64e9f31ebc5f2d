"""Static seeds: parsing, resolving, periodic proposals."""

from __future__ import annotations

import logging
import socket

import pytest
import trio
import trio.testing

from meshhost.discovery import StaticSeeds, parse_seed
from meshhost.errors import ConfigError, SeedAddressError


def test_parse_seed() -> None:
    assert parse_seed(" 192.168.1.20:7946 ") == ("192.168.1.20", 7946)
    assert parse_seed("host.example:1") == ("host.example", 1)
    assert parse_seed("my-host.lan.:7946") == ("my-host.lan.", 7946)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("192.168.1.20", "host:port"),
        (":7946", "host:port"),
        ("h:port", "not a number"),
        ("h:0", "1..65535"),
        ("h:70000", "1..65535"),
        ("[::1]:7946", "IPv6"),
        ("garbage host!!:80", "neither an IPv4 address nor a host name"),
        ("999.1.1.1:7946", "neither an IPv4 address nor a host name"),
        ("-edge.lan:7946", "neither an IPv4 address nor a host name"),
        ("a..b:7946", "neither an IPv4 address nor a host name"),
    ],
)
def test_bad_seeds_raise_config_errors(text: str, message: str) -> None:
    with pytest.raises(SeedAddressError, match=message) as info:
        parse_seed(text)
    assert isinstance(info.value, ConfigError)


async def test_seeds_are_proposed_now_and_again_every_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    proposals: list[tuple[float, list[tuple[str, int]]]] = []
    seeds = StaticSeeds(["127.0.0.2:7000", "127.0.0.3:7001"], interval_s=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            seeds.serve, lambda addrs: proposals.append((trio.current_time(), addrs))
        )
        await trio.sleep(25)
        nursery.cancel_scope.cancel()
    assert [round(t) for t, _ in proposals] == [0, 10, 20]
    assert proposals[0][1] == [("127.0.0.2", 7000), ("127.0.0.3", 7001)]


async def test_localhost_name_resolves_to_ipv4() -> None:
    assert await StaticSeeds(["localhost:7000"]).resolve() == [("127.0.0.1", 7000)]


class _NoNames:
    """A resolver for which no name exists (no DNS traffic in tests)."""

    async def getaddrinfo(self, host: object, *args: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def getnameinfo(self, *args: object) -> tuple[str, str]:
        raise NotImplementedError


async def test_a_seed_name_that_does_not_resolve_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seeds = StaticSeeds(["edge-1.lan:7946", "127.0.0.2:7946"], interval_s=30)
    previous = trio.socket.set_custom_hostname_resolver(_NoNames())
    try:
        with caplog.at_level(logging.WARNING, logger="meshhost.discovery.seeds"):
            assert await seeds.resolve() == [("127.0.0.2", 7946)]
            assert await seeds.resolve() == [("127.0.0.2", 7946)]
    finally:
        trio.socket.set_custom_hostname_resolver(previous)
    assert seeds.unresolved == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "seed edge-1.lan:7946 does not resolve to an IPv4 address "
        "(Name or service not known); retrying every 30 s"
    ]
