"""Read commands start fast: they never import the heavy modules a host needs.

``meshhost hosts``, ``inventory`` and ``link list`` are run in a fresh
interpreter against a stand-in control socket; afterwards none of wasmtime,
hypercorn, zeroconf, trio, rich or yaml may be in ``sys.modules`` (together
they made every command take ~0.3 s) while the output fits the terminal
(a wider table is folded by rich).  No wall clock is read.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from meshhost.cli import COMMAND_MODULES, load_all, main
from meshhost.control import api
from meshhost.datadir import CONTROL_SOCKET

HEAVY = ("wasmtime", "hypercorn", "zeroconf", "trio", "rich", "yaml", "nacl", "meshhost.host")
HOST_ID = "N" + "A" * 55
ACTOR_ID = "M" + "B" * 55
REPLIES: dict[str, Any] = {
    "hosts": [
        {
            "id": HOST_ID,
            "address": "127.0.0.1:7946",
            "state": "alive",
            "actors": 1,
            "labels": {"zone": "[/a]"},
            "local": True,
        }
    ],
    "inventory": {
        "host": HOST_ID,
        "actors": [
            {"id": ACTOR_ID, "name": "kvcounter", "instances": 2, "caps": ["wasmcloud:keyvalue"]}
        ],
        "providers": ["wasmcloud:keyvalue"],
        "http": [],
    },
    "link_list": [
        {
            "actor": ACTOR_ID,
            "contract": "wasmcloud:keyvalue",
            "link_name": "default",
            "values": {"K": "v"},
        }
    ],
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose control socket answers the read ops with :data:`REPLIES`."""
    path = tmp_path / CONTROL_SOCKET
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                header = conn.recv(4)
                body = b""
                while len(body) < int.from_bytes(header, "big"):
                    body += conn.recv(65536)
                op, _args = api.decode_request(body)
                reply = api.encode_reply(REPLIES[op])
                conn.sendall(len(reply).to_bytes(4, "big") + reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield tmp_path
    stop.set()
    thread.join()
    server.close()


_PROBE = """
import json, sys
from meshhost.cli import main
try:
    main(sys.argv[1:], prog_name="meshhost")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["hosts"], ["1 host, 1 alive", HOST_ID, "zone=[/a]"]),
        (["hosts", "--json"], ['"state": "alive"']),
        (["inventory"], [ACTOR_ID, "wasmcloud:keyvalue", "providers: wasmcloud:keyvalue"]),
        (["link", "list"], [ACTOR_ID, "default", "K=v"]),
    ],
    ids=["hosts", "hosts-json", "inventory", "link-list"],
)
def test_read_commands_answer_without_importing_heavy_modules(
    data_dir: Path, argv: list[str], shown: list[str]
) -> None:
    # A terminal 160 columns wide: a table wider than the terminal is folded by rich.
    env = {**os.environ, "COLUMNS": "160"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (None, 0), done.stderr
    for text in shown:
        assert text in done.stdout, done.stdout
    loaded = [
        name
        for name in report["modules"]
        if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)
    ]
    assert loaded == [], f"`meshhost {' '.join(argv)}` imported {loaded}"


def test_no_host_is_reported_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["hosts", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no meshhost host is running with data dir" in result.output


def _every_command(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _every_command(command, (*path, name))


def test_every_command_still_has_working_help() -> None:
    load_all()
    paths = list(_every_command(main))
    assert len(paths) > 30
    for path in paths:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output, (path, result.output)


def test_every_command_is_found_in_the_module_the_lazy_group_names() -> None:
    load_all()
    where = {
        name: command.callback.__module__.rsplit(".", 1)[-1]
        for name, command in main.commands.items()
        if name != "version"
    }
    first = {name: m if isinstance(m, str) else m[0] for name, m in COMMAND_MODULES.items()}
    assert where == first, (
        "meshhost.cli.COMMAND_MODULES must name the module of every command "
        f"(command -> module): {where}"
    )


def test_lattice_subcommands_of_another_module_load_with_the_group() -> None:
    # `lattice rotate` / `lattice keyring` live in cli/rotate.py: they must be found
    # even when cli/secret.py (which makes the `lattice` group) was imported first.
    code = (
        "import meshhost.cli.secret\n"
        "from click.testing import CliRunner\n"
        "from meshhost.cli import main\n"
        "for sub in ('rotate', 'keyring'):\n"
        "    r = CliRunner().invoke(main, ['lattice', sub, '--help'])\n"
        "    assert r.exit_code == 0, r.output\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
