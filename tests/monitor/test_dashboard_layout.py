"""The dashboard page keeps its shape with many hosts and other people's long names.

The page's own static files, served plainly on loopback, in headless Chromium;
the page's ``render`` is given a made-up lattice state: 10 hosts (one of them
at the bottom of the ring), an actor name of 100 characters, HTML in a name,
a label and a link name.  Every node must lie inside the graph's viewBox
without overlapping another, nothing may overflow its card or the window, and
no markup may run.  And a page whose host falls silent (hung, stopped) does not
go on saying "live".
"""

from __future__ import annotations

import functools
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.systools import require_tools

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
LONG = "a-very-long-actor-name-" + "that-goes-on-" * 6 + "without-a-break"


def fake_state(count: int) -> dict[str, Any]:
    ids = [f"N{i:02d}" + "X" * 53 for i in range(count)]
    hosts = [
        {
            "id": h,
            "address": f"127.0.0.1:{7946 + i}",
            "state": "alive",
            "incarnation": 1,
            "labels": {"zone": XSS},
            "local": i == 0,
            "reachable": True,
            "health": 0,
            "view": {o: "alive" for o in ids},
            "actors": [
                {
                    "id": "M" + "A" * 55,
                    "name": LONG,
                    "instances": 2,
                    "calls_per_s": 1.5,
                    "errors_per_s": 0.0,
                    "p50_ms": 1.0,
                    "p99_ms": 2.0,
                    "calls_total": 9,
                },
                {
                    "id": "M" + "B" * 55,
                    "name": XSS,
                    "instances": 1,
                    "calls_per_s": 0.0,
                    "errors_per_s": 0.0,
                    "p50_ms": 0.0,
                    "p99_ms": 0.0,
                    "calls_total": 0,
                },
            ],
        }
        for i, h in enumerate(ids)
    ]
    return {
        "lattice": "t",
        "served_by": ids[0],
        "hosts": hosts,
        "links": [
            {
                "actor": "M" + "A" * 55,
                "contract": "wasmcloud:httpserver",
                "link_name": XSS,
                "provider": "",
            }
        ],
        "actor_names": {"M" + "A" * 55: LONG, "M" + "B" * 55: XSS},
        "apps": [],
    }


class PageHandler(SimpleHTTPRequestHandler):
    """The static files; /api/stream answers once, pings, then falls silent (a hung
    host), and answers no new stream."""

    streams = 0

    def do_GET(self) -> None:
        if self.path != "/api/stream":
            super().do_GET()
            return
        PageHandler.streams += 1
        if PageHandler.streams > 1:
            time.sleep(20)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b"retry: 1000\n\nevent: ping\ndata: {}\n\n")
        self.wfile.flush()
        time.sleep(20)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    static = resources.files("meshhost.monitor") / "static"
    PageHandler.streams = 0
    handler = functools.partial(PageHandler, directory=str(static))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dashboard.html"
    finally:
        server.shutdown()


GEOMETRY = """
const svg = document.getElementById('graph'), box = svg.viewBox.baseVal;
const nodes = [...svg.querySelectorAll('g.node')].map((n) => {
  const b = n.getBBox(), t = n.transform.baseVal.consolidate().matrix;
  return {x: b.x + t.e, y: b.y + t.f, w: b.width, h: b.height,
          cx: t.e, cy: t.f, r: +n.querySelector('circle.body').getAttribute('r')};
});
const cards = [...document.querySelectorAll('.card, .host')];
return {box: [box.width, box.height], nodes,
        overflowing: cards.filter((c) => c.scrollWidth > c.clientWidth + 1).length,
        pageWide: document.scrollingElement.scrollWidth > window.innerWidth,
        xss: window.__xss || null, imgs: document.querySelectorAll('main img, main script').length};
"""


def browser(tmp_path: Path) -> Any:
    require_tools("chromium", "chromedriver", why="to test the dashboard in a real browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = subprocess.check_output(["which", "chromium"], text=True).strip()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    service = Service(subprocess.check_output(["which", "chromedriver"], text=True).strip())
    return webdriver.Chrome(options=options, service=service)


def wait_for(driver: Any, script: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out: {script}")


def test_a_page_whose_host_falls_silent_stops_saying_live(page_url: str, tmp_path: Path) -> None:
    driver = browser(tmp_path)
    try:
        driver.get(page_url)
        conn = "document.getElementById('conn')"
        wait_for(driver, f"return {conn}.dataset.state === 'live'")
        # 60 s later, as the page's clock sees it: no state, event or ping came since.
        driver.execute_script("const real = Date.now.bind(Date); Date.now = () => real() + 60000;")
        said = wait_for(driver, f"return {conn}.dataset.state === 'lost' && {conn}.textContent")
        assert "silent" in said
    finally:
        driver.quit()


@pytest.mark.parametrize("count", [4, 10])
def test_many_hosts_and_long_names_stay_inside_the_page(
    page_url: str, tmp_path: Path, count: int
) -> None:
    driver = browser(tmp_path)
    try:
        driver.get(page_url)
        driver.execute_script(f"render({json.dumps(fake_state(count))});")
        found = driver.execute_script(GEOMETRY)
        driver.save_screenshot(str(tmp_path / f"layout-{count}.png"))
        print(tmp_path / f"layout-{count}.png")
    finally:
        driver.quit()
    width, height = found["box"]
    assert len(found["nodes"]) == count
    for n in found["nodes"]:
        assert n["x"] >= 0 and n["y"] >= 0, n
        assert n["x"] + n["w"] <= width and n["y"] + n["h"] <= height, n
    for i, a in enumerate(found["nodes"]):
        for b in found["nodes"][i + 1 :]:
            gap = ((a["cx"] - b["cx"]) ** 2 + (a["cy"] - b["cy"]) ** 2) ** 0.5
            assert gap > a["r"] + b["r"], (a, b)
    assert found["overflowing"] == 0 and not found["pageWide"]
    assert found["xss"] is None and found["imgs"] == 0
