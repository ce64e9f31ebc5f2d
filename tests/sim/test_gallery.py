"""The gallery driver (simulations/gallery.py) on a tiny version of one entry.

The full gallery is too slow for CI; this runs the kill -9 entry with 10
hosts and one seed and checks the files a figure is made of: the CSV with
the reference and the ratio, the PNG, and the reference drawn in the SVG.
"""

import csv
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gallery():
    spec = importlib.util.spec_from_file_location("gallery", ROOT / "simulations" / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gallery_entry_writes_csv_and_plot_with_reference(tmp_path):
    gallery = _gallery()
    out = tmp_path / "out"
    rows = gallery.build(
        "kill9_detection",
        out,
        tmp_path / "work",
        jobs=1,
        seeds=1,
        overrides={"n": [10]},
        log=lambda *a, **k: None,
    )
    assert [r["metric"] for r in rows] == ["detect_s"]
    with open(out / "kill9_detection.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["n"] == "10" and row["stat"] == "median"
    assert float(row["reference"]) == 9.75
    ours = float(row["median"])
    assert 1.0 < ours < 30.0  # 10 hosts: suspicion 4 s + a probe or two
    assert abs(float(row["ratio"]) - ours / 9.75) < 1e-6
    png = out / "kill9_detection.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 200_000
    svg = (out / "kill9_detection.svg").read_text()
    assert "memberlist 9.8 s / kinship 9.7 s" in svg  # the reference's legend entry
    assert "stroke-dasharray" in svg  # drawn dashed beside ours


def test_lifeguard_ratios_give_an_interval_or_the_bound_a_zero_allows():
    import math
    import runpy
    from types import SimpleNamespace

    ratios = runpy.run_path(str(ROOT / "simulations" / "gallery" / "lifeguard_false_positives.py"))[
        "RATIOS"
    ]

    def cell(parts, seed, healthy, any_):
        obs = {"false_dead_healthy": healthy, "false_dead": any_}
        return SimpleNamespace(
            params={"parts": parts, "slow_s": 2.0}, seed=seed, observations=[obs]
        )

    cells = [cell("none", s, 2, 4) for s in range(1, 41)]
    cells += [cell("all", s, 0, 1 if s <= 20 else 0) for s in range(1, 41)]
    rows = {(r["parts"], r["metric"]): r for r in ratios(cells, resamples=2000)}
    some = rows[("all", "false_dead")]
    assert some["false_deaths"] == 20 and some["ratio"] == 8.0
    assert some["ratio_lo"] < 8.0 < some["ratio_hi"] and some["ratio_at_least"] is None
    zero = rows[("all", "false_dead_healthy")]
    assert zero["ratio"] is None
    # SWIM's rate is 2 per run in every resample; zero in 40 runs bounds the rate
    # at -ln(0.05) / 40, so the ratio is at least 2 / (2.9957 / 40).
    assert math.isclose(zero["ratio_at_least"], 2 / (-math.log(0.05) / 40))
