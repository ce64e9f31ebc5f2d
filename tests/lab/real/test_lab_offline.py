"""The lab's parts that need no root: scenarios, observations, checkers, comparison."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import msgpack
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
    rows = observations(
        seen, HOSTS, ["h03"], cut_at=10.0, heal_at=20.0, end_at=40.0, base={"mode": "real"}
    )
    by = {r["host"]: r for r in rows}
    assert by["h01"] | {} == {
        "mode": "real",
        "host": "h01",
        "side": "majority",
        "suspect_s": 1.0,
        "detect_s": 3.5,
        "all_dead_s": 3.5,
        "heal_s": 0.4,
        "false_dead": 1,
    }
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


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"minority": 3}, "say how many hosts"),
        ({"hosts": 1}, "hosts must be a whole number from 2"),
        ({"hosts": 5, "minority": 5}, "minority must be a whole number from 1 to 4"),
        ({"hosts": 5, "cut_s": "long"}, "cut_s must be a number"),
        ({"hosts": 5, "profile": "fast"}, "profile must be one of"),
        ({"hosts": 5, "latency_ms": 5}, "unknown keys latency_ms"),
        ({"hosts": 5, "one_way": "yes"}, "one_way must be true or false"),
        ([1, 2], "a lab scenario is a YAML mapping"),
    ],
)
def test_a_bad_scenario_is_a_lab_error_naming_the_key(spec: object, message: str) -> None:
    with pytest.raises(LabError, match=message):
        scenario_from_mapping(spec, "bad", "bad.yaml")


def test_the_shipped_example_scenario_loads() -> None:
    s = load_lab_scenario(Path(__file__).parents[3] / "examples/lab/partition_3_of_10.yaml")
    assert (s.hosts, s.minority, s.minority_names()) == (10, 3, ["h08", "h09", "h10"])
    with pytest.raises(LabError, match="cannot read lab scenario"):
        load_lab_scenario("/nonexistent/scenario.yaml")


def test_a_yaml_syntax_error_is_one_line_naming_where(tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text("hosts: 10\n  x: : y\n")
    with pytest.raises(LabError) as info:
        load_lab_scenario(tmp_path / "lab.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'lab.yaml'} line 2 column 4: not valid YAML: "
        "mapping values are not allowed here"
    )


def call(
    host: str,
    start: float,
    end: float,
    outcome: str = "ok",
    count: int | None = None,
    phase: str = "cut",
) -> dict[str, object]:
    return {
        "op": "call",
        "host": host,
        "phase": phase,
        "start": start,
        "end": end,
        "deadline_s": 3.0,
        "margin_s": 15.0,
        "outcome": outcome,
        "count": count,
        "error": None,
    }


def test_the_counter_check_finds_a_lost_and_a_backwards_write_and_allows_duplicates() -> None:
    good = [
        call("h01", 0, 1, count=1),
        call("h02", 2, 3, count=3),  # 2: applied, not acked
        call("h03", 2, 4, outcome="fail"),
        call("h01", 5, 6, count=4, phase="final"),
    ]
    verdict = check_counter(good)
    assert verdict["ok"], verdict
    assert (verdict["applied_unacknowledged"], verdict["unacknowledged_calls"]) == (1, 1)
    lost = [
        call("h01", 0, 1, count=1),
        call("h02", 2, 3, count=1),
        call("h01", 5, 6, count=2, phase="final"),
    ]
    assert "acknowledged twice" in " ".join(check_counter(lost)["violations"])
    backwards = [
        call("h01", 0, 1, count=5),
        call("h02", 2, 3, count=4),
        call("h01", 5, 6, count=6, phase="final"),
    ]
    assert "was acknowledged before it started" in " ".join(check_counter(backwards)["violations"])
    no_final = [call("h01", 0, 1, count=1)]
    assert "final read" in " ".join(check_counter(no_final)["violations"])


def test_the_invocation_check_fails_a_hung_a_crashed_and_a_late_call() -> None:
    assert check_invocations([call("h01", 0, 1), call("h02", 0, 3.5, outcome="fail")])["ok"]
    bad = check_invocations(
        [
            call("h01", 0, 18.1, outcome="hung"),
            call("h02", 0, 1, "crash"),
            call("h03", 0, 18.5, outcome="fail"),
        ]
    )
    assert len(bad["violations"]) == 3 and not bad["ok"], bad
    assert "outcome unknown" in bad["violations"][0]
    assert "past its 18 s deadline" in bad["violations"][2]


def test_the_directory_check_needs_every_host_to_hold_every_acknowledged_write() -> None:
    view = {"links": [["M1", "wasmcloud:keyvalue", "default"]], "config": {"k": "v"}}
    link = {
        "op": "link_put",
        "host": "h01",
        "phase": "formed",
        "time": 1.0,
        "actor": "M1",
        "contract": "wasmcloud:keyvalue",
        "link_name": "default",
        "outcome": "ok",
    }
    put = {
        "op": "config_put",
        "host": "h01",
        "phase": "cut",
        "time": 5.0,
        "key": "k",
        "value": "v",
        "outcome": "ok",
        "error": None,
    }
    same = {"op": "directory", "phase": "final", "views": {"h01": view, "h02": view}}
    assert check_directory([link, put, same])["ok"]
    other = {"links": [], "config": {"k": None}}
    split = {"op": "directory", "phase": "final", "views": {"h01": view, "h02": view, "h03": other}}
    violations = check_directory([link, put, split])["violations"]
    assert violations == [
        "host h03 differs from the others on config k, link M1 wasmcloud:keyvalue default"
    ], violations
    # Every host agrees, but on an old value: the acknowledged write was lost.
    newer = {**put, "time": 6.0, "value": "w", "host": "h02"}
    assert (
        "not the last write 'w' (by h02)"
        in check_directory([link, put, newer, same])["violations"][0]
    )
    assert not check_directory([link, put])["ok"]  # nothing read after the heal


def test_compare_writes_the_gap_per_host_and_a_plot(tmp_path: Path) -> None:
    base = {
        "scenario": "t",
        "side": "majority",
        "suspect_s": 1.0,
        "detect_s": 4.0,
        "all_dead_s": None,
    }
    sim = [
        {**base, "mode": "sim", "seed": s, "host": h, "heal_s": 1.0 + s}
        for s in range(3)
        for h in ("h01", "h02")
    ]
    real = [
        {**base, "mode": "real", "seed": 0, "host": "h01", "heal_s": 0.5},
        {**base, "mode": "real", "seed": 0, "host": "h02", "heal_s": None},
    ]
    write_observations(tmp_path / "sim", sim)
    write_observations(tmp_path / "real", real)
    table = compare(
        tmp_path / "sim",
        tmp_path / "real" / "observations.csv",
        tmp_path / "c",
        ["heal_s", "all_dead_s"],
    )
    heal = {r["host"]: r for r in table if r["metric"] == "heal_s"}
    assert (heal["h01"]["sim_median"], heal["h01"]["real_median"], heal["h01"]["gap_s"]) == (
        2.0,
        0.5,
        -1.5,
    )
    assert (heal["h02"]["real_n"], heal["h02"]["gap_s"]) == (0, None)
    rows = list(csv.DictReader((tmp_path / "c" / "compare.csv").open()))
    assert len(rows) == 4
    assert (tmp_path / "c" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(LabError, match="no column nope"):
        compare(tmp_path / "sim", tmp_path / "real", tmp_path / "c", ["nope"])
    with pytest.raises(LabError, match="cannot read observations"):
        compare(tmp_path / "missing", tmp_path / "real", tmp_path / "c", ["heal_s"])


def test_a_meshhost_sim_sweep_of_the_lab_scenario_compares_with_a_real_run(
    tmp_path: Path,
) -> None:
    """examples/lab/partition_per_host.py is a `meshhost sim` scenario whose
    observations.csv `meshhost lab compare` reads beside a lab run's real rows."""
    from click.testing import CliRunner

    from meshhost.cli import load_all, main

    load_all()
    scenario = Path(__file__).parents[3] / "examples/lab/partition_per_host.py"
    runner = CliRunner()
    swept = runner.invoke(
        main,
        [
            "sim",
            "run",
            str(scenario),
            "--seeds",
            "2",
            "-j",
            "1",
            "--param",
            "hosts=4",
            "--param",
            "minority=1",
            "--out",
            str(tmp_path / "sweep"),
            "--no-plots",
        ],
    )
    assert swept.exit_code == 0, swept.output
    real = [
        {
            "scenario": "lab",
            "mode": "real",
            "seed": 0,
            "host": f"h0{i}",
            "side": "minority" if i == 4 else "majority",
            "suspect_s": 1.0,
            "detect_s": 4.0,
            "all_dead_s": 4.0,
            "heal_s": 0.5,
        }
        for i in range(1, 5)
    ]
    write_observations(tmp_path / "real", real)
    done = runner.invoke(
        main,
        [
            "lab",
            "compare",
            str(tmp_path / "sweep"),
            str(tmp_path / "real"),
            "--out",
            str(tmp_path / "c"),
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    import json

    table = json.loads(done.output)
    heal = [r for r in table if r["metric"] == "heal_s"]
    assert [r["host"] for r in heal] == ["h01", "h02", "h03", "h04"]
    assert all(r["sim_n"] == 2 and r["real_n"] == 1 and r["gap_s"] is not None for r in heal)


def test_compare_pools_rows_when_a_side_has_no_host_column(tmp_path: Path) -> None:
    write_observations(tmp_path / "sim", [{"seed": s, "heal_s": float(s)} for s in range(5)])
    write_observations(
        tmp_path / "real", [{"host": "h01", "heal_s": 3.0}, {"host": "h02", "heal_s": 5.0}]
    )
    (row,) = compare(tmp_path / "sim", tmp_path / "real", tmp_path / "c", ["heal_s"])
    assert (row["host"], row["sim_median"], row["real_median"], row["gap_s"]) == (
        "all",
        2.0,
        4.0,
        2.0,
    )


def test_lab_commands_fail_with_one_error_line_on_bad_input(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from meshhost.cli import load_all, main

    load_all()
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts: 10\nminority: 10\n")
    runner = CliRunner()
    done = runner.invoke(main, ["lab", "run", str(bad), "--out", str(tmp_path / "o")])
    assert done.exit_code == 1 and "minority must be a whole number from 1 to 9" in done.output
    assert not (tmp_path / "o").exists()  # nothing was started
    (tmp_path / "empty.csv").write_text("")
    done = runner.invoke(
        main, ["lab", "compare", str(tmp_path / "empty.csv"), str(tmp_path / "empty.csv")]
    )
    assert done.exit_code == 1 and "has no observation rows" in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_without_root_or_iproute2_the_lab_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from meshhost.lab.real import netns

    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "needs root to make network namespaces (running as uid 1000)" in str(
        netns.missing_tools()
    )
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "ip" else "/x")
    assert "needs ip: install them with `apt-get install iproute2 util-linux`" in str(
        netns.missing_tools()
    )
    monkeypatch.setattr(netns.shutil, "which", lambda tool: "/x")
    assert netns.missing_tools() is None


def test_several_real_runs_are_numbered_checked_one_by_one_and_compared_together(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``lab run --runs N``: the runner itself is stubbed (tests/lab/real/test_lab_netns.py
    runs it for real); what is checked is how the runs are put together."""
    from meshhost.lab.real import lab
    from meshhost.lab.real.runner import RealRun

    spec = scenario_from_mapping({"hosts": 3, "minority": 1}, "t", "t.yaml")

    def fake_run(scenario, out, *, timeout_s, say, run_number):  # type: ignore[no-untyped-def]
        out.mkdir(parents=True)  # fails if an earlier run's folder were still there
        (out / "pids.json").write_text("{}")
        rows = [
            {
                "scenario": "t",
                "mode": "real",
                "seed": run_number,
                "host": h,
                "side": "x",
                "suspect_s": 1.0,
                "detect_s": 2.0,
                "all_dead_s": None,
                "heal_s": float(run_number),
            }
            for h in scenario.host_names()
        ]
        count = 2 if run_number == 1 else 0  # run 2: the final read went backwards
        views = {h: {"links": [], "config": {}} for h in scenario.host_names()}
        history = [
            call("h01", 0, 1, count=1),
            call("h01", 2, 3, count=count, phase="final"),
            {"op": "directory", "phase": "final", "views": views},
        ]
        return RealRun(rows, history, {}, 5.0, [f"note {run_number}"])

    monkeypatch.setattr(lab, "run_real", fake_run)
    result = lab.run_lab(spec, tmp_path, timeout_s=60, sim_seeds=2, say=lambda m: None, runs=2)
    assert not result["checks"]["ok"]
    assert [c["ok"] for c in result["checks"]["runs"]] == [True, False]
    assert result["notes"] == ["run 1: note 1", "run 2: note 2"]
    rows = list(csv.DictReader((tmp_path / "real" / "observations.csv").open()))
    assert sorted({r["seed"] for r in rows}) == ["1", "2"] and len(rows) == 6
    for run in (1, 2):
        assert (tmp_path / "real" / f"run-{run}" / "checks.json").exists()
        assert (tmp_path / "real" / f"run-{run}" / "history.jsonl").read_text().count("\n") == 3
    heal = [r for r in result["compare"] if r["metric"] == "heal_s"]
    assert [(r["real_n"], r["real_median"]) for r in heal] == [(2, 1.5)] * 3
    # Again into the same folder: the earlier runs' folders are replaced, not mixed in.
    (tmp_path / "real" / "run-1" / "stale").write_text("from the earlier run")
    lab.run_lab(spec, tmp_path, timeout_s=60, sim_seeds=1, say=lambda m: None, runs=1)
    assert not (tmp_path / "real" / "run-1" / "stale").exists()
    # A folder that is not a lab run's is never deleted.
    (tmp_path / "real" / "run-1" / "pids.json").unlink()
    with pytest.raises(LabError, match="is not an earlier lab run's folder"):
        lab.run_lab(spec, tmp_path, timeout_s=60, sim_seeds=1, say=lambda m: None, runs=1)
    assert (tmp_path / "real" / "run-1" / "history.jsonl").exists()


def test_the_counter_is_read_from_a_call_answer_and_garbage_reads_as_none() -> None:
    from meshhost.lab.real.runner import _count

    def answer(payload: bytes) -> str:
        return json.dumps({"payload": payload.hex()})

    ok = msgpack.packb({"statusCode": 200, "body": b'{"count": 7}'}, use_bin_type=True)
    assert _count(answer(ok)) == 7
    for bad in (b"\xc1", ok + b"\x01", msgpack.packb([1, 2]), b"\x81\x01\x02", b""):
        assert _count(answer(bad)) is None
    assert _count("not json") is None
