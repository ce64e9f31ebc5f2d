"""The README's shell blocks run exactly as written.

Every ```sh block of README.md is read from the file itself (so this test
breaks when the README drifts) and run, in the README's order, as one
``bash -e`` session (later blocks go on with the hosts of earlier ones) in a
copy of the checkout, inside a network namespace of its own (its hosts bind
127.0.0.1 ports and must not meet anything else), with a PATH that has no
venv on it: what a person pasting the blocks into a fresh shell would get.
Background hosts (``&``) are killed with the session's process group
afterwards.  Then ``git status`` must show nothing new: what the commands
create is ignored.  Commands to adapt (placeholders such as ``M...``) are
fenced ```text instead.

The install blocks (``pip install``) are not run here: ``.ci/run`` runs the
test command itself and tests/cli/test_demo.py runs ``meshhost demo``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.systools import require_netns, require_tools, unavailable

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SESSION_TIMEOUT_S = 240.0

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def shell_blocks(text: str) -> list[str]:
    """Every fenced ```sh block, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.M | re.S)


def test_the_readme_has_the_blocks_this_test_knows() -> None:
    blocks = shell_blocks(README.read_text())
    install = [b for b in blocks if "pip install" in b]
    assert len(install) == 2, install  # the quick start and the test command
    assert ".venv/bin/python -m pytest" in install[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert install[1].strip() in ci, ".ci/run must run exactly the README's test command"
    assert [b for b in blocks if "pip install" not in b], "no runnable block left"


def _checkout_copy(dest: Path) -> None:
    """README, .gitignore and examples/ as tracked, in a fresh git repository, and
    ``.venv`` pointing at the venv running this test (as the quick start made it)."""
    for name in ("README.md", ".gitignore"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(
        ROOT / "examples",
        dest / "examples",
        ignore=shutil.ignore_patterns("build", "*.wasm", "*.seed", "__pycache__"),
    )
    (dest / ".venv").symlink_to(sys.prefix)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(dest)]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "checkout"]):
        subprocess.run([*git, *argv], check=True, capture_output=True)


def test_every_shell_block_runs_as_written_and_leaves_only_ignored_files(
    tmp_path: Path,
) -> None:
    require_netns()
    require_tools("curl", "git", why="to run the README's commands as written")
    if not (Path(sys.prefix) / "bin" / "activate").exists():
        unavailable(
            "needs to run in a venv, as the README's test command does (.venv/bin/python -m pytest)"
        )
    work = tmp_path / "checkout"
    work.mkdir()
    _checkout_copy(work)
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(tmp_path),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    blocks = [b for b in shell_blocks(README.read_text()) if "pip install" not in b]
    session = "".join(blocks)
    argv = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec bash -e -c "$0"', session]
    # Files, not pipes: the background hosts keep their stdout open after bash ends.
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        proc = subprocess.Popen(
            argv,
            cwd=work,
            env=env,
            stdout=out_file,
            stderr=err_file,
            text=True,
            start_new_session=True,
        )
    try:
        proc.wait(timeout=SESSION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        # The session's background hosts are in its process group: end them.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    out, err = out_path.read_text(), err_path.read_text()
    assert proc.returncode is not None and proc.returncode >= 0, (
        f"the blocks did not finish in {SESSION_TIMEOUT_S} s:\n{session}\n"
        f"stdout:\n{out}\nstderr:\n{err}"
    )
    assert proc.returncode == 0, f"the blocks failed:\n{session}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in err, err
    # The call, then curl: the counter's second request.
    assert re.search(r'"count":\s*2\b', out), out
    status = subprocess.run(
        ["git", "-C", str(work), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == "", (
        f"the README's commands leave files git does not ignore:\n{status.stdout}"
    )
