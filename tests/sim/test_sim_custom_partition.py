"""simulations/custom_partition.py (the guide's worked example) reports what really happened.

Each figure the script prints is checked against an independent replay of
the same seed through the public API: at the reported second after the
heal the condition holds, one step earlier it did not.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

from meshhost.apps import parse_manifest
from meshhost.config import PROFILES
from meshhost.sim import (
    build_cluster,
    cut_groups,
    host_placements,
    one_view,
    placement_disagreements,
    random_groups,
    true_placement,
    views_split,
)

SCRIPT = Path(__file__).resolve().parents[2] / "simulations" / "custom_partition.py"
LAN = PROFILES["lan"]().membership


@pytest.fixture
def script() -> dict[str, Any]:
    return runpy.run_path(str(SCRIPT))


def replay(
    module: dict[str, Any], seed: int, n: int, sizes: list[int], cut_s: float, until_s: float
) -> list[tuple[float, bool, int]]:
    """(seconds after heal, one view, hosts off the true placement) every step."""
    apps = [parse_manifest(module["APP"], check_images=False)]
    labels = {i: {"zone": "ab"[i % 2]} for i in range(n)}
    sim, _ = build_cluster(seed, n, LAN)
    sim.run_for(5.0)
    groups = random_groups(sim, sizes)
    cut_groups(sim, groups)
    sim.run_for(cut_s)
    sim.heal()
    healed = sim.now
    trace = []
    while sim.now - healed <= until_s:
        trace.append((sim.now - healed, one_view(sim), placement_disagreements(sim, apps, labels)))
        sim.run_for(module["STEP_S"])
    return trace


def first(trace: list[tuple[float, bool, int]], holds: Any) -> float | None:
    return next((t for t, view, off in trace if holds(view, off)), None)


@pytest.mark.parametrize(
    ("seed", "n", "sizes", "cut_s", "split"),
    [
        (1, 8, [4, 4], 30.0, "yes"),  # two halves: each declares the other dead
        (3, 9, [4, 4], 30.0, "no"),  # a bridging host keeps the halves in touch
    ],
)
def test_reported_figures_match_a_replay_of_the_same_seed(
    script: dict[str, Any], seed: int, n: int, sizes: list[int], cut_s: float, split: str
) -> None:
    row = script["run"](seed, n, sizes, cut_s, False, 30.0)
    fields = ("views_split", "off_placement", "one_view_s", "placement_s", "checks")
    got_split, off, view_s, place_s, checks = (row[f] for f in fields)
    assert got_split == (split == "yes")
    assert checks > 0
    trace = replay(script, seed, n, sizes, cut_s, 30.0)
    assert view_s == first(trace, lambda view, off: view)
    assert place_s == first(trace, lambda view, off: off == 0)
    if split == "yes":
        assert off == n  # each side placed the app on its own hosts only
        assert 0 < place_s <= view_s  # one view implies the true placement


def test_a_sweep_of_the_scenario_reports_what_each_run_returned(tmp_path: Path) -> None:
    from meshhost.lab.report import write_outputs
    from meshhost.lab.scenario import load_scenario
    from meshhost.lab.sweep import run_sweep

    scenario = load_scenario(SCRIPT)
    grid = scenario.with_grid({"n": [8], "sizes": [[4, 4]], "cut_s": [30]})
    result = run_sweep(scenario, grid, [1, 2], tmp_path, jobs=1)
    assert [c.observations[0]["off_placement"] for c in result.cells] == [8, 8]
    write_outputs(scenario, grid, [1, 2], result, tmp_path, plots=False)
    lines = (tmp_path / "observations.csv").read_text().splitlines()
    assert lines[0].startswith("scenario,n,sizes,cut_s,one_way,seed,obs,")
    assert lines[1].startswith('custom_partition,8,"[4,4]",30,False,1,0,')
    assert (
        "| 8 | [4, 4] | 30 | False | views_split | 2 | 0 | 1.00 [1.00, 1.00]"
        in (tmp_path / "report.md").read_text()
    )


def test_placement_helpers_follow_each_hosts_own_view(script: dict[str, Any]) -> None:
    apps = [parse_manifest(script["APP"], check_images=False)]
    labels = {i: {"zone": "ab"[i % 2]} for i in range(6)}
    sim, _ = build_cluster(5, 6, LAN)
    sim.run_for(2.0)
    truth = true_placement(sim, apps, labels)
    assert truth.total(next(iter(truth.workloads))) == 12
    assert all(p == truth for p in host_placements(sim, apps, labels).values())
    groups = random_groups(sim, [3, 3])
    cut_groups(sim, groups)
    sim.run_for(30.0)
    assert views_split(sim, groups)
    placements = host_placements(sim, apps, labels)
    for group in groups:
        mine = [placements[h.index] for h in group]
        assert all(p == mine[0] for p in mine)  # a side agrees with itself ...
        assert set(mine[0].by_host) <= {h.node_id for h in group}  # ... on its own hosts
        assert mine[0] != truth
    with pytest.raises(ValueError, match="at least two groups, got 1"):
        cut_groups(sim, groups[:1])
