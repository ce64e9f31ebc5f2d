"""A call that crosses three hosts is one trace, put together by `meshhost trace` from every host.

Host c's CLI calls actor ``front`` on host a; front calls actor ``back`` on
host b; back calls the key-value provider on b.  Every host keeps only its
own spans; ``meshhost trace`` (run against c) gathers them over the lattice.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
import trio

from meshhost.monitor.spans import span_from_dict
from meshhost.monitor.tracing import build_tree
from meshhost.testing import client, start_lattice, wait_until
from tests.capabilities.caps_actor import caps_actor, frame

KEYVALUE = "wasmcloud:keyvalue"
pytestmark = pytest.mark.slow


async def meshhost_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    done = await trio.run_process(
        [sys.executable, "-m", "meshhost", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr.decode()
    return done


async def test_a_call_across_three_hosts_is_one_tree_from_meshhost_trace(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a, b, c = await start_lattice(nursery, tmp_path, 3)
        front, front_id = caps_actor("front", ())
        back, back_id = caps_actor("back", (KEYVALUE,))
        await client(a.host).request("start", module=front)
        await client(b.host).request("start", module=back)
        await client(c.host).request("link_put", actor=front_id, contract=back_id)
        await client(c.host).request("link_put", actor=back_id, contract=KEYVALUE)
        await wait_until(
            lambda: (
                bool(c.host.directory.hosts_running(front_id))
                and bool(a.host.directory.hosts_running(back_id))
                and a.host.actors.dispatcher.links.get(front_id, back_id, "default") is not None
                and b.host.actors.dispatcher.links.get(back_id, KEYVALUE, "default") is not None
            ),
            "actors and links known everywhere",
        )
        inner = frame(
            "default",
            KEYVALUE,
            "KeyValue.Set",
            msgpack.packb({"key": "k", "value": "v", "expires": 0}),
        )
        request = frame("default", back_id, "call", inner)
        answer = await client(c.host).request(
            "call", actor=front_id, operation="call", payload=request, timeout_ms=10_000
        )
        trace_id = answer["trace_id"]
        assert len(trace_id) == 32

        data_dir = str(c.host.data_dir)
        done = await meshhost_cli("trace", trace_id, "--json", "--data-dir", data_dir)
        result = json.loads(done.stdout)
        assert result["unanswered"] == []
        (entry,) = result["traces"]
        spans = [span_from_dict(s) for s in entry["spans"]]
        (root,) = build_tree(spans)  # one tree: every span hangs under the CLI's call
        chain = []
        node = root
        while True:
            attrs = dict(node.span.attributes)
            chain.append((node.span.kind, node.span.host, node.span.name, attrs.get("actor")))
            if not node.children:
                break
            (node,) = node.children
        ha, hb, hc = a.host.host_id, b.host.host_id, c.host.host_id
        assert chain == [
            ("client", hc, "call call", front_id),  # the CLI's call, from c
            ("server", ha, "front call", front_id),  # front ran on a
            ("client", ha, "call call", back_id),  # front called back
            ("server", hb, "back call", back_id),  # back ran on b
            ("internal", hb, "wasmcloud:keyvalue KeyValue.Set", back_id),  # the provider on b
        ], chain
        for parent, child in itertools.pairwise(spans):
            assert child.start_ns >= parent.start_ns  # oldest first
        assert all(s.trace_id.hex() == trace_id and s.status == "ok" for s in spans)

        # The tree for people: every hop with its host, and `call --trace` prints the same.
        text = (await meshhost_cli("trace", trace_id, "--data-dir", data_dir)).stdout.decode()
        for host in (ha, hb, hc):
            assert f"on {host[:8]}" in text, text
        assert "wasmcloud:keyvalue KeyValue.Set" in text and "5 spans on 3 hosts" in text
        payload_file = tmp_path / "request.bin"
        payload_file.write_bytes(request)
        done = await meshhost_cli(
            "call",
            front_id,
            "call",
            f"@{payload_file}",
            "--trace",
            "--json",
            "--data-dir",
            data_dir,
        )
        traced = json.loads(done.stdout)
        assert len(traced["trace"]["traces"][0]["spans"]) == 5
        last = json.loads(
            (await meshhost_cli("trace", "--last", "1", "--json", "--data-dir", data_dir)).stdout
        )
        assert [t["trace_id"] for t in last["traces"]] == [traced["trace_id"]]
        nursery.cancel_scope.cancel()
