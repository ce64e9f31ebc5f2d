"""The web dashboard in a real browser, against three real hosts on loopback.

Three ``meshhost up`` processes (static seeds, no mDNS, profile ``local``)
on 127.0.0.1; host ``a`` serves the dashboard.  An application places one
echo instance on a ``worker`` host (b or c).  Headless Chromium (Debian's
``chromium`` + ``chromium-driver``, driven by selenium) opens the page once
and never reloads it.  It must show three alive hosts; after ``kill -9`` of
the host running echo it must show that host suspect, then dead, and echo
on the other worker, all pushed by the server.  Screenshots are saved under
the test's tmp dir (paths printed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from meshhost import examples
from meshhost.identity.keyring import encode_secret
from tests.systools import require_tools

pytestmark = pytest.mark.slow

WAIT_S = 60.0
"""Bound of each wait: host start, placement, failure detection under a loaded machine."""
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,1500",
)
MANIFEST = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: echo-app
  annotations:
    version: v1
spec:
  components:
    - name: echo
      type: actor
      properties:
        image: ./echo.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 1
            spread:
              - name: workers
                requirements: {role: worker}
"""


def wait_for(
    predicate: Callable[[], Any],
    what: str,
    timeout_s: float = WAIT_S,
    diagnostics: Callable[[], str] = lambda: "",
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting until {what}\n{diagnostics()}")


class Proc:
    """One `meshhost up --json` process; its first JSON line says where it listens."""

    def __init__(self, root: Path, name: str, secret: str, args: list[str]) -> None:
        self.name = name
        self.data_dir = root / name
        self.out = root / f"{name}.out"
        argv = [
            sys.executable,
            "-m",
            "meshhost",
            "up",
            "--lattice",
            "dash",
            "--profile",
            "local",
            "--no-mdns",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
            "--json",
            *args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESHHOST_")}
        env["MESHHOST_LATTICE_SECRET"] = secret
        with self.out.open("wb") as out:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def started(self) -> dict[str, Any] | None:
        for line in self.out.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"started"' in line:
                record: dict[str, Any] = json.loads(line)
                return record
        return None

    def tail(self) -> str:
        return f"--- {self.name}:\n" + self.out.read_text(errors="replace")[-2000:]


@pytest.fixture
def three_hosts(tmp_path: Path) -> Iterator[list[Proc]]:
    secret = encode_secret(os.urandom(32))
    procs: list[Proc] = []
    try:
        a = Proc(tmp_path, "a", secret, ["--label", "role=web", "--dashboard", "127.0.0.1:0"])
        procs.append(a)
        first = wait_for(a.started, "host a started", diagnostics=a.tail)
        for name in ("b", "c"):
            procs.append(
                Proc(tmp_path, name, secret, ["--label", "role=worker", "--seed", first["addr"]])
            )
        for proc in procs:
            wait_for(proc.started, f"host {proc.name} started", diagnostics=proc.tail)
        yield procs
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGKILL)
            proc.popen.wait()


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "meshhost", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def get_state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "api/state", timeout=10) as answer:
        state: dict[str, Any] = json.load(answer)
        return state


