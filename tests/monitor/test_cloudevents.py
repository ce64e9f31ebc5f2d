"""Lattice events as CloudEvents 1.0: the vectors, and `meshhost events --format cloudevents`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio

from meshhost.monitor.cloudevents import to_cloudevent
from meshhost.testing import Member, client, make_host

VECTORS = json.loads((Path(__file__).parents[2] / "proto" / "vectors" / "rpc.json").read_text())[
    "cloudevents"
]
REQUIRED = {"specversion", "type", "source", "id", "time", "datacontenttype"}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_each_event_becomes_the_cloudevent_of_the_vector(vector: dict) -> None:
    made = to_cloudevent(vector["event"], source=vector["source"], event_id=vector["id"])
    assert made == vector["cloudevent"]
    assert REQUIRED <= made.keys() and made["specversion"] == "1.0"


async def test_meshhost_events_prints_cloudevents_of_a_running_host(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        member = Member(make_host(tmp_path, 0))
        await nursery.start(member.run)
        actor = "MB2ZQB6ZYZZBH5SLPJ7KXA5E2ZV3L3QPVM4GPGKN2EYAXJ5RWFOPHQZO"
        argv = [
            sys.executable,
            "-m",
            "meshhost",
            "events",
            "--format",
            "cloudevents",
            "--data-dir",
            str(member.host.data_dir),
        ]
        process = await trio.lowlevel.open_process(argv, stdout=-1)
        assert process.stdout is not None
        try:
            lines: list[dict] = []
            buffer = b""
            with trio.fail_after(30):
                while not any(e["type"].endswith("linkdef_set") for e in lines):
                    # the CLI takes a moment to subscribe: write until its line comes
                    await client(member.host).request(
                        "link_put", actor=actor, contract="wasmcloud:keyvalue"
                    )
                    with trio.move_on_after(1):
                        buffer += await process.stdout.receive_some()
                    *done, buffer = buffer.split(b"\n")
                    lines += [json.loads(line) for line in done if line]
        finally:
            process.kill()
            await process.wait()
        event = next(e for e in lines if e["type"] == "com.wasmcloud.lattice.linkdef_set")
        assert event["source"] == member.host.host_id
        assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
        assert event["data"]["actor"] == actor and event["time"].endswith("Z")
        assert len({e["id"] for e in lines}) == len(lines)
        nursery.cancel_scope.cancel()
