"""A failed call's spans say how it failed; `call` continues a caller's traceparent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio

from meshhost.control.api import ControlError
from meshhost.testing import Member, client, make_host, signed_example

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


async def test_spans_record_failures_and_an_explicit_traceparent(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        member = Member(make_host(tmp_path, 0))
        await nursery.start(member.run)
        control = client(member.host)
        echo, echo_id = signed_example("echo")
        await control.request("start", module=echo)
        answer = await control.request(
            "call",
            actor=echo_id,
            operation="Echo",
            payload=b"x",
            traceparent=f"00-{TRACE}-{PARENT}-01",
        )
        assert answer["trace_id"] == TRACE
        (entry,) = (await control.request("trace", trace_id=TRACE))["traces"]
        (root,) = [s for s in entry["spans"] if s["kind"] == "client"]
        assert root["parent_id"] == PARENT and root["status"] == "ok"

        missing = "M" + "A" * 55
        with pytest.raises(ControlError):
            await control.request("call", actor=missing, operation="Echo", timeout_ms=500)
        recent = await control.request("trace", last=1)
        (failed,) = recent["traces"][0]["spans"]
        assert failed["kind"] == "client" and failed["status"] == "not_found", failed
        assert failed["attributes"]["actor"] == missing

        with pytest.raises(ControlError, match="trace id"):
            await control.request("trace", trace_id="not-hex")
        with pytest.raises(ControlError, match="traceparent"):
            await control.request("call", actor=echo_id, operation="Echo", traceparent=7)
        nursery.cancel_scope.cancel()


async def test_call_trace_prints_the_trace_of_a_failed_call_too(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        member = Member(make_host(tmp_path, 0))
        await nursery.start(member.run)
        missing = "M" + "A" * 55
        done = await trio.run_process(
            [
                sys.executable,
                "-m",
                "meshhost",
                "call",
                missing,
                "Echo",
                "--trace",
                "--timeout",
                "0.5",
                "--json",
                "--data-dir",
                str(member.host.data_dir),
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert done.returncode == 1 and b"error:" in done.stderr
        traced = json.loads(done.stdout)
        (entry,) = traced["trace"]["traces"]
        (span,) = entry["spans"]
        assert entry["trace_id"] == traced["trace_id"] and span["status"] == "not_found"
        nursery.cancel_scope.cancel()