def test_the_dashboard_shows_a_killed_host_turn_dead_and_its_actor_move(
    three_hosts: list[Proc], tmp_path: Path
) -> None:
    require_tools("chromium", "chromedriver", why="to test the dashboard in a real browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    a, b, c = three_hosts
    url = a.started()["dashboard"]  # type: ignore[index]
    ids = {p.name: p.started()["id"] for p in three_hosts}  # type: ignore[index]
    wait_for(
        lambda: [h["state"] for h in get_state(url)["hosts"]] == ["alive"] * 3,
        "host a sees three alive hosts",
        diagnostics=lambda: json.dumps(get_state(url)),
    )
    _, echo_id = examples.build("echo", tmp_path / "app")
    manifest = tmp_path / "app" / "echo.yaml"
    manifest.write_text(MANIFEST)
    cli(a.data_dir, "apply", str(manifest))

    def runner() -> str | None:
        for host in get_state(url)["hosts"]:
            if any(actor["id"] == echo_id for actor in host["actors"]):
                return str(host["id"])
        return None

    first_runner = wait_for(
        runner, "echo placed on a worker", diagnostics=lambda: json.dumps(get_state(url))
    )
    assert first_runner in (ids["b"], ids["c"])
    victim = b if ids["b"] == first_runner else c
    survivor = c if victim is b else b
    cli(a.data_dir, "call", echo_id, "Echo", "hello")  # something for the rate columns

    options = webdriver.ChromeOptions()
    options.binary_location = (
        "/usr/bin/chromium"
        if Path("/usr/bin/chromium").exists()
        else str(Path(subprocess.check_output(["which", "chromium"], text=True).strip()))
    )
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = Service(
        executable_path=subprocess.check_output(["which", "chromedriver"], text=True).strip()
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(url)
        driver.execute_script("window.__notReloaded = true;")
        # Every state each host card is rendered with, noted by the page as it renders:
        # a poll from here (each round trip slow under load) can miss a short one.
        driver.execute_script("""
            window.__shown = {};
            const note = () => {
              for (const card of document.querySelectorAll('#hosts .host')) {
                const seen = (window.__shown[card.dataset.hostId] ||= []);
                if (seen[seen.length - 1] !== card.dataset.state) seen.push(card.dataset.state);
              }
            };
            new MutationObserver(note).observe(document.getElementById('hosts'),
                                               {childList: true, subtree: true});
            note();""")

        # Read the DOM in one script: the page re-renders whenever a state is pushed.
        def card_states() -> dict[str, str]:
            found: dict[str, str] = driver.execute_script(
                "return Object.fromEntries([...document.querySelectorAll('#hosts .host')]"
                ".map(c => [c.dataset.hostId, c.dataset.state]))"
            )
            return found

        def actor_hosts() -> set[str]:
            found: list[str] = driver.execute_script(
                "return [...document.querySelectorAll('#hosts .host tr[data-actor-id=\"'"
                " + arguments[0] + '\"]')].map(r => r.closest('.host').dataset.hostId)",
                echo_id,
            )
            return set(found)

        page = lambda: driver.find_element(By.TAG_NAME, "body").text[-3000:]  # noqa: E731
        wait_for(
            lambda: card_states() == {i: "alive" for i in ids.values()},
            "the page shows three alive hosts",
            diagnostics=page,
        )
        wait_for(
            lambda: actor_hosts() == {first_runner},
            "the page shows echo on its host",
            diagnostics=page,
        )
        # three hosts, each pair sees each other alive (each host's own view is asked
        # over the lattice: one answer too slow under load leaves an edge unknown a while)
        wait_for(
            lambda: (
                driver.execute_script(
                    "return [document.querySelectorAll('#graph .node').length,"
                    " document.querySelectorAll('#graph .edge.ok').length]"
                )
                == [3, 3]
            ),
            "the graph shows three hosts, each pair alive",
            diagnostics=page,
        )
        before = tmp_path / "dashboard-before.png"
        driver.save_screenshot(str(before))

        victim.popen.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim_id = victim.started()["id"]  # type: ignore[index]
        wait_for(
            lambda: card_states().get(victim_id) == "dead",
            "the page shows the killed host dead",
            diagnostics=page,
        )
        detected_s = time.monotonic() - killed_at
        wait_for(
            lambda: actor_hosts() == {survivor.started()["id"]},  # type: ignore[index]
            "the page shows echo on the surviving worker",
            diagnostics=page,
        )
        moved_s = time.monotonic() - killed_at
        assert driver.execute_script("return window.__notReloaded === true;"), "page reloaded"
        seen: list[str] = driver.execute_script("return window.__shown[arguments[0]];", victim_id)
        assert "suspect" in seen, f"states shown for the killed host: {seen}"
        assert seen[0] == "alive" and seen[-1] == "dead", seen
        # the serving host's own row of the matrix says the victim is dead
        cell_states = driver.execute_script(
            "return [...document.querySelectorAll('#matrix tr[data-observer] td.cell')]"
            ".map(td => td.className)"
        )
        assert any("dead" in c for c in cell_states), cell_states
        kinds = driver.execute_script(
            "return [...document.querySelectorAll('#events li')].map(e => e.dataset.kind)"
        )
        assert "host_dead" in kinds, kinds
        after = tmp_path / "dashboard-after.png"
        driver.save_screenshot(str(after))
        print(
            f"\nscreenshots: {before} {after}\nkilled {victim_id[:12]}: states shown "
            f"{seen}; dead after {detected_s:.1f} s, echo moved after {moved_s:.1f} s"
        )
    finally:
        driver.quit()
