"""`meshhost up | grep ...`, then Ctrl-C: the reader is gone, the host still leaves cleanly."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshhost.cli import main


@pytest.mark.parametrize("output", [[], ["--json"]])
def test_up_leaves_cleanly_when_its_stdout_reader_went_away(
    tmp_path: Path, output: list[str]
) -> None:
    secret = tmp_path / "lattice.secret"
    assert CliRunner().invoke(main, ["lattice", "new", "--out", str(secret)]).exit_code == 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meshhost",
            "up",
            "--profile",
            "local",
            "--no-mdns",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--secret-file",
            str(secret),
            "--data-dir",
            str(tmp_path / "data"),
            *output,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert b"127.0.0.1:" in proc.stdout.readline()  # started
        proc.stdout.close()  # like `grep` killed by the same Ctrl-C
        proc.send_signal(signal.SIGINT)  # "leaving" now goes to a closed pipe
        errors = proc.stderr.read().decode()
        assert proc.wait(30) == 130, errors  # 128 + SIGINT, as after any Ctrl-C
        assert "Traceback" not in errors
    finally:
        proc.kill()
        proc.wait()
