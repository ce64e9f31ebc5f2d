"""The sweep's plots are readable: the title fits, axes carry units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshhost.lab.plots import plot_summary


def test_a_long_title_fits_and_the_axes_name_their_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.pyplot as plt

    figures: list[Any] = []
    monkeypatch.setattr(plt, "close", figures.append)
    rows = [
        {"cut_s": c, "model": m, "metric": "heal_s", "mean": 2.0, "mean_lo": 1.0, "mean_hi": 3.0}
        for c in (5, 20)
        for m in ("swim", "meshhost")
    ]
    title = ("One-way cut between two groups: what does each side believe, and how fast " * 2)[:-1]
    grid = {"cut_s": [5, 20], "model": ["swim", "meshhost"]}
    plot_summary(rows, grid, "cut_s", tmp_path, title)
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_xlabel() == "cut_s (s)"
    assert ax.get_ylabel() == "heal_s (s): mean, 95 % CI"
    assert ax.get_legend() is not None
    renderer = fig.canvas.get_renderer()
    box, page = ax.title.get_window_extent(renderer), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1, (box, page)
    assert ax.get_title().replace("\n", " ") == title


def test_a_plot_is_the_same_bytes_whatever_another_plot_set_before(tmp_path: Path) -> None:
    # The sweep test compares a CLI run's SVG with one made in the test
    # process; the gallery used to set svg.fonttype/hashsalt globally, so the
    # bytes depended on which tests ran first.
    import matplotlib

    rows = [{"a": a, "metric": "v", "mean": a, "mean_lo": a - 1, "mean_hi": a + 1} for a in (1, 2)]
    grid = {"a": [1, 2]}
    plot_summary(rows, grid, "a", tmp_path / "clean", "toy")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "another"}):
        plot_summary(rows, grid, "a", tmp_path / "after", "toy")
    clean = (tmp_path / "clean" / "v.svg").read_bytes()
    assert clean == (tmp_path / "after" / "v.svg").read_bytes()
    assert matplotlib.rcParams["svg.hashsalt"] is None  # nothing left set globally
