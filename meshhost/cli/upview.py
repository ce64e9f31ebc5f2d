"""How ``meshhost up`` shows what happens: one line (or JSON object) per event.

:func:`report` turns a host event (a member joined, died or left, a peer
misbehaved, an actor, link, config or application change, trouble joining)
into a line through :func:`say`, which honours the ``-v``/``-q`` verbosity,
the host prefix of ``--processes`` and ``--json``, all kept in :data:`VIEW`
for the run. Lines about misbehaving peers are rate-limited.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from rich.markup import escape

from meshhost.cli.logs import Verbosity
from meshhost.cli.output import silence_stdout, stdout
from meshhost.membership import (
    MemberAlive,
    MemberDead,
    MemberJoined,
    MemberLeft,
    MemberSuspect,
    MemberUpdated,
    PeerMisbehaved,
)

_KIND = {
    MemberJoined: ("joined", "green"),
    MemberAlive: ("alive", "green"),
    MemberSuspect: ("suspect", "yellow"),
    MemberDead: ("dead", "red"),
    MemberLeft: ("left", "blue"),
    MemberUpdated: ("updated", "cyan"),
}


class Budget:
    """At most ``limit`` lines per ``window_s``; the rest are only counted."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self.window_start, self.used, self.suppressed = -float("inf"), 0, 0

    def allow(self, now: float) -> bool:
        if now - self.window_start >= self.window_s:
            self.window_start, self.used = now, 0
        self.used += 1
        if self.used > self.limit:
            self.suppressed += 1
            return False
        return True


MISBEHAVED_LINES = Budget(limit=10, window_s=10.0)
"""A peer spraying garbage must not flood the terminal; counters keep the total."""


def report(event: object, as_json: bool) -> None:
    """Show one event of the host (membership, directory, application, join trouble)."""
    if isinstance(event, dict) and event.get("kind") == "join_trouble":
        reason = str(event.get("reason", ""))
        say(
            as_json,
            {"event": "join_trouble", "reason": reason},
            f"[yellow]no peer yet:[/] {escape(reason)}",
        )
        return
    if isinstance(event, dict):  # actor, link, config and application events
        kind = str(event.get("kind", "event"))
        details = " ".join(f"{k}={v}" for k, v in sorted(event.items()) if k != "kind")
        say(as_json, {"event": kind, **event}, f"[cyan]{kind:8}[/] {escape(details)}")
        return
    if isinstance(event, PeerMisbehaved):
        if not MISBEHAVED_LINES.allow(time.monotonic()):
            return
        say(
            as_json,
            {
                "event": "misbehaved",
                "addr": f"{event.addr[0]}:{event.addr[1]}",
                "reason": event.reason,
            },
            f"[magenta]misbehaved[/] {event.addr[0]}:{event.addr[1]} {escape(str(event.reason))}",
        )
        return
    kind, colour = _KIND.get(type(event), ("event", "white"))
    member = getattr(event, "member", None)
    if member is None:
        return
    from meshhost.host import decode_meta

    labels = decode_meta(member.meta).get("labels", {})
    addr = f"{member.addr[0]}:{member.addr[1]}"
    record = {
        "event": kind,
        "id": member.id,
        "addr": addr,
        "state": member.state.name.lower(),
        "incarnation": member.incarnation,
        "labels": labels,
    }
    shown = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    text = f"[{colour}]{kind:8}[/] {escape(member.id)} {escape(addr)} {escape(shown)}"
    say(as_json, record, text.rstrip())


class View:
    """How ``up`` shows events: set by ``up`` for its run (direct callers of
    ``report`` in tests get every event, unprefixed)."""

    def __init__(self) -> None:
        self.verbosity = Verbosity(host_level=0)  # everything
        self.prefix = ""
        self.host_id = ""


VIEW = View()


def say(as_json: bool, record: dict[str, Any], text: str) -> None:
    """Show one event: a JSON line (``as_json``) or ``text``, as :data:`VIEW` says."""
    if not VIEW.verbosity.shows_event(str(record.get("event", ""))):
        return
    if as_json:
        record = {"time": round(time.time(), 3), **record}
        if VIEW.host_id:
            record.setdefault("host", VIEW.host_id)
        try:
            sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()  # the host goes on; only its reader is gone
    else:
        stdout.print(f"{VIEW.prefix} {text}" if VIEW.prefix else text, highlight=False)
