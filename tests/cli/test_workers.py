"""`up --processes N`: what a worker process is started with, and bad counts."""

from __future__ import annotations

import itertools
from pathlib import Path

from click.testing import CliRunner

from meshhost.cli import main
from meshhost.cli.workers import WorkerSettings, seed_address, worker_argv


def test_a_worker_takes_the_primarys_lattice_labels_and_secret_with_its_own_data_dir() -> None:
    settings = WorkerSettings(
        lattice="prod",
        profile="local",
        seeds=("10.0.0.9:4000",),
        labels=("zone=a", "gpu=no"),
        bind="127.0.0.1",
        mdns_service_type="_mh-x._udp.local.",
        allowed_issuers=("AISSUER",),
        secret_file=Path("/srv/mh/lattice.secret"),
        log_args=("-q",),
    )
    argv = worker_argv(settings, Path("/srv/mh"), 2, seed_address(("0.0.0.0", 4100)))
    args = argv[argv.index("up") + 1 :]
    pairs = list(itertools.pairwise(args))
    assert ("--data-dir", "/srv/mh/workers/2") in pairs
    assert ("--port", "0") in pairs  # any free port: N processes cannot share one
    assert ("--seed", "127.0.0.1:4100") in pairs and ("--seed", "10.0.0.9:4000") in pairs
    assert ("--label", "zone=a") in pairs and ("--label", "gpu=no") in pairs
    assert ("--lattice", "prod") in pairs and ("--profile", "local") in pairs
    assert ("--secret-file", "/srv/mh/lattice.secret") in pairs
    assert ("--allowed-issuer", "AISSUER") in pairs and ("--bind", "127.0.0.1") in pairs
    assert "-q" in args and "--json" in args
    # One status file and one metrics/dashboard port each: those stay the primary's.
    assert not {"--status-file", "--metrics", "--dashboard", "--processes"} & set(args)


def test_a_secret_from_the_environment_is_inherited_not_put_on_the_command_line() -> None:
    argv = worker_argv(WorkerSettings(lattice="l", profile="lan"), Path("/d"), 1, "h:1")
    assert "--secret-file" not in argv


def test_processes_must_be_between_one_and_the_limit(tmp_path: Path) -> None:
    for bad in ("0", "-1", "100000"):
        result = CliRunner().invoke(main, ["up", "--processes", bad, "--data-dir", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert "--processes" in result.output


def test_workers_log_in_the_primarys_format_not_json_by_default() -> None:
    def formats(log_args: tuple[str, ...]) -> list[str]:
        argv = worker_argv(
            WorkerSettings(lattice="l", profile="lan", log_args=log_args), Path("/d"), 1, "h:1"
        )
        return [argv[i + 1] for i, a in enumerate(argv) if a == "--log-format"]

    assert formats(()) == ["text"]  # a worker runs `up --json`, whose default is json
    assert formats(("--log-format", "json")) == ["json"]
