"""Every figure in docs/simulation.md is what its sweep measures today.

Each generated block names its sweep (``<!-- sim: ... -->``); regenerating
it from the same fixed seeds must give the same bytes.  When a change to a
core moves a figure, rerun ``python -m meshhost.lab.docgen docs/simulation.md``
and read the new figures before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshhost.errors import ScenarioError
from meshhost.lab.docgen import BLOCK, generate_block, regenerate

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulation.md"


def test_the_simulation_guide_shows_what_its_sweeps_measure() -> None:
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 8
    stale = regenerate(DOC, check=True)
    assert stale == [], (
        f"docs/simulation.md is stale for {stale}: run python -m meshhost.lab.docgen "
        "docs/simulation.md"
    )


def test_a_stale_block_is_found_and_rewritten(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "toy.py").write_text(
        "PARAMS = {'a': [1, 2]}\ndef run(seed, a):\n    return {'v': seed * a}\n"
    )
    doc = tmp_path / "doc.md"
    doc.write_text("before\n<!-- sim: toy.py --seeds 2 -->\nold figures\n<!-- /sim -->\nafter\n")
    assert regenerate(doc, check=True) == ["toy.py --seeds 2"]
    assert "old figures" in doc.read_text()  # --check only compares
    assert regenerate(doc) == ["toy.py --seeds 2"]
    text = doc.read_text()
    assert text.startswith("before\n<!-- sim: toy.py --seeds 2 -->\n`meshhost sim run toy.py")
    assert "| 2 | v | 2 | 0 | 3.00 [2.00, 4.00] |" in text and text.endswith(
        "<!-- /sim -->\nafter\n"
    )
    assert regenerate(doc, check=True) == []
    with pytest.raises(ScenarioError, match="unknown option --bogus"):
        generate_block("toy.py --bogus 1", tmp_path)


def test_a_block_can_embed_a_plot_which_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "toy.py").write_text(
        "PARAMS = {'a': [1, 2]}\ndef run(seed, a):\n    return {'v': seed * a}\n"
    )
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "doc.md"
    doc.write_text("<!-- sim: toy.py --seeds 2 --plot v=docs/img/v.svg -->\n<!-- /sim -->\n")
    assert regenerate(doc) == ["toy.py --seeds 2 --plot v=docs/img/v.svg"]
    svg = tmp_path / "docs" / "img" / "v.svg"
    assert svg.read_bytes().startswith(b"<?xml")
    assert "`meshhost sim run toy.py --seeds 2`" in doc.read_text()  # no doc-only option
    assert "![v: mean and 95 % CI](img/v.svg)" in doc.read_text()
    assert regenerate(doc, check=True) == []
    svg.write_bytes(b"<svg/>")  # a stale plot is found like a stale table
    assert regenerate(doc, check=True) == ["toy.py --seeds 2 --plot v=docs/img/v.svg"]
