"""CLI commands against a control socket served by a fake host in a thread."""

import json
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner

from meshhost.cli import main
from meshhost.control import api
from meshhost.errors import NoHostForActor


class FakeHost:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []

    async def dispatch(self, op: str, args: Mapping[str, Any]) -> Any:
        self.requests.append((op, dict(args)))
        if op == "hosts":
            return [
                {
                    "id": "NHOST1",
                    "address": "127.0.0.1:4000",
                    "state": "alive",
                    "actors": 1,
                    "labels": {"zone": "a"},
                    "local": True,
                }
            ]
        if op == "call":
            if args["actor"] == "Mmissing":
                raise NoHostForActor("no host in lattice 'default' runs actor Mmissing")
            return {"payload": b"echo:" + args["payload"], "host": "NHOST1"}
        if op == "inventory":
            return {
                "host": "NHOST1",
                "providers": ["wasmcloud:httpserver"],
                "actors": [
                    {
                        "id": "M" + "A" * 55,
                        "name": "echo",
                        "instances": 2,
                        "caps": [],
                        "limits": {
                            "max_memory_mib": 8,
                            "max_cpu_time_ms": 2000,
                            "max_call_time_ms": 30000,
                            "max_instances": 1000,
                        },
                    }
                ],
                "http": [
                    {
                        "actor": "M" + "A" * 55,
                        "link_name": "default",
                        "address": "127.0.0.1:8080",
                        "state": "serving",
                    },
                    {
                        "actor": "M" + "A" * 55,
                        "link_name": "admin",
                        "address": "127.0.0.1:8081",
                        "state": "restarting",
                        "error": "accept failed",
                    },
                ],
            }
        if op == "start":
            return {
                "actor": "M" + "A" * 55,
                "name": "echo",
                "host": "NHOST1",
                "count": args["count"],
            }
        if op in ("link_put", "link_del", "config_put"):
            return {}
        if op == "config_get":
            return "v1"
        raise api.ControlError(api.ErrorCode.UNSUPPORTED, op)

    async def events(self, args: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        yield {"kind": "host_joined", "host": "NHOST1"}
        await trio.sleep_forever()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[FakeHost, Path]]:
    fake = FakeHost()
    ready = threading.Event()
    token: list[trio.lowlevel.TrioToken] = []
    cancel = trio.CancelScope()

    async def run() -> None:
        token.append(trio.lowlevel.current_trio_token())
        with cancel:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    api.serve_unix,
                    tmp_path / "control.sock",
                    fake.dispatch,
                    {"events": fake.events},
                )
                ready.set()

    thread = threading.Thread(target=trio.run, args=(run,), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield fake, tmp_path
    trio.from_thread.run_sync(cancel.cancel, trio_token=token[0])
    thread.join(10)


def test_hosts_json_and_table(host: tuple[FakeHost, Path]) -> None:
    _, data_dir = host
    runner = CliRunner()
    result = runner.invoke(main, ["hosts", "--json", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["id"] == "NHOST1"
    result = runner.invoke(main, ["hosts", "--data-dir", str(data_dir)])
    assert "NHOST1" in result.output and "zone=a" in result.output
    assert "1 host, 1 alive; this host is NHOST1" in result.output


def test_call_sends_payload_and_prints_answer(host: tuple[FakeHost, Path]) -> None:
    fake, data_dir = host
    runner = CliRunner()
    result = runner.invoke(main, ["call", "Mecho", "Echo.Call", "hi", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "echo:hi" in result.output
    op, args = fake.requests[-1]
    assert (op, args["actor"], args["operation"], args["payload"]) == (
        "call",
        "Mecho",
        "Echo.Call",
        b"hi",
    )
    result = runner.invoke(
        main, ["call", "Mecho", "X", '{"a": 1}', "--msgpack", "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 1  # the echo answer "echo:\x81..." is not msgpack
    assert "not msgpack" in result.output


def test_failed_call_exits_1_with_the_reason(host: tuple[FakeHost, Path]) -> None:
    _, data_dir = host
    result = CliRunner().invoke(main, ["call", "Mmissing", "Op", "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    assert "no host in lattice 'default' runs actor Mmissing" in result.output


def test_link_put_passes_values(host: tuple[FakeHost, Path]) -> None:
    fake, data_dir = host
    result = CliRunner().invoke(
        main,
        [
            "link",
            "put",
            "Mecho",
            "wasmcloud:keyvalue",
            "--value",
            "NAMESPACE=x",
            "--data-dir",
            str(data_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    assert fake.requests[-1] == (
        "link_put",
        {
            "actor": "Mecho",
            "contract": "wasmcloud:keyvalue",
            "link_name": "default",
            "provider": "",
            "values": {"NAMESPACE": "x"},
        },
    )
    bad = CliRunner().invoke(
        main, ["link", "put", "M", "c", "--value", "novalue", "--data-dir", str(data_dir)]
    )
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output


def test_no_running_host_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["hosts", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "meshhost up" in result.output


def test_inventory_shows_the_http_ports_the_host_holds(host: tuple[FakeHost, Path]) -> None:
    _, data_dir = host
    result = CliRunner().invoke(main, ["inventory", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "http: 127.0.0.1:8080 -> MAAAAAAAAAAA… (link default)\n" in result.output
    assert (
        "http: 127.0.0.1:8081 -> MAAAAAAAAAAA… (link admin) [restarting: accept failed]"
        in result.output
    )


def test_inventory_shows_each_actors_limits(host: tuple[FakeHost, Path]) -> None:
    _, data_dir = host
    result = CliRunner().invoke(
        main, ["inventory", "--data-dir", str(data_dir)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert (
        "limits of MAAAAAAAAAAA…: memory 8 MiB, cpu 2000 ms, call 30000 ms, 1000 instances"
    ) in result.output


def test_events_ends_with_130_on_ctrl_c(host: tuple[FakeHost, Path]) -> None:
    _, data_dir = host
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshhost", "events", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["kind"] == "host_joined"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130  # 128 + SIGINT, as shells report a Ctrl-C
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_start_sends_only_the_limits_given_as_flags(
    host: tuple[FakeHost, Path], tmp_path: Path
) -> None:
    fake, data_dir = host
    module = tmp_path / "echo.wasm"
    module.write_bytes(b"\0asm")
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "start",
            str(module),
            "--data-dir",
            str(data_dir),
            "--max-memory-mib",
            "8",
            "--max-instances",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["start", str(module), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    with_limits, without = [args for op, args in fake.requests if op == "start"]
    assert with_limits["limits"] == {"max_memory_mib": 8, "max_instances": 3}
    assert "limits" not in without
