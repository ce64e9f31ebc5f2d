"""#8 in namespaces: the shipped counter manifest applied to three bridged hosts.

Three `meshhost up` processes, default profile (mDNS), each in its own
namespace on one bridge, labelled zone=a, zone=b, zone=b.  The manifest is
examples/manifests/counter.yaml with 4 instances spread half to zone=a and
half to zone=b, and its HTTP link on 0.0.0.0:8088: in its own namespace every
host binds that port on its own address.  A client in a fourth namespace
GETs every host.  c is killed with SIGKILL (its instance moves to b, the
other zone=b host; a keeps its 2) while a and b keep answering; c restarted
on its data dir gets its share back; `app delete` stops every instance and
closes the port everywhere.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lattice.netns.bridge_lattice import BridgedLattice
from tests.lattice.processes.proc_lattice import HostProc, parallel

pytestmark = [pytest.mark.netns, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "manifests" / "counter.yaml"
PORT = 8088
"""The example's own port: each host binds it in its own namespace."""
ZONES = {"a": "a", "b": "b", "c": "b"}
SPREAD = """instances: 4
            spread:
              - name: zone-a
                requirements:
                  zone: a
                weight: 50
              - name: zone-b
                requirements:
                  zone: b
                weight: 50"""


def counter_manifest(folder: Path, module: Path) -> Path:
    """counter.yaml with a zone spread of 4 and its HTTP link on every address."""
    text = EXAMPLE.read_text()
    for old, new in (("instances: 3", SPREAD), ("ADDRESS: 127.0.0.1:", "ADDRESS: 0.0.0.0:")):
        assert old in text, f"{EXAMPLE} no longer has {old!r}: update this test"
        text = text.replace(old, new)
    assert f":{PORT}\n" in text, f"{EXAMPLE} no longer serves port {PORT}"
    shutil.copy(module, folder / "kvcounter.wasm")  # the manifest's ./kvcounter.wasm
    path = folder / "counter.yaml"
    path.write_text(text)
    return path


def managed(host: HostProc) -> int:
    """Instances ``host`` runs for manifests, from its own inventory (0 when it is down)."""
    if not host.running:
        return 0
    inventory = host.cli("inventory", "--json").json()
    return sum(sum(a["managed"].values()) for a in inventory["actors"])


