"""meshhost.testing: the waits keep their contract and the package needs no pytest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import trio
import trio.testing

import meshhost.testing
from meshhost.testing import host_address, make_host, poll_until, wait_until


async def test_wait_until_returns_how_long_it_waited_on_trios_clock() -> None:
    ready_at = trio.current_time() + 0.3
    took = await wait_until(lambda: trio.current_time() >= ready_at, "the time comes")
    assert 0.3 <= took < 5
    assert await wait_until(lambda: True, "already true") < 0.1


async def test_wait_until_names_what_it_waited_for_when_time_runs_out() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting until pigs fly"):
        await wait_until(lambda: False, "pigs fly", timeout_s=0.2)


def test_wait_until_waits_virtual_time_under_a_mock_clock() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> float:
        return await wait_until(
            lambda: trio.current_time() >= 1000, "1000 virtual s", 4000, interval_s=10
        )

    assert trio.run(main, clock=clock) >= 1000


def test_poll_until_counts_calls_and_describes_only_a_timeout() -> None:
    calls: list[int] = []
    described: list[int] = []

    def third_time() -> bool:
        calls.append(1)
        return len(calls) == 3

    poll_until(third_time, "third call", 5, interval_s=0.01, describe=lambda: str(described))
    assert len(calls) == 3 and described == []
    with pytest.raises(AssertionError, match=r"waiting until never\nhost a sees nobody"):
        poll_until(
            lambda: False, "never", 0.05, interval_s=0.01, describe=lambda: "host a sees nobody"
        )


def test_make_host_restarts_the_same_host_from_its_data_dir(tmp_path: Path) -> None:
    first = make_host(tmp_path, 3)
    again = make_host(tmp_path, 3)
    other = make_host(tmp_path, 4)
    assert first.host_id == again.host_id != other.host_id
    assert first.data_dir == tmp_path / "h3"
    assert (tmp_path / "h3").stat().st_mode & 0o777 == 0o700
    assert host_address(3) == "127.0.0.23"
    with pytest.raises(ValueError, match=r"outside 0\.\.234"):
        host_address(235)


def test_the_package_imports_no_pytest() -> None:
    # It ships in the wheel, where pytest may be missing; meshhost itself never
    # imports pytest (test_layering.py reads every import), so this is the edge.
    package = Path(meshhost.testing.__file__).parent
    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert "trio" in imported  # the walk sees imports
    assert not imported & {"pytest", "_pytest", "hypothesis"}, imported
