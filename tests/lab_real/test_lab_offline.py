"""The lab's parts that need no root: scenarios, observations, checkers, comparison."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from meshhost.errors import LabError
from meshhost.lab.real.checks import check_counter, check_directory, check_invocations
from meshhost.lab.real.compare import compare
from meshhost.lab.real.lab import write_observations
from meshhost.lab.real.observe import Seen, observations
from meshhost.lab.real.simrun import simulate
from meshhost.lab.real.spec import load_lab_scenario, scenario_from_mapping

HOSTS = ["h01", "h02", "h03"]


def test_observations_time_suspicion_death_and_return_from_the_cut_and_the_heal() -> None:
    seen = [
        Seen(11.0, "h01", "suspect", "h03"),
        Seen(13.5, "h01", "dead", "h03"),
        Seen(12.0, "h02", "suspect", "h03"),  # never dead before the heal
        Seen(12.5, "h03", "dead", "h01"),
        Seen(12.6, "h03", "dead", "h02"),
        Seen(20.4, "h01", "joined", "h03"),
        Seen(20.9, "h02", "alive", "h03"),
        Seen(21.0, "h03", "joined", "h01"),  # h02 never comes back to h03
        Seen(14.0, "h01", "dead", "h02"),  # same side: a false death
        Seen(5.0, "h01", "dead", "h03"),  # before the cut: not counted
    ]
    rows = observations(seen, HOSTS, ["h03"], cut_at=10.0, heal_at=20.0, end_at=40.0,
                        base={"mode": "real"})
    by = {r["host"]: r for r in rows}
    assert by["h01"] | {} == {"mode": "real", "host": "h01", "side": "majority",
                              "suspect_s": 1.0, "detect_s": 3.5, "all_dead_s": 3.5,
                              "heal_s": 0.4, "false_dead": 1}
    assert (by["h02"]["detect_s"], by["h02"]["heal_s"]) == (None, 0.9)
    assert by["h03"]["side"] == "minority"
    assert (by["h03"]["detect_s"], by["h03"]["all_dead_s"]) == (2.5, 2.6)
    assert by["h03"]["heal_s"] is None  # h02 did not return within the run


def test_the_simulated_counterpart_cuts_the_same_last_hosts() -> None:
    s = scenario_from_mapping({"hosts": 6, "minority": 2, "cut_s": 8}, "t", "t.yaml")
    rows = simulate(s, seed=1)
    assert [r["side"] for r in rows] == ["majority"] * 4 + ["minority"] * 2
    assert all(r["suspect_s"] is not None and r["heal_s"] is not None for r in rows)
    assert rows == simulate(s, seed=1)  # a pure function of the seed


@pytest.mark.parametrize(("spec", "message"), [
    ({"minority": 3}, "say how many hosts"),
    ({"hosts": 1}, "hosts must be a whole number from 2"),
    ({"hosts": 5, "minority": 5}, "minority must be a whole number from 1 to 4"),
    ({"hosts": 5, "cut_s": "long"}, "cut_s must be a number"),
    ({"hosts": 5, "profile": "fast"}, "profile must be one of"),
    ({"hosts": 5, "latency_ms": 5}, "unknown keys latency_ms"),
    ({"hosts": 5, "one_way": "yes"}, "one_way must be true or false"),
    ([1, 2], "a lab scenario is a YAML mapping"),
])
def test_a_bad_scenario_is_a_lab_error_naming_the_key(spec: object, message: str) -> None:
    with pytest.raises(LabError, match=message):
        scenario_from_mapping(spec, "bad", "bad.yaml")


def test_the_shipped_example_scenario_loads() -> None:
    s = load_lab_scenario(Path(__file__).parents[2] / "examples/lab/partition_3_of_10.yaml")
    assert (s.hosts, s.minority, s.minority_names()) == (10, 3, ["h08", "h09", "h10"])
    with pytest.raises(LabError, match="cannot read lab scenario"):
        load_lab_scenario("/nonexistent/scenario.yaml")


def call(host: str, start: float, end: float, outcome: str = "ok", count: int | None = None,
         phase: str = "cut") -> dict[str, object]:
    return {"op": "call", "host": host, "phase": phase, "start": start, "end": end,
            "deadline_s": 3.0, "margin_s": 15.0, "outcome": outcome, "count": count,
            "error": None}


def test_the_counter_check_finds_a_lost_and_a_backwards_write_and_allows_duplicates() -> None:
    good = [call("h01", 0, 1, count=1), call("h02", 2, 3, count=3),  # 2: applied, not acked
            call("h03", 2, 4, outcome="fail"), call("h01", 5, 6, count=4, phase="final")]
    verdict = check_counter(good)
    assert verdict["ok"], verdict
    assert (verdict["applied_unacknowledged"], verdict["unacknowledged_calls"]) == (1, 1)
    lost = [call("h01", 0, 1, count=1), call("h02", 2, 3, count=1),
            call("h01", 5, 6, count=2, phase="final")]
    assert "acknowledged twice" in " ".join(check_counter(lost)["violations"])
    backwards = [call("h01", 0, 1, count=5), call("h02", 2, 3, count=4),
                 call("h01", 5, 6, count=6, phase="final")]
    assert "was acknowledged before it started" in " ".join(check_counter(backwards)["violations"])
    no_final = [call("h01", 0, 1, count=1)]
    assert "final read" in " ".join(check_counter(no_final)["violations"])


def test_the_invocation_check_fails_a_hung_a_crashed_and_a_late_call() -> None:
    assert check_invocations([call("h01", 0, 1), call("h02", 0, 3.5, outcome="fail")])["ok"]
    bad = check_invocations([call("h01", 0, 18.1, outcome="hung"), call("h02", 0, 1, "crash"),
                             call("h03", 0, 18.5, outcome="fail")])
    assert len(bad["violations"]) == 3 and not bad["ok"]


def test_the_directory_check_needs_every_host_to_hold_every_acknowledged_write() -> None:
    view = {"links": [["M1", "wasmcloud:keyvalue", "default"]], "config": {"k": "v"}}
    put = {"op": "config_put", "host": "h01", "phase": "cut", "key": "k", "value": "v",
           "outcome": "ok", "error": None}
    same = {"op": "directory", "phase": "final", "views": {"h01": view, "h02": view}}
    assert check_directory([put, same])["ok"]
    other = {"links": [], "config": {"k": None}}
    split = {"op": "directory", "phase": "final", "views": {"h01": view, "h02": other}}
    violations = check_directory([put, split])["violations"]
    assert "hosts disagree" in violations[0] and "is not on h02" in violations[1]


def test_compare_writes_the_gap_per_host_and_a_plot(tmp_path: Path) -> None:
    base = {"scenario": "t", "side": "majority", "suspect_s": 1.0, "detect_s": 4.0,
            "all_dead_s": None}
    sim = [{**base, "mode": "sim", "seed": s, "host": h, "heal_s": 1.0 + s} for s in range(3)
           for h in ("h01", "h02")]
    real = [{**base, "mode": "real", "seed": 0, "host": "h01", "heal_s": 0.5},
            {**base, "mode": "real", "seed": 0, "host": "h02", "heal_s": None}]
    write_observations(tmp_path / "sim", sim)
    write_observations(tmp_path / "real", real)
    table = compare(tmp_path / "sim", tmp_path / "real" / "observations.csv", tmp_path / "c",
                    ["heal_s", "all_dead_s"])
    heal = {r["host"]: r for r in table if r["metric"] == "heal_s"}
    assert (heal["h01"]["sim_median"], heal["h01"]["real_median"], heal["h01"]["gap_s"]) == (
        2.0, 0.5, -1.5)
    assert (heal["h02"]["real_n"], heal["h02"]["gap_s"]) == (0, None)
    rows = list(csv.DictReader((tmp_path / "c" / "compare.csv").open()))
    assert len(rows) == 4
    assert (tmp_path / "c" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(LabError, match="no column nope"):
        compare(tmp_path / "sim", tmp_path / "real", tmp_path / "c", ["nope"])
    with pytest.raises(LabError, match="cannot read observations"):
        compare(tmp_path / "missing", tmp_path / "real", tmp_path / "c", ["heal_s"])
