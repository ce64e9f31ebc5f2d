"""Monitored hosts: `meshhost up --metrics` processes scraped and parsed with
prometheus_client.parser, and one in-process monitored host (:func:`lone_host`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import trio
from prometheus_client.parser import text_string_to_metric_families

from meshhost.control.api import ControlClient
from meshhost.datadir import CONTROL_SOCKET
from meshhost.host import Host, HostOptions
from meshhost.testing import host_address, make_host
from tests.lattice.processes.proc_lattice import HostProc, ProcLattice

METRICS_ARGS = ("--metrics", "127.0.0.1:0")


def start_monitored(lattice: ProcLattice, *names: str) -> list[HostProc]:
    """Hosts serving /metrics on a free loopback port; waits until all see each other."""
    hosts = [lattice.add(name, extra_args=METRICS_ARGS) for name in names]
    lattice.wait_for(
        lambda: all(h.status() and h.status()["metrics_addr"] for h in hosts),
        "every host wrote its status with its metrics address",
    )
    ids = {h.host_id for h in hosts}
    lattice.wait_for(
        lambda: all(h.alive_ids() == ids for h in hosts),
        f"each of {', '.join(names)} sees all of them alive",
    )
    return hosts


def metrics_url(host: HostProc, path: str = "/metrics") -> str:
    status = host.status()
    assert status is not None and status["metrics_addr"], host.log_tail()
    address, port = status["metrics_addr"]
    return f"http://{address}:{port}{path}"


class Scrape:
    """One parsed /metrics page: ``value(name, **labels)`` sums the matching samples."""

    def __init__(self, text: str) -> None:
        self.samples = [
            s for family in text_string_to_metric_families(text) for s in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.samples if s.name == name and _matches(s.labels, labels))

    def names(self) -> set[str]:
        return {s.name for s in self.samples}


def _matches(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(have.get(k) == v for k, v in want.items())


def scrape(lattice: ProcLattice, host: HostProc) -> Scrape:
    answer = lattice.http_get(metrics_url(host), timeout_s=10)
    assert answer["status"] == 200, answer
    return Scrape(answer["body"])


def control_calls(
    host: HostProc, actor: str, operation: str, payload: bytes, count: int
) -> list[object]:
    """``count`` calls through ``host``'s control socket, back to back (faster than the CLI):
    each result's answering host id, or the ControlError it raised."""
    client = ControlClient(host.data_dir / CONTROL_SOCKET)

    async def run() -> list[object]:
        out: list[object] = []
        for _ in range(count):
            try:
                reply = await client.request(
                    "call", actor=actor, operation=operation, payload=payload, timeout_ms=5000
                )
                out.append(reply["host"])
            except Exception as exc:
                out.append(exc)
        return out

    return trio.run(run)


def lone_host(tmp: Path, *, seeds: tuple[str, ...] = (), monitor: bool = True) -> Host:
    """One host of lattice ``mon`` on 127.0.0.71, counting (and serving /metrics) if ``monitor``."""
    metrics = (host_address(51), 0) if monitor else None
    options = HostOptions(monitor=monitor, metrics_address=metrics)
    return make_host(tmp, 51, seeds=seeds, lattice="mon", options=options)


async def http_get(addr: tuple[str, int], path: str) -> tuple[int, bytes]:
    stream = await trio.open_tcp_stream(*addr)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
