"""One way to say each thing: kinds of keys, host ids, table headers, tables at 80 columns."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

import meshhost.cli.apps as apps_cli
import meshhost.cli.directory as directory_cli
import meshhost.cli.lattice as lattice_cli
from meshhost.cli import main
from meshhost.cli.directory import links_table
from meshhost.identity import short_id

HOST_A = "N" + "A" * 55
HOST_B = "NB" + "C" * 54
ACTOR = "M" + "B" * 55


@pytest.mark.parametrize(
    ("asked", "shown", "letter"),
    [
        ("host", "host", "N"),
        ("server", "host", "N"),
        ("actor", "actor", "M"),
        ("provider", "provider", "V"),
        ("account", "account", "A"),
    ],
)
def test_keys_gen_reports_the_kind_in_meshhosts_words(asked: str, shown: str, letter: str) -> None:
    result = CliRunner().invoke(main, ["keys", "gen", asked, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["kind"] == shown and info["public_key"].startswith(letter)
    inspected = CliRunner().invoke(main, ["keys", "inspect", info["public_key"], "--json"])
    assert json.loads(inspected.output)["kind"] == shown


def test_short_id_is_a_prefix_the_cli_accepts() -> None:
    assert short_id(HOST_A) == HOST_A[:12] + "…"
    assert HOST_A.startswith(short_id(HOST_A).rstrip("…"))
    assert short_id("N123") == "N123"


def test_link_list_at_80_columns_keeps_contracts_and_ids_whole() -> None:
    links = [
        {
            "actor": ACTOR,
            "contract": "wasmcloud:httpserver",
            "link_name": "default",
            "provider": "builtin",
            "values": {"ADDRESS": "127.0.0.1:8080"},
        },
        {
            "actor": ACTOR,
            "contract": "wasmcloud:keyvalue",
            "link_name": "default",
            "provider": "V" + "D" * 55,
            "values": {},
        },
    ]
    console = Console(width=80, record=True, soft_wrap=True)
    console.print(links_table(links))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "wasmcloud:httpserver" in text and "wasmcloud:keyvalue" in text
    assert "…" not in text
    # The ACTOR column (first, folded over several lines) holds the whole id.
    first_column = [line.split()[0] for line in text.splitlines()[2:] if line[:1].strip()]
    assert ACTOR in "".join(first_column)


def _fake_request(answers: dict[str, Any]) -> Any:
    def request(data_dir: object, lattice: str, op: str, **args: Any) -> Any:
        return answers[op]

    return request


def test_tables_use_upper_case_headers_and_one_host_id_shortening(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {
        "hosts": [
            {
                "id": HOST_A,
                "address": "127.0.0.1:1",
                "state": "alive",
                "actors": 1,
                "labels": {},
                "local": True,
            }
        ],
        "inventory": {
            "host": HOST_A,
            "actors": [{"id": ACTOR, "name": "echo", "instances": 1, "caps": []}],
        },
        "link_list": [],
        "app_status": {
            "app": "shop",
            "version": "v1",
            "state": "deployed",
            "hosts": 1,
            "rows": [
                {
                    "component": "web",
                    "key": "shop/web",
                    "host": HOST_B,
                    "desired": 1,
                    "running": 1,
                    "state": "ok",
                }
            ],
            "components": [],
            "problems": [],
        },
    }
    monkeypatch.setattr(lattice_cli, "host_request", _fake_request(answers))
    monkeypatch.setattr(directory_cli, "host_request", _fake_request(answers))
    monkeypatch.setattr(apps_cli, "host_request", _fake_request(answers))
    runner = CliRunner()
    headers = {
        ("hosts",): ["HOST", "ADDRESS", "STATE", "ACTORS", "LABELS"],
        ("inventory",): ["ACTOR", "NAME", "INSTANCES", "CAPABILITIES"],
        ("link", "list"): ["ACTOR", "CONTRACT", "NAME", "PROVIDER", "VALUES"],
        ("app", "status", "shop"): ["COMPONENT", "HOST", "DESIRED", "RUNNING", "STATE"],
    }
    outputs = {}
    for command, expected in headers.items():
        result = runner.invoke(main, [*command], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        header = next(line for line in result.output.splitlines() if expected[0] in line)
        assert re.findall(r"[A-Za-z@]+", header) == expected, header
        outputs[command] = result.output
    assert f"this host is {short_id(HOST_A)}" in outputs[("hosts",)]
    assert short_id(HOST_B) in outputs[("app", "status", "shop")]


def test_every_plain_table_header_is_upper_case_whoever_wrote_it() -> None:
    from meshhost.cli.output import PlainTable

    table = PlainTable("metric", title="t")
    table.add_column("labels")
    table.add_row("calls", "actor=M1")
    assert str(table).splitlines()[1].split() == ["METRIC", "LABELS"]
