"""The dashboard's lattice state against a host that stalls: it shows membership as it is.

A stopped (SIGSTOP) peer holds each rebuild for up to PEER_TIMEOUT_S while
its snapshot is asked for; that is exactly when it turns suspect.  The state
must show the membership after the asking, not before it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import trio
import trio.testing

from meshhost.monitor import dashboard

A, B = "N" + "A" * 55, "N" + "B" * 55


class StallingHost:
    """Just what gather_state reads: two members; asking B stalls, and B turns suspect."""

    def __init__(self) -> None:
        self.host_id = A
        self.monitor = self.directory = self.app_ops = None
        self.config = SimpleNamespace(lattice="t")
        self.states = {A: "alive", B: "alive"}

    def status(self) -> dict[str, Any]:
        return {
            "members": [
                {"id": i, "addr": "127.0.0.1:1", "state": s, "incarnation": 1, "labels": {}}
                for i, s in self.states.items()
            ]
        }

    async def control_request(self, host_id: str, *_: Any) -> Any:
        await trio.sleep(0.5)
        self.states[host_id] = "suspect"  # detected while we waited for its answer
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover


async def test_the_state_shows_a_host_that_turned_suspect_while_it_was_asked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    state = await dashboard.gather_state(StallingHost())  # type: ignore[arg-type]
    b = next(h for h in state["hosts"] if h["id"] == B)
    assert (b["state"], b["reachable"]) == ("suspect", False)
