"""Wrong arguments get one line saying what is wrong and a non-zero exit, never a traceback."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from meshhost.cli import main
from meshhost.errors import ConfigError
from meshhost.host import HostOptions


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "lattice.secret"
    result = CliRunner().invoke(main, ["lattice", "new", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bind", "localhost"], "bind address (--bind, bind_host) 'localhost' is not an IPv4"),
        (["--bind", "127.0.0.1", "--seed", "127.0.0.1:99999"], "port must be within 1..65535"),
    ],
)
def test_up_rejects_bad_addresses_in_one_line(
    tmp_path: Path, secret: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, [
        "up", "--profile", "local", "--no-mdns", "--port", "0", "--secret-file", str(secret),
        "--data-dir", str(tmp_path / "data"), *args,
    ])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ") and message in line, line


def test_an_advertised_address_must_be_ipv4() -> None:
    with pytest.raises(ConfigError, match=r"advertised address .* 'bad host' is not an IPv4"):
        HostOptions(advertise_host="bad host")
    assert HostOptions(advertise_host="192.168.1.20").advertise_host == "192.168.1.20"