def test_a_manifest_spreads_over_namespaces_serves_http_everywhere_survives_kill_9_and_deletes(
    bridged: BridgedLattice, modules: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    started = time.monotonic()
    hosts = [
        bridged.add(name, extra_args=("--label", f"zone={zone}")) for name, zone in ZONES.items()
    ]
    a, b, c = hosts
    client = bridged.attach("client")
    bridged.wait_for(lambda: all(h.status() for h in hosts), "every host wrote its status")
    ids = {h.host_id for h in hosts}
    bridged.wait_for(
        lambda: all(h.alive_ids() == ids for h in hosts), "a, b and c see each other alive"
    )
    timings = {"formed": time.monotonic() - started}

    def spread(of: list[HostProc] = hosts) -> dict[str, int]:
        return dict(
            zip([h.name for h in of], parallel(*(lambda h=h: managed(h) for h in of)), strict=True)
        )

    def get(host: HostProc) -> dict[str, Any]:
        return bridged.http_get(
            f"http://{bridged.addresses[host.name]}:{PORT}/", timeout_s=3.0, netns=client
        )

    def answers(host: HostProc) -> bool:
        got = get(host)
        return got["status"] == 200 and json.loads(got["body"])["count"] >= 1

    def app_status(via: HostProc) -> dict[str, Any]:
        result: dict[str, Any] = via.cli("app", "status", "counter", "--json").json()
        return result

    def settled(via: HostProc, expected: dict[str, int]) -> bool:
        """`app status` on ``via`` says deployed, desired == running == ``expected`` per host."""
        result = app_status(via)
        by_id = {h.host_id: h.name for h in hosts}
        rows = {
            by_id[r["host"]]: (r["desired"], r["running"])
            for r in result["rows"]
            if r["desired"] or r["running"]
        }
        return result["state"] == "deployed" and rows == {
            name: (n, n) for name, n in expected.items() if n
        }

    # apply -> 2 on the only zone=a host, 1 on each zone=b host.
    manifest = counter_manifest(tmp_path, modules["kvcounter"][0])
    applied = a.cli("apply", str(manifest), "--json").json()
    assert (applied["app"], applied["changed"]) == ("counter", True), applied
    applied_at = time.monotonic()
    first = {"a": 2, "b": 1, "c": 1}
    bridged.wait_for(lambda: spread() == first, f"the instances run as {first}")
    timings["apply -> spread"] = time.monotonic() - applied_at
    bridged.wait_for(
        lambda: all(parallel(*(lambda h=h: answers(h) for h in hosts))),
        f"a client GETs 200 from every host's own address on port {PORT}",
    )
    timings["apply -> HTTP on all 3"] = time.monotonic() - applied_at
    for name in ZONES:
        assert ("tcp", "0.0.0.0", PORT) in bridged.sockets(name), bridged.sockets(name)
    bridged.wait_for(lambda: settled(b, first), "`app status` on b says deployed, 2/1/1")
    status = app_status(c)
    assert status["components"][0]["asked"] == 4, status
    assert (status["components"][0]["desired"], status["components"][0]["running"]) == (4, 4)

    # kill -9 c: its instance reappears on b (the other zone=b host); a and b keep serving.
    c.kill9()
    killed_at = time.monotonic()
    after_kill = {"a": 2, "b": 2}
    failures: list[tuple[str, float, dict[str, Any]]] = []
    reappeared_s: float | None = None
    rounds_after = requests = 0
    while rounds_after < 3:
        assert time.monotonic() - killed_at < 30, (
            f"c's instance did not reappear on b within 30 s: {spread([a, b])}\n"
            + bridged.diagnostics()
        )
        got = parallel(lambda: get(a), lambda: get(b), lambda: spread([a, b]))
        assert got[2]["a"] == 2, f"a lost an instance to c's death: {got[2]}"
        for host, answer in zip((a, b), got[:2], strict=True):
            requests += 1
            if answer["status"] != 200:
                failures.append((host.name, time.monotonic() - killed_at, answer))
        if reappeared_s is None and got[2] == after_kill:
            reappeared_s = time.monotonic() - killed_at
        rounds_after += reappeared_s is not None
    timings["kill -9 -> reappear"] = reappeared_s or 0.0
    assert not failures, (
        f"{len(failures)} of {requests} GETs to the survivors failed after c's kill -9: {failures}"
    )
    print(
        f"\n{requests} GETs to a and b from c's kill -9 until 3 rounds after it reappeared: all 200"
    )
    bridged.wait_for(lambda: settled(a, after_kill), "`app status` on a says deployed, 2/2")

    # c restarted on its data dir: it rejoins and takes its instance back from b.
    c.start()
    restarted_at = time.monotonic()
    bridged.wait_for(lambda: all(h.alive_ids() == ids for h in hosts), "c rejoins")
    bridged.wait_for(lambda: spread() == first, f"the instances run as {first} again")
    timings["restart -> rebalance"] = time.monotonic() - restarted_at
    bridged.wait_for(lambda: answers(c), "c answers HTTP again")
    assert answers(a) and answers(b)
    bridged.wait_for(lambda: settled(c, first), "`app status` on c says deployed, 2/1/1")

    # app delete: every instance stops, the links go, port 8088 closes everywhere.
    deleted = b.cli("app", "delete", "counter", "--json").json()
    assert deleted["app"] == "counter", deleted
    deleted_at = time.monotonic()
    bridged.wait_for(lambda: spread() == {"a": 0, "b": 0, "c": 0}, "no instance runs anywhere")
    bridged.wait_for(lambda: all(h.links() == [] for h in hosts), "no host has a link left")
    bridged.wait_for(
        lambda: not any(port == PORT for name in ZONES for _, _, port in bridged.sockets(name)),
        f"no host listens on port {PORT}",
    )
    timings["delete -> all stopped"] = time.monotonic() - deleted_at
    for host in hosts:
        assert get(host)["status"] is None, f"{host.name} still answers on port {PORT}"
    assert a.cli("app", "list", "--json").json() == []
    print("\n" + "; ".join(f"{what}: {took:.2f} s" for what, took in timings.items()))
