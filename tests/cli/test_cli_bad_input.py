"""Wrong arguments get one line saying what is wrong and a non-zero exit, never a traceback."""

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

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
        (["--bind", "localhost"], "bind address (--bind, bind) 'localhost' is not an IPv4"),
        (["--bind", "127.0.0.1", "--seed", "127.0.0.1:99999"], "port must be within 1..65535"),
        (["--bind", "127.0.0.1", "--seed", "127.0.0.1:x"], "seed '127.0.0.1:x': port 'x' is not"),
        (
            ["--bind", "127.0.0.1", "--mdns-interface", "eth0"],
            "mDNS interface (--mdns-interface) 'eth0' is not an IPv4 address",
        ),
        # sim is listed as a profile: accepted (the error is about the address, not it)
        (["--profile", "sim", "--bind", "localhost"], "bind address (--bind, bind) 'localhost'"),
    ],
)
def test_up_rejects_bad_addresses_in_one_line(
    tmp_path: Path, secret: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "up",
            "--profile",
            "local",
            "--no-mdns",
            "--port",
            "0",
            "--secret-file",
            str(secret),
            "--data-dir",
            str(tmp_path / "data"),
            *args,
        ],
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ") and message in line, line


def test_an_advertised_address_must_be_ipv4() -> None:
    with pytest.raises(ConfigError, match=r"advertised address .* 'bad host' is not an IPv4"):
        HostOptions(advertise_host="bad host")
    assert HostOptions(advertise_host="192.168.1.20").advertise_host == "192.168.1.20"


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: "), line
    return line


def test_a_path_that_cannot_be_written_is_one_line(tmp_path: Path, secret: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    runner = CliRunner()
    seed_out = tmp_path / "no" / "such" / "dir" / "actor.seed"
    line = _one_error_line(runner.invoke(main, ["keys", "gen", "actor", "--out", str(seed_out)]))
    assert line == f"error: {seed_out}: No such file or directory"
    inside_a_file = str(a_file / "data")
    line = _one_error_line(
        runner.invoke(
            main,
            [
                "up",
                "--profile",
                "local",
                "--no-mdns",
                "--bind",
                "127.0.0.1",
                "--secret-file",
                str(secret),
                "--data-dir",
                inside_a_file,
            ],
        )
    )
    assert line == f"error: {inside_a_file}: Not a directory"
    line = _one_error_line(
        runner.invoke(main, ["lattice", "new", "--install", "--data-dir", inside_a_file])
    )
    assert inside_a_file in line


def test_a_status_file_in_a_missing_directory_is_bad_usage(tmp_path: Path, secret: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "up",
            "--profile",
            "local",
            "--no-mdns",
            "--bind",
            "127.0.0.1",
            "--secret-file",
            str(secret),
            "--data-dir",
            str(tmp_path / "data"),
            "--status-file",
            str(tmp_path / "gone" / "status.json"),
        ],
    )
    assert result.exit_code == 2
    assert f"directory {tmp_path / 'gone'} does not exist" in result.output


def test_a_malformed_secret_names_where_it_came_from(tmp_path: Path) -> None:
    bad = tmp_path / "lattice.secret"
    bad.write_text("SLnotasecret\n")
    up = [
        "up",
        "--profile",
        "local",
        "--no-mdns",
        "--bind",
        "127.0.0.1",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    line = _one_error_line(CliRunner().invoke(main, [*up, "--secret-file", str(bad)]))
    assert line.startswith(f"error: {bad}, line 1: a lattice secret is 58 characters"), line
    result = CliRunner().invoke(main, up, env={"MESHHOST_LATTICE_SECRET": "SLnotasecret"})
    line = _one_error_line(result)
    assert line.startswith("error: $MESHHOST_LATTICE_SECRET, line 1: a lattice secret is"), line


def test_a_missing_secret_says_the_command_that_makes_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = ["up", "--profile", "local", "--no-mdns", "--bind", "127.0.0.1", "--data-dir", str(data)]
    line = _one_error_line(CliRunner().invoke(main, up, env={"MESHHOST_LATTICE_SECRET": ""}))
    assert f"Create it with `meshhost lattice new --install --data-dir {data}`" in line, line
    missing = tmp_path / "lattice.secret"
    line = _one_error_line(CliRunner().invoke(main, [*up, "--secret-file", str(missing)]))
    assert f"Create it with `meshhost lattice new --out {missing}`" in line, line


def test_a_negative_scale_count_is_a_bad_count_not_an_unknown_option(tmp_path: Path) -> None:
    actor = "M" + "A" * 55
    for args in ([actor, "-1"], [actor, "--host", "-1", "-5"]):
        result = CliRunner().invoke(main, ["scale", *args, "--data-dir", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert "Invalid value for 'COUNT': -" in result.output, result.output
        assert "is not in the range 0<=x<=1000" in result.output
        assert "No such option" not in result.output


def test_a_secret_out_path_under_a_regular_file_names_the_file(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for out in (a_file / "x", a_file / "x" / "y"):
        line = _one_error_line(CliRunner().invoke(main, ["lattice", "new", "--out", str(out)]))
        assert line == f"error: {out}: {a_file} is a file, not a directory", line
    assert a_file.read_text() == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MESHHOST_PORT": "abc"}, "error: MESHHOST_PORT must be a whole number, got text ('abc')"),
        (
            {"MESHHOST_MEMBERSHIP__GOSSIP_NODES": "3.5"},
            "error: MESHHOST_MEMBERSHIP__GOSSIP_NODES must be a whole number",
        ),
    ],
)
def test_up_names_a_bad_environment_variable_in_plain_words(
    tmp_path: Path, secret: Path, env: dict[str, str], message: str
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "up",
            "--no-mdns",
            "--bind",
            "127.0.0.1",
            "--secret-file",
            str(secret),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=env,
    )
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(message), line
