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
