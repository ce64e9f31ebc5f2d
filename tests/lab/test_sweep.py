"""meshhost sim run: parallel sweeps that resume after Ctrl-C, Dask, failing seeds.

The scenarios here are toys (a seeded PRNG and a short sleep) so the tests
exercise the runner, not the simulator: a cell takes ~50 ms.  Each run of
``run`` appends its cell to a log beside the scenario, so a test can tell
which cells really ran.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshhost.cli import main
from meshhost.errors import ScenarioError
from meshhost.lab.report import write_outputs
from meshhost.lab.scenario import load_scenario
from meshhost.lab.sweep import run_sweep

TOY = '''"""Toy sweep: a seeded noisy value"""
import os, random, time
PARAMS = {"a": [1, 2, 3], "b": ["x"], "c": [0.5]}
SEEDS = 20
def run(seed, a, b, c, fail_seed=-1):
    with open(os.path.join(os.path.dirname(__file__), "runs.log"), "a") as log:
        log.write(f"{a} {seed}\\n")
    time.sleep(0.05)
    if seed == fail_seed:
        raise AssertionError(f"seed {seed} broke an invariant")
    r = random.Random(seed * 1000 + a)
    return [{"v": a * c + r.random(), "hit": r.random() < 0.5, "tag": b} for _ in range(2)]
'''


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    path = tmp_path / "toy.py"
    path.write_text(TOY)
    return path


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    code = "import sys; from meshhost.cli import main; main(sys.argv[1:], prog_name='meshhost')"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _runs(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _outputs(out: Path) -> dict[str, bytes]:
    names = [
        "observations.csv",
        "observations.jsonl",
        "summary.csv",
        "summary.json",
        "report.md",
        "plots/v.svg",
    ]
    return {name: (out / name).read_bytes() for name in names}


def test_a_sweep_interrupted_by_ctrl_c_resumes_without_rerunning_finished_cells(
    toy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = _cli("sim", "run", str(toy), "--out", str(out), "--jobs", "2", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while len(list((out / "cells").glob("*.json"))) < 8:  # 60 cells in all
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no cell finished"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    kept = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "cells").glob("*.json")}
    assert 8 <= len(kept) < 60, "the sweep was not interrupted mid-way"
    assert not list((out / "cells").glob(".*.tmp")), "a half-written cell was left"
    finished = {
        (str(json.loads(b)["params"]["a"]), str(json.loads(b)["seed"])) for _, b in kept.values()
    }

    log = tmp_path / "runs.log"
    first_runs = len(_runs(log))
    again = _cli("sim", "run", str(toy), "--out", str(out), "--jobs", "2", cwd=tmp_path)
    stdout, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"{60 - len(kept)} cells run, {len(kept)} already done, 0 failed" in stdout
    second = _runs(log)[first_runs:]
    assert not finished & {tuple(line.split()) for line in second}, "a finished cell ran again"
    for name, (mtime, data) in kept.items():
        assert (out / "cells" / name).stat().st_mtime_ns == mtime
        assert (out / "cells" / name).read_bytes() == data

    # The resumed results are those of one uninterrupted sweep, byte for byte.
    whole = tmp_path / "whole"
    scenario = load_scenario(toy)
    result = run_sweep(scenario, scenario.params, range(1, 21), whole, jobs=1)
    write_outputs(scenario, scenario.params, list(range(1, 21)), result, whole)
    assert len(result.cells) == 60
    assert sum(1 for _ in (out / "observations.jsonl").open()) == 120
    assert _outputs(out) == _outputs(whole)


def test_a_sweep_runs_on_a_dask_cluster(toy: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    scenario = load_scenario(toy)
    grid = scenario.with_grid({"a": [1, 2]})
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        result = run_sweep(
            scenario, grid, range(1, 4), tmp_path / "dask", dask=cluster.scheduler_address
        )
    local = run_sweep(scenario, grid, range(1, 4), tmp_path / "local", jobs=1)
    assert result.ran == 6 and len(result.cells) == 6
    assert [(c.params, c.seed, c.observations) for c in result.cells] == [
        (c.params, c.seed, c.observations) for c in local.cells
    ]


def test_a_failing_seed_is_printed_with_a_replay_command_that_reproduces_it(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "sim",
            "run",
            str(toy),
            "--seeds",
            "3",
            "-j",
            "1",
            "--param",
            "a=2",
            "--param",
            "fail_seed=2",
            "--no-plots",
        ],
    )
    assert result.exit_code == 1, result.output
    line = next(ln for ln in result.output.splitlines() if ln.strip().startswith("replay:"))
    command = line.split("replay:", 1)[1].split()
    assert command[:3] == ["meshhost", "sim", "replay"]
    assert "SEED=2 AssertionError: seed 2 broke an invariant" in result.output
    report = (tmp_path / "sim-results" / "toy" / "report.md").read_text()
    assert "replay: `meshhost sim replay" in report and "2 of 3 runs finished, 1 failed" in report

    replayed = runner.invoke(main, command[1:])
    assert replayed.exit_code == 1
    assert "seed 2 broke an invariant" in replayed.output and "SEED=2" in replayed.output
    ok = runner.invoke(main, ["sim", "replay", str(toy), "--seed", "1", "--param", "a=2"])
    assert ok.exit_code == 0, ok.output
    cells = [
        json.loads(p.read_text())
        for p in (tmp_path / "sim-results" / "toy" / "cells").glob("*.json")
    ]
    seed1 = next(c for c in cells if c["seed"] == 1)
    assert [json.loads(x) for x in ok.output.splitlines()] == seed1["observations"]

    # A rerun retries the failed cell (it may have been fixed) but not the others.
    log = tmp_path / "runs.log"
    before = len(_runs(log))
    rerun = runner.invoke(
        main,
        [
            "sim",
            "run",
            str(toy),
            "--seeds",
            "3",
            "-j",
            "1",
            "--param",
            "a=2",
            "--param",
            "fail_seed=2",
            "--no-plots",
        ],
    )
    assert rerun.exit_code == 1, rerun.output
    assert _runs(log)[before:] == ["2 2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "d=1"], "run() takes no parameter 'd' (it takes: a, b, c, fail_seed)"),
        (["--param", "a"], "expected name=value"),
        (["--seeds", "0"], "0 is not in the range x>=1"),
        (["--dask"], "Option '--dask' requires an argument"),
        (["--dask", "nowhere"], "--dask nowhere: not a scheduler address (missing port number"),
        (["--param", "a=1,2,1"], "--param a: the value 1 is given twice"),
        (["--param", "a=1,"], "--param 'a=1,': an empty value (a stray comma?)"),
        (["--param", "a=[1,2],[3"], "--param 'a=[1,2],[3': '[1' is not valid JSON"),
        (
            ["--param", "a=1", "--seeds", "1", "--metrics", "v,hits", "--out", "m", "-j", "1"],
            "metrics 'hits': no observation has such a field (fields: v, hit, tag)",
        ),
    ],
)
def test_bad_sweep_arguments_are_one_line_errors(
    toy: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(toy.parent)
    result = CliRunner().invoke(main, ["sim", "run", str(toy), *args])
    assert result.exit_code in (1, 2)
    assert message in result.output and "Traceback" not in result.output


def test_a_missing_scenario_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sim", "run", str(tmp_path / "nope.py")])
    assert result.exit_code == 1
    assert "cannot read scenario" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["sim", "run", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def run(seed:\n", "bad.py line 1: the scenario does not load: SyntaxError: '(' was"),
        (
            "import os\nfrom meshhost.sim import Nope\n",
            "bad.py line 2: the scenario does not load: ImportError: cannot import name 'Nope'",
        ),
        ("PARAMS = {}\n", "a scenario needs a function run(seed, **params)"),
        ("PARAMS = {'a': 3}\ndef run(seed, a): pass", "must be a non-empty list"),
        ("SEEDS = 0\ndef run(seed): pass", "SEEDS must be a whole number >= 1"),
        ("PARAMS = {'a': ['x', 'y', 'x']}\ndef run(seed, a): pass", "the value 'x' is given twice"),
        ("METRICS = 'v'\ndef run(seed): pass", "METRICS must be a list of field names, got 'v'"),
        ("X = 1\ndef run(seed): pass", "X must be a string, got 1"),
    ],
)
def test_bad_scenario_files_are_typed_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(text)
    with pytest.raises(
        ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
    ):
        load_scenario(path)


def test_a_metric_never_observed_is_summarised_as_missing(tmp_path: Path) -> None:
    # A horizon never reached (None, NaN, inf) in every run must show as missing,
    # not vanish from the summary.
    path = tmp_path / "never.py"
    path.write_text('def run(seed):\n    return {"heal_s": float("inf"), "tag": "x", "n": 3}\n')
    scenario = load_scenario(path)
    result = run_sweep(scenario, {}, [1, 2], tmp_path / "out", jobs=1)
    written = write_outputs(scenario, {}, [1, 2], result, tmp_path / "out", plots=False)
    rows = {r["metric"]: r for r in written["summary"]}
    assert list(rows) == ["n", "heal_s"]
    assert (rows["heal_s"]["count"], rows["heal_s"]["missing"]) == (2, 2)
    assert "| heal_s | 2 | 2 | - |" in (tmp_path / "out" / "report.md").read_text()


def test_a_run_that_returns_nothing_fails_its_seed(tmp_path: Path) -> None:
    # A forgotten `return` gave a sweep with no observations and no failure.
    path = tmp_path / "noreturn.py"
    path.write_text("def run(seed):\n    x = {'v': seed}\n")
    result = run_sweep(load_scenario(path), {}, [1], tmp_path / "out", jobs=1)
    assert [f["error"] for f in result.failures] == [
        f"ScenarioError: {path} seed 1: run() returned None; return a dict of observations "
        "(or a list of them, [] for none)"
    ]
