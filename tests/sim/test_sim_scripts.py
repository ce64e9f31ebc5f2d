"""The scenario files in simulations/: each loads, runs small, and replays from its seed.

Each runs in-process through the lab's loader (``meshhost sim run`` uses the
same), with a grid small enough for a fraction of a second.  A run is a
pure function of (scenario, seed, parameters): the same ones give the same
observations, another seed different ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshhost.config import PROFILES
from meshhost.lab.scenario import load_scenario, normalise_observations
from meshhost.sim import build_cluster
from meshhost.sim.scenarios import broadcast_reach, crash_detection, partition_heal

SCRIPTS = Path(__file__).resolve().parents[2] / "simulations"
LAN = PROFILES["lan"]().membership

SMALL_RUNS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("broadcast", {"n": 8}, {"reached": 7}),
    ("failure_detection", {"n": 6}, {"floor_s": 4.0}),
    ("false_positives", {"n": 6, "minutes": 0.5, "loss": 0.1}, {"pauses": 1, "false_dead": 0}),
    ("partition_heal", {"n": 6, "cut_s": 20}, {"views_disturbed": True}),
    ("restart_all", {"n": 6}, {}),
    ("speed", {"n": 10, "virtual_s": 2}, {"disagreeing": 0}),
    ("custom_partition", {"n": 8, "sizes": [4, 4], "cut_s": 30}, {"views_split": True}),
    ("directory_convergence", {"n": 6, "minority": 3, "writes": 6}, {"directory_valid": True}),
]
WALL_CLOCK = {"build_wall_s", "run_wall_s", "events_per_s", "peak_rss_mib", "kib_per_host"}


def test_every_scenario_file_is_covered() -> None:
    # gallery.py drives the scenarios of simulations/gallery/ (tested on its own)
    scenarios = {p.stem for p in SCRIPTS.glob("*.py")} - {"gallery"}
    assert scenarios == {name for name, _, _ in SMALL_RUNS}


@pytest.mark.parametrize(("name", "params", "expected"), SMALL_RUNS, ids=[r[0] for r in SMALL_RUNS])
def test_small_runs_replay_from_the_seed(
    name: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    scenario = load_scenario(SCRIPTS / f"{name}.py")
    assert scenario.title and scenario.params and scenario.seeds >= 1
    assert set(params) <= set(scenario.params) | (scenario.accepted or set())

    def observe(seed: int) -> list[dict[str, Any]]:
        obs = normalise_observations(scenario.run(seed, **params), name)
        return [{k: v for k, v in o.items() if k not in WALL_CLOCK} for o in obs]

    first, again, other = observe(1), observe(1), observe(7)
    assert first and first == again
    for key, value in expected.items():
        assert all(o[key] == value for o in first), (key, first)
    if name not in ("speed", "restart_all", "false_positives"):  # tiny runs may coincide
        assert first != other


def test_custom_partition_rejects_shapes_that_cut_nothing() -> None:
    scenario = load_scenario(SCRIPTS / "custom_partition.py")
    with pytest.raises(ValueError, match="two or more groups of at most 30 hosts"):
        scenario.run(1, n=30, sizes=[10, 30])
    with pytest.raises(ValueError, match="two or more groups"):
        scenario.run(1, n=30, sizes=[30])


def test_scenarios_reject_host_counts_they_cannot_measure() -> None:
    with pytest.raises(ValueError, match="at least 1 host, got n=0"):
        build_cluster(1, 0, LAN)
    with pytest.raises(ValueError, match="crash detection needs at least 2 hosts, got n=1"):
        crash_detection(1, 1, LAN)
    with pytest.raises(ValueError, match="a broadcast needs at least 2 hosts"):
        broadcast_reach(1, 1, LAN)
    with pytest.raises(ValueError, match=r"minority must be 1 \.\. 5 hosts for n=6, got 0"):
        partition_heal(1, 6, LAN, 0, one_way=False)
