"""`meshhost up` output: log lines at the level asked, host-prefixed text or JSON lines,
internal events only when asked for."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshhost.capabilities.dispatch import Dispatcher
from meshhost.cli import main
from meshhost.cli.logs import Verbosity, logging_to
from meshhost.identity import short_id
from meshhost.identity.keyring import encode_secret

HOST = "N" + "Q" * 55


@dataclass(frozen=True)
class Actor:
    actor_id: str = "M" + "B" * 55
    name: str = "echo"
    caps: tuple[str, ...] = ()
    call_alias: str | None = None


def _actor_lines(flags: tuple[bool, int, str | None]) -> str:
    out = io.StringIO()
    with logging_to(Verbosity.from_flags(*flags), "text", out) as tag:
        tag.host_id = HOST
        for level in ("debug", "info", "warn"):
            Dispatcher().log(Actor(), level, f"{level} from the guest")
        logging.getLogger("meshhost.host").info("host detail")
        logging.getLogger("meshhost.host").warning("host trouble")
    return out.getvalue()


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        ((False, 0, None), {"info from", "warn from", "host trouble"}),  # default
        ((False, 1, None), {"info from", "warn from", "host detail", "host trouble"}),  # -v
        ((False, 2, None), {"debug from", "info from", "warn from", "host detail", "host trouble"}),
        ((True, 0, None), {"warn from", "host trouble"}),  # -q
        (
            (False, 0, "debug"),
            {"debug from", "info from", "warn from", "host detail", "host trouble"},
        ),
        ((False, 0, "error"), set()),
    ],
)
def test_actor_and_host_lines_are_shown_at_the_level_asked(
    flags: tuple[bool, int, str | None], shown: set[str]
) -> None:
    text = _actor_lines(flags)
    found = {
        phrase
        for phrase in ("debug from", "info from", "warn from", "host detail", "host trouble")
        if phrase in text
    }
    assert found == shown, text
    for line in text.splitlines():
        assert line.startswith(short_id(HOST) + " "), line


def test_json_log_lines_carry_time_level_host_logger_message_and_fields() -> None:
    out = io.StringIO()
    with logging_to(Verbosity(), "json", out) as tag:
        tag.host_id = HOST
        Dispatcher().log(Actor(), "info", "hello")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("meshhost.host").exception("it broke")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(first) == {"time", "level", "host", "logger", "message", "fields"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert (first["level"], first["host"], first["logger"]) == ("info", HOST, "meshhost.actor")
    assert first["message"].endswith("hello")
    assert first["fields"] == {"actor_id": Actor.actor_id, "actor_name": "echo"}
    assert second["level"] == "error" and "ValueError: boom" in second["fields"]["exception"]


def test_logging_is_put_back_after_the_command() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with logging_to(Verbosity.from_flags(False, 2, None), "text", io.StringIO()):
        assert root.level == logging.DEBUG
    assert root.handlers == handlers and root.level == level


def test_quiet_verbose_and_level_exclude_each_other(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["up", "-q", "-v", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "only one of -q, -v and --log-level" in result.output


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout_s: float = 60) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r} within {timeout_s} s: {lines}")


@pytest.mark.parametrize("flags", [(False, 0), (False, 1), (True, 0)])
def test_internal_events_need_v_and_routine_ones_are_hidden_by_q(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flags: tuple[bool, int]
) -> None:
    from meshhost.cli import upview

    monkeypatch.setattr(upview, "VIEW", upview.View())
    upview.VIEW.verbosity = Verbosity.from_flags(*flags, None)
    upview.VIEW.prefix, upview.VIEW.host_id = short_id(HOST), HOST
    upview.report({"kind": "entry_changed", "ns": "control.links", "key": "k"}, as_json=False)
    upview.report({"kind": "link_put", "actor": "M1", "contract": "c"}, as_json=False)
    upview.report({"kind": "reconcile_failed", "action": "a", "reason": "r"}, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    quiet, verbose = flags
    assert [line.split()[1] for line in lines] == (
        ["reconcile_failed"]
        if quiet
        else ["entry_changed", "link_put", "reconcile_failed"]
        if verbose
        else ["link_put", "reconcile_failed"]
    )
    assert all(line.startswith(short_id(HOST) + " ") for line in lines)
    upview.report({"kind": "link_put", "actor": "M1", "contract": "c"}, as_json=True)
    if not quiet:
        assert json.loads(capsys.readouterr().out)["host"] == HOST


@pytest.mark.parametrize("quiet", [False, True])
def test_up_prefixes_every_line_with_its_short_id_and_q_keeps_only_what_needs_a_person(
    tmp_path: Path, quiet: bool
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHHOST_")}
    env["MESHHOST_LATTICE_SECRET"] = encode_secret(bytes(range(32)))
    argv = [
        sys.executable,
        "-m",
        "meshhost",
        "up",
        "--no-mdns",
        "--bind",
        "127.0.0.1",
        "--profile",
        "local",
        "--data-dir",
        str(data),
        *(["-q"] if quiet else []),
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        started = _read_until(proc, r" on 127\.0\.0\.1:")[-1]
        host_id = re.search(r"host (N[A-Z2-7]{55})", started)
        assert host_id is not None, started
        prefix = short_id(host_id.group(1)) + " "
        put = subprocess.run(
            [
                sys.executable,
                "-m",
                "meshhost",
                "config",
                "put",
                "greeting",
                "hello",
                "--data-dir",
                str(data),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert put.returncode == 0, put.stderr
        # shown by default; with -q its absence is checked by the in-process test above
        lines = [] if quiet else _read_until(proc, r"config_changed")
        proc.send_signal(signal.SIGINT)
        lines += _read_until(proc, r"stopped")
        assert proc.wait(30) == 130
        assert all(line.startswith(prefix) for line in [started, *lines]), lines
        assert any("config_changed" in line for line in lines) == (not quiet), lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
