"""The caller's actor lookup reuses its candidates only while they are still true."""

from __future__ import annotations

from pathlib import Path

import trio

from meshhost.testing import make_host, signed_example, wait_until


async def test_cached_candidates_follow_liveness_and_the_directory(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        host = make_host(tmp_path, 0)
        await nursery.start(host.serve)
        echo, echo_id = signed_example("echo")
        await host.actors.start(echo)
        await wait_until(lambda: bool(host.directory.hosts_running(echo_id)), "echo listed")
        actors = host.actors
        first = actors._locate(echo_id)
        assert first == (echo_id, [(host.host_id, 1, first[1][0].load, True)])
        assert actors._locate(echo_id)[1] is first[1]  # reused: nothing changed
        live = actors._is_live
        actors._is_live = lambda host_id: False  # membership: the host is gone
        assert [p.alive for p in actors._locate(echo_id)[1]] == [False]
        actors._is_live = live
        assert [p.alive for p in actors._locate(echo_id)[1]] == [True]
        await actors.scale(echo_id, 2)  # the directory's locations change
        await wait_until(lambda: actors._locate(echo_id)[1][0].instances == 2, "2 instances")
        assert await actors.invoke(echo_id, "Echo", b"hi") == b"hi"
        nursery.cancel_scope.cancel()
