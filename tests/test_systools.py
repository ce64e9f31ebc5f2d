"""The shared tool/root check skips on a developer's machine and fails under CI=true."""

from __future__ import annotations

import pytest

from tests import systools

ABSENT = "meshhost-no-such-tool"


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_missing_tool_skips_outside_ci_naming_the_tool_and_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setitem(systools.PACKAGES, ABSENT, "meshhost-pkg")
    with pytest.raises(pytest.skip.Exception) as skipped:
        systools.require_tools("sh", ABSENT, why="to test the check")
    reason = str(skipped.value)
    assert f"`{ABSENT}`" in reason and "apt-get install meshhost-pkg" in reason, reason
    assert "`sh`" not in reason, reason  # only what is missing is named


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as failed:
        systools.require_tools(ABSENT, why="to test the check")
    assert f"`{ABSENT}`" in str(failed.value)


def test_missing_root_skips_outside_ci_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(systools.os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        systools.require_tools("sh", root=True, why="to make network namespaces")
    assert "needs root to make network namespaces (running as uid 1000)" in str(skipped.value)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        systools.require_tools("sh", root=True, why="to make network namespaces")


def test_present_tools_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(systools.os, "geteuid", lambda: 0)
    monkeypatch.setenv("CI", "true")
    systools.require_tools("sh", root=True, why="to test the check")


def test_no_test_checks_for_a_tool_on_its_own() -> None:
    """Every tool or root check in the suite goes through this module."""
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    offenders = [
        str(path.relative_to(tests))
        for path in tests.rglob("*.py")
        if path.name not in {"systools.py", "test_systools.py"}
        and any(needle in path.read_text() for needle in ("shutil.which(", "os.geteuid()"))
    ]
    assert offenders == [], f"check tools with systools.require_tools instead: {offenders}"
