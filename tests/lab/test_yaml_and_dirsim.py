"""YAML scenarios (a built-in, or a Python file with its grid) and the directory in the sim."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshhost.config import PROFILES
from meshhost.errors import HistoryViolation, ScenarioError
from meshhost.lab.checkers import DirectoryWrite, check_directory
from meshhost.lab.dirsim import directory_cluster, directory_states
from meshhost.lab.scenario import load_scenario
from meshhost.lab.sweep import run_sweep

LAN = PROFILES["lan"]().membership


def test_a_yaml_scenario_names_a_built_in_and_sets_its_grid(tmp_path: Path) -> None:
    path = tmp_path / "crash.yaml"
    path.write_text(
        "scenario: crash_detection\ntitle: Crash, tiny\nparams: {n: [4, 5]}\nseeds: 2\nx: n\n"
    )
    scenario = load_scenario(path)
    assert (scenario.title, scenario.params, scenario.seeds, scenario.x) == (
        "Crash, tiny",
        {"n": [4, 5]},
        2,
        "n",
    )
    result = run_sweep(scenario, scenario.params, [1, 2], tmp_path / "out", jobs=1)
    assert [len(c.observations) for c in result.cells] == [3, 3, 4, 4]
    assert all(isinstance(o["detect_s"], float) for c in result.cells for o in c.observations)


def test_a_yaml_scenario_can_wrap_a_python_file_beside_it(tmp_path: Path) -> None:
    (tmp_path / "toy.py").write_text(
        "PARAMS = {'a': [1]}\ndef run(seed, a):\n    return {'v': seed * a}\n"
    )
    (tmp_path / "toy.yaml").write_text("file: toy.py\nparams: {a: [2, 3]}\nseeds: 1\n")
    scenario = load_scenario(tmp_path / "toy.yaml")
    result = run_sweep(scenario, scenario.params, [5], tmp_path / "out", jobs=1)
    assert [c.observations for c in result.cells] == [[{"v": 10}], [{"v": 15}]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenario: nope\n", "no built-in scenario 'nope'"),
        ("scenario: crash_detection\nparams: {m: [1]}\n", "run() takes no parameter 'm'"),
        ("scenario: crash_detection\nseeds: -1\n", "SEEDS must be a whole number >= 1"),
        ("scenario: crash_detection\nfile: x.py\n", "give exactly one of"),
        ("scenario: crash_detection\nbogus: 1\n", "unknown keys bogus"),
        ("[1, 2]\n", "a YAML scenario is a mapping"),
        ("scenario: [\n", "not valid YAML"),
        ("scenario: x\n  bad: : 1\n", "bad.yaml line 2 column 6: not valid YAML: mapping values"),
        ("scenario: crash_detection\nmetrics: detect_s\n", "metrics must be a list of field"),
        ("scenario: crash_detection\nx: [n]\n", "x must be a string, got ['n']"),
        ("scenario: crash_detection\ntitle: [a]\n", "title must be a string"),
    ],
)
def test_bad_yaml_scenarios_are_typed_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_directory_checker_catches_a_host_left_out_of_the_convergence() -> None:
    sim, dirs = directory_cluster(4, 6, LAN)
    sim.run_for(2.0)
    writes = [DirectoryWrite("k", "v1", dirs[0].config_put("k", "v1"), "0")]
    sim.pump(sim.hosts[0])
    sim.run_for(5.0)
    assert check_directory(directory_states(sim, dirs), writes).valid
    # Host 5 is cut off from everyone while host 1 overwrites the key.
    others = [h for h in sim.hosts if h.index != 5]
    sim.partition([sim.hosts[5]], others)
    writes.append(DirectoryWrite("k", "v2", dirs[1].config_put("k", "v2"), "1"))
    sim.pump(sim.hosts[1])
    sim.run_for(40.0)  # gossip, then push-pull anti-entropy, reach every host but 5
    result = check_directory(directory_states(sim, dirs), writes)
    assert result.violations == ("host 5 differs from the others on k",)
    with pytest.raises(HistoryViolation, match="host 5 differs"):
        result.raise_if_invalid()
    sim.heal()
    sim.run_for(10.0)
    assert check_directory(directory_states(sim, dirs), writes).valid
