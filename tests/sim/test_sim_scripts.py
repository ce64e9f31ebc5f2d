"""The scenario scripts in simulations/: usage errors, small runs, replay from a seed.

Scripts run in-process (``runpy``) with a patched ``sys.argv`` so each costs
a fraction of a second.  A script's stdout is a pure function of its
arguments: the same seeds print the same bytes (wall time goes to stderr).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from meshhost.config import PROFILES
from meshhost.errors import SimulationError
from meshhost.sim import build_cluster
from meshhost.sim.scenarios import broadcast_reach, crash_detection, partition_heal

SCRIPTS = Path(__file__).resolve().parents[2] / "simulations"
LAN = PROFILES["lan"]().membership


def run_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, *args: str
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``simulations/<name>.py args``."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.setattr(sys, "argv", [name + ".py", *args])
    try:
        runpy.run_path(str(SCRIPTS / f"{name}.py"), run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


BAD_ARGUMENTS = [
    ("broadcast", ["--sizes", "0"], "--sizes: must be at least 2, got 0"),
    ("broadcast", ["--sizes", "10,-3"], "--sizes: must be at least 2, got -3"),
    ("broadcast", ["--sizes", "ten"], "--sizes: expected a whole number, got 'ten'"),
    ("broadcast", ["--seeds", "0"], "--seeds: must be at least 1, got 0"),
    ("broadcast", ["--losses", "150"], "--losses: a loss must be in [0, 100) %"),
    ("failure_detection", ["--seeds", "-2"], "--seeds: must be at least 1, got -2"),
    ("failure_detection", ["--profiles", "lan,fast"], "unknown profile 'fast'"),
    ("false_positives", ["--minutes", "-1"], "--minutes: must be a positive number"),
    ("false_positives", ["--minutes", "nan"], "--minutes: must be a positive number"),
    ("partition_heal", ["--hosts", "0"], "--hosts: must be at least 2, got 0"),
    ("partition_heal", ["--cut", "0"], "--cut: must be a positive number"),
    ("speed", ["--hosts", "-1"], "--hosts: must be at least 1, got -1"),
    ("speed", ["--virtual", "-1"], "--virtual: must be a positive number"),
    ("speed", ["--seeds", "3"], "unrecognized arguments: --seeds 3"),
    ("speed", ["--seed-base", "-1"], "--seed-base: must be at least 0, got -1"),
    ("custom_partition", ["--groups", "10,30"], "40 hosts in groups, but --hosts is 30"),
    ("custom_partition", ["--groups", "0,5"], "--groups: must be at least 1, got 0"),
    ("custom_partition", ["--hosts", "4", "--groups", "4"], "one group cuts nothing"),
    ("custom_partition", ["--groups", "1"], "one group cuts nothing"),
    ("custom_partition", ["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("name", "args", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_usage_errors_naming_the_argument(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    args: list[str],
    message: str,
) -> None:
    code, out, err = run_script(monkeypatch, capsys, name, *args)
    assert code == 2
    assert out == ""
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "name", ["broadcast", "failure_detection", "false_positives", "partition_heal", "speed"]
)
def test_help_keeps_the_description_paragraphs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, out, _ = run_script(monkeypatch, capsys, name, "--help")
    assert code == 0
    assert "\n\nUsage: python simulations/" in out  # not folded into one paragraph


SMALL_RUNS = [
    ("broadcast", ["--sizes", "8", "--losses", "0"], "| 8 | 0% | 1 |"),
    ("failure_detection", ["--seeds", "1", "--sizes", "6"], "| lan | 6 | 4.00 |"),
    (
        "false_positives",
        ["--seeds", "1", "--minutes", "0.5", "--sizes", "6", "--losses", "10"],
        "| 6 | 10% | 1 | 1 | 0 |",
    ),
    ("partition_heal", ["--seeds", "1", "--hosts", "6", "--cut", "20"], "| 3/3 | symmetric |"),
    ("speed", ["--hosts", "10", "--virtual", "2"], "10 hosts, LAN profile, seed 1"),
]


@pytest.mark.parametrize(("name", "args", "row"), SMALL_RUNS)
def test_small_runs_print_a_table_that_replays_from_the_seed(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    args: list[str],
    row: str,
) -> None:
    first = run_script(monkeypatch, capsys, name, *args)
    again = run_script(monkeypatch, capsys, name, *args)
    other = run_script(monkeypatch, capsys, name, *args, "--seed-base", "7")
    assert first[0] == again[0] == other[0] == 0
    assert row in first[1]
    assert first[1] == again[1]  # byte for byte: wall time is on stderr
    assert first[1] != other[1]
    assert "wall:" in first[2] and "wall:" not in first[1]


def test_two_hosts_partition_rows_are_not_repeated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_script(monkeypatch, capsys, "partition_heal", "--hosts", "2", "--seeds", "1")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| 1/1 |")]
    assert len(rows) == 2  # one symmetric, one one-way (n // 2 == 1 is the single-host row)


def test_scenarios_reject_host_counts_they_cannot_measure() -> None:
    with pytest.raises(ValueError, match="at least 1 host, got n=0"):
        build_cluster(1, 0, LAN)
    with pytest.raises(ValueError, match="crash detection needs at least 2 hosts, got n=1"):
        crash_detection(1, 1, LAN)
    with pytest.raises(ValueError, match="a broadcast needs at least 2 hosts"):
        broadcast_reach(1, 1, LAN)
    with pytest.raises(ValueError, match=r"minority must be 1 \.\. 5 hosts for n=6, got 0"):
        partition_heal(1, 6, LAN, 0, one_way=False)


def test_a_failing_run_names_its_seed_so_it_can_be_replayed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import meshhost.sim.scenarios as scenarios

    def broken_on_seed_2(seed: int, n: int, config: object) -> list[float]:
        if seed == 2:
            raise KeyError("a bug in a core")
        return [1.0] * (n - 1)

    monkeypatch.setattr(scenarios, "crash_detection", broken_on_seed_2)
    with pytest.raises(SimulationError, match=r"SEED=2: scenario crashed: KeyError"):
        run_script(monkeypatch, capsys, "failure_detection", "--seeds", "3", "--sizes", "5")
    assert capsys.readouterr().err == "SEED=2\n"
