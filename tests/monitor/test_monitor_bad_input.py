"""Bad monitoring input gets a message a person can act on, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from meshhost.cli import main
from meshhost.control.api import ControlClient, ControlError
from meshhost.datadir import CONTROL_SOCKET
from meshhost.errors import ConfigError
from meshhost.monitor.http import parse_listen_address
from tests.monitor.monitor_helpers import lone_host


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9090", ("127.0.0.1", 9090)),
        ("0.0.0.0:9090", ("0.0.0.0", 9090)),
        ("127.0.0.2:0", ("127.0.0.2", 0)),
    ],
)
def test_a_metrics_address_is_a_port_on_loopback_or_an_ipv4_and_port(
    text: str, expected: tuple[str, int]
) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "port"),
        ("http", "port"),
        ("70000", "port"),
        ("-1", "port"),
        ("localhost:9090", "IPv4"),
        ("::1:9090", "IPv4"),
        ("1.2.3:80", "IPv4"),
    ],
)
def test_a_bad_metrics_address_is_refused_by_name(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_listen_address(text)


def test_up_refuses_a_bad_metrics_address_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["up", "--data-dir", str(tmp_path), "--metrics", "x:1"])
    assert result.exit_code == 2, result.output
    assert "--metrics" in result.output and "not an IPv4 address" in result.output
    assert not (tmp_path / "host.seed").exists()  # nothing started


async def test_a_taken_metrics_port_is_one_clear_error(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.71", 0))
    taken.listen()
    host = lone_host(tmp_path)
    host.options.metrics_address = taken.getsockname()
    try:
        with pytest.raises(BaseExceptionGroup) as raised:
            async with trio.open_nursery() as nursery:
                await nursery.start(host.serve)
        [error] = [e for e in _leaves(raised.value) if isinstance(e, ConfigError)]
        assert "cannot listen for metrics on 127.0.0.71:" in str(error)
    finally:
        taken.close()


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for e in group.exceptions for leaf in _leaves(e)]
    return [group]


async def test_the_metrics_op_refuses_a_bad_argument_and_an_unknown_host(tmp_path: Path) -> None:
    host = lone_host(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        client = ControlClient(host.data_dir / CONTROL_SOCKET)
        with pytest.raises(ControlError, match="'metrics' must be true or false"):
            await client.request("metrics", metrics="yes")
        with pytest.raises(ControlError, match="no live host 'NZZZ'"):
            await client.request("metrics", host="NZZZ")
        answer = await client.request("metrics", metrics=False)
        assert answer["metrics"] == [] and answer["host"] == host.host_id
        nursery.cancel_scope.cancel()


async def test_a_host_without_monitoring_says_so(tmp_path: Path) -> None:
    host = lone_host(tmp_path, monitor=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(host.serve)
        with pytest.raises(ControlError, match="runs without monitoring"):
            await ControlClient(host.data_dir / CONTROL_SOCKET).request("metrics")
        nursery.cancel_scope.cancel()
