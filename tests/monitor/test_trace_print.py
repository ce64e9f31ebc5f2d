"""`meshhost trace` written to a pipe or a file keeps every hop's figures whole.

With no terminal there is no width to fit: rich's tree cropped each line at 80
columns, so a deep chain's host, time and offset (the point of a trace) were cut.
"""

from __future__ import annotations

import pytest

from meshhost.cli.trace import print_traces

HOST = "N" + "H" * 55


def span(i: int, parent: str) -> dict[str, object]:
    return {
        "trace_id": "ab" * 16,
        "span_id": f"{i:016x}",
        "parent_id": parent,
        "name": f"call Operation.WithALongName{i}",
        "kind": "client" if i % 2 else "server",
        "host": HOST,
        "start_ns": 10**18 + i * 1000,
        "end_ns": 10**18 + 10**6 + i * 1000,
        "status": "ok",
        "attributes": {"actor": "M" + "A" * 55},
    }


def test_a_piped_trace_keeps_every_hops_host_and_time(capsys: pytest.CaptureFixture[str]) -> None:
    spans = [span(i, f"{i - 1:016x}" if i else "") for i in range(8)]
    print_traces({"traces": [{"trace_id": "ab" * 16, "spans": spans}]})
    lines = [line for line in capsys.readouterr().out.splitlines() if "call " in line]
    assert len(lines) == 8
    for i, line in enumerate(lines):
        assert f"WithALongName{i}" in line and "1.00 ms" in line and line.endswith(" ms"), line
    assert lines[-1].rstrip() == lines[-1]


def test_a_hop_whose_host_died_since_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    dead = "N" + "D" * 55
    client = {
        **span(1, ""),
        "kind": "client",
        "attributes": {"actor": "M" + "A" * 55, "answered_by": dead},
    }
    print_traces(
        {"traces": [{"trace_id": "ab" * 16, "spans": [client]}], "hosts": [HOST], "unanswered": []}
    )
    out = capsys.readouterr().out
    assert "NDDDDDDDDDDD… answered calls of this trace but is no longer a live member" in out
