"""Every test and module the docs name exists where they say.

Files and folders move (issue 13 moved tests by layer and manifests to
``meshhost/apps/``); a doc that still cites the old path sends a reader to
nothing. This reads README.md, docs/, proto/, bench/ and simulations/ (and the
comments and docstrings of meshhost/, bench/ and simulations/) for
``tests/…/test_x.py``-style references (``tests/`` may be left out, as
docs/security.md does), each with an optional ``::test_name`` (a bare
``::test_name`` right after refers to the last file named), and for
``meshhost/….py`` module paths, and checks each against the tree.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "docs", "proto", "bench", "simulations", "tests/README.md")
SOURCES = ("meshhost", "bench", "simulations")
"""Their comments and docstrings cite tests and modules too."""
# A test file with at least one folder before it (test_layering.py alone names
# no place), then optional ::name; or a bare ::test_name continuing the last file.
TEST_REF = re.compile(
    r"((?:tests/)?[a-z_]+(?:/[a-z_]+)*/test_[a-z0-9_]+\.py)(?:::(\w+))?|(?<![\w.:])::(test_\w+)"
)
MODULE_REF = re.compile(r"\bmeshhost/[a-z_]+(?:/[a-z_]+)*\.py\b")


def _doc_files() -> list[Path]:
    files: list[Path] = []
    for name in DOCS:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(path.rglob("*.md")))
    for name in SOURCES:
        files.extend(sorted((ROOT / name).rglob("*.py")))
    return files


def _test_file(ref: str) -> Path | None:
    for candidate in (ROOT / ref, ROOT / "tests" / ref):
        if candidate.is_file():
            return candidate
    return None


def test_every_test_file_and_test_the_docs_and_comments_name_exists() -> None:
    missing: list[str] = []
    for doc in _doc_files():
        last: Path | None = None
        for lineno, line in enumerate(doc.read_text().splitlines(), 1):
            for match in TEST_REF.finditer(line):
                where = f"{doc.relative_to(ROOT)}:{lineno}"
                path_ref, name, continued = match.groups()
                if path_ref is not None:
                    last = _test_file(path_ref)
                    if last is None:
                        missing.append(f"{where}: no file {path_ref}")
                        continue
                else:
                    name = continued
                if name and last is not None and f"def {name}(" not in last.read_text():
                    missing.append(f"{where}: no test {name} in {last.relative_to(ROOT)}")
    assert not missing, "docs name tests that do not exist:\n" + "\n".join(missing)


def test_every_module_path_the_docs_name_exists() -> None:
    missing = [
        f"{doc.relative_to(ROOT)}:{lineno}: no module {ref}"
        for doc in _doc_files()
        for lineno, line in enumerate(doc.read_text().splitlines(), 1)
        for ref in MODULE_REF.findall(line)
        if not (ROOT / ref).is_file()
    ]
    assert not missing, "docs name modules that do not exist:\n" + "\n".join(missing)
