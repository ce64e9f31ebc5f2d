"""The dashboard page keeps its shape with many hosts and other people's long names.

The page's own static files, served plainly on loopback, in headless Chromium;
the page's ``render`` is given a made-up lattice state: 10 hosts (one of them
at the bottom of the ring), an actor name of 100 characters, HTML in a name,
a label and a link name.  Every node must lie inside the graph's viewBox
without overlapping another, nothing may overflow its card or the window, and
no markup may run.
"""

from __future__ import annotations

import functools
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from systools import require_tools

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
LONG = "a-very-long-actor-name-" + "that-goes-on-" * 6 + "without-a-break"


def fake_state(count: int) -> dict[str, Any]:
    ids = [f"N{i:02d}" + "X" * 53 for i in range(count)]
    hosts = [{
        "id": h, "address": f"127.0.0.1:{7946 + i}", "state": "alive", "incarnation": 1,
        "labels": {"zone": XSS}, "local": i == 0, "reachable": True, "health": 0,
        "view": {o: "alive" for o in ids},
        "actors": [{"id": "M" + "A" * 55, "name": LONG, "instances": 2, "calls_per_s": 1.5,
                    "errors_per_s": 0.0, "p50_ms": 1.0, "p99_ms": 2.0, "calls_total": 9},
                   {"id": "M" + "B" * 55, "name": XSS, "instances": 1, "calls_per_s": 0.0,
                    "errors_per_s": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "calls_total": 0}],
    } for i, h in enumerate(ids)]
    return {"lattice": "t", "served_by": ids[0], "hosts": hosts,
            "links": [{"actor": "M" + "A" * 55, "contract": "wasmcloud:httpserver",
                       "link_name": XSS, "provider": ""}],
            "actor_names": {"M" + "A" * 55: LONG, "M" + "B" * 55: XSS}, "apps": []}


@pytest.fixture
def page_url() -> Iterator[str]:
    static = resources.files("meshhost.monitor") / "static"
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(static))
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


@pytest.mark.parametrize("count", [4, 10])
def test_many_hosts_and_long_names_stay_inside_the_page(
    page_url: str, tmp_path: Path, count: int
) -> None:
    require_tools("chromium", "chromedriver", why="to test the dashboard in a real browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = subprocess.check_output(["which", "chromium"], text=True).strip()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1280,1400", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    service = Service(subprocess.check_output(["which", "chromedriver"], text=True).strip())
    driver = webdriver.Chrome(options=options, service=service)
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
        for b in found["nodes"][i + 1:]:
            gap = ((a["cx"] - b["cx"]) ** 2 + (a["cy"] - b["cy"]) ** 2) ** 0.5
            assert gap > a["r"] + b["r"], (a, b)
    assert found["overflowing"] == 0 and not found["pageWide"]
    assert found["xss"] is None and found["imgs"] == 0
