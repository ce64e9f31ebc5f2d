"""The trio side of the directory on a running host.

The :class:`~meshhost.directory.Directory` core spreads itself on SWIM
gossip (it is the membership delegate); this driver does the rest:

* drains the core's events: link puts and deletes go to this host's
  dispatcher (so a link made on any host works here), everything else
  becomes a control event (``meshhost events``);
* follows membership: a dead or departed host's state leaves the directory
  and the router forgets it; a joining host is asked for what we lack with a
  digest pull on transport channel 4 (a new host learns links and actor
  locations in one round trip instead of waiting for push-pull);
* ticks the core every second (load, tombstones, store compaction) and
  re-applies the directory's links every second, so a link a provider
  refused (an HTTP port still held by a host that just died) is retried;
* pulls from one random live peer every ``ANTI_ENTROPY_S``: gossip sends each
  change a bounded number of times, and in a small lattice a change can miss
  a host entirely (its transmissions all went on probes to another host);
  push-pull would repair that only every 15-30 s, this within a few seconds.
  A digest pull that finds nothing missing is a few dozen bytes each way;
* answers :meth:`pull_some` for the router: before a call reports that no
  host runs an actor, it asks peers what it may have missed.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from meshhost.directory.events import (
    ActorsChanged,
    ClockSkewDetected,
    ConfigChanged,
    EntryChanged,
    EntryRefused,
    Event,
    HostRemoved,
    LinkDeleted,
    LinkPut,
    PeerMisbehaved,
    StoreFailed,
)
from meshhost.directory.state import Directory
from meshhost.errors import MeshError
from meshhost.identity import short_id
from meshhost.membership import MemberAlive, MemberDead, MemberJoined, MemberLeft
from meshhost.transport import channels

__all__ = ["SYNC_CHANNEL", "DirectoryDriver"]

log = logging.getLogger(__name__)

SYNC_CHANNEL = channels.DIRECTORY_SYNC
TICK_S = 1.0
LINK_RESYNC_S = 1.0
ANTI_ENTROPY_S = 2.0
SYNC_TIMEOUT_S = 5.0
REPAIR_PEERS = 2
"""Peers a router's repair pull asks at once (one may be the dead host it just tried)."""

Send = Callable[[str, int, bytes, float], Awaitable[bytes]]
EventSink = Callable[[dict[str, Any]], None]


class LinkSink(Protocol):
    """What the driver needs of the actor host (see ``meshhost.actorhost``)."""

    async def put_link(self, link: Any) -> None: ...
    async def del_link(self, actor_id: str, contract_id: str, link_name: str) -> None: ...
    async def apply_links(self, links: list[Any]) -> None: ...


class DirectoryDriver:
    def __init__(
        self,
        directory: Directory,
        *,
        links: LinkSink,
        send: Send,
        emit: EventSink,
        load: Callable[[], float],
        forget_host: Callable[[str], None],
        live_ids: Callable[[], set[str]],
        rng: random.Random,
        on_synced: Callable[[], None] | None = None,
    ) -> None:
        self.directory = directory
        self._live_ids = live_ids
        self._rng = rng
        self._links = links
        self._send = send
        self._emit = emit
        self._load = load
        self._forget_host = forget_host
        self._nursery: trio.Nursery | None = None
        self.pulls = 0
        self.pull_failures = 0
        self.sync_bytes_sent = 0
        self.sync_bytes_received = 0
        """Bytes of digest pulls, both ways, asked and answered (monitoring)."""
        self.last_pull_at: float | None = None
        """``trio.current_time()`` of the last pull a peer answered (None: none yet)."""
        self.synced = False
        """True once a pull from a peer has been merged: this host has the lattice-wide
        state (revocations among it) it may have missed while away."""
        self.on_synced = on_synced
        """Called once, when :attr:`synced` turns True (the reconciler's wake-up)."""

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._events_loop)
            nursery.start_soon(self._tick_loop)
            task_status.started()

    async def handle_sync(self, peer_id: str, data: bytes) -> bytes:
        """Transport channel 4: answer a peer's digest with what it lacks."""
        answer = self.directory.answer_sync(data)
        self.sync_bytes_received += len(data)
        self.sync_bytes_sent += len(answer)
        return answer

    def on_member_event(self, event: object) -> None:
        if isinstance(event, MemberDead | MemberLeft):
            self.directory.forget_host(event.member.id)
            self._forget_host(event.member.id)
        elif isinstance(event, MemberJoined | MemberAlive):
            self.directory.host_alive(event.member.id)
            if isinstance(event, MemberJoined) and self._nursery is not None:
                self._nursery.start_soon(self.pull, event.member.id)

    def _peers(self) -> list[str]:
        return sorted(self._live_ids() - {self.directory.host_id})

    async def pull_some(self, timeout_s: float) -> None:
        """Pull from up to ``REPAIR_PEERS`` random live peers at once, within ``timeout_s``."""
        peers = self._peers()
        chosen = self._rng.sample(peers, min(REPAIR_PEERS, len(peers)))
        with trio.move_on_after(max(0.0, timeout_s)):
            async with trio.open_nursery() as nursery:
                for host_id in chosen:
                    nursery.start_soon(self.pull, host_id)

    async def pull(self, host_id: str) -> None:
        """Ask ``host_id`` for the directory state we lack, and merge it."""
        request = self.directory.sync_request()
        self.sync_bytes_sent += len(request)
        try:
            answer = await self._send(host_id, SYNC_CHANNEL, request, SYNC_TIMEOUT_S)
        except MeshError as exc:
            self.pull_failures += 1
            log.debug("directory pull from %s failed: %s", short_id(host_id), exc)
            return
        self.pulls += 1
        self.sync_bytes_received += len(answer)
        self.last_pull_at = trio.current_time()
        self.directory.merge_sync_answer(host_id, answer)
        if not self.synced:
            self.synced = True
            if self.on_synced is not None:
                self.on_synced()

    async def _events_loop(self) -> None:
        wake = trio.Event()
        self.directory.on_event = wake.set
        try:
            while True:
                while (event := self.directory.next_event()) is not None:
                    try:
                        await self._apply(event)
                    except Exception:  # one bad event must not end the host's directory
                        log.exception("directory: applying %s failed", type(event).__name__)
                await wake.wait()
                wake = trio.Event()
                self.directory.on_event = wake.set
        finally:
            self.directory.on_event = None

    async def _apply(self, event: Event) -> None:
        if isinstance(event, LinkPut):
            await self._links.put_link(event.link)
            self._emit({"kind": "link_put", **_link_fields(event.link)})
        elif isinstance(event, LinkDeleted):
            await self._links.del_link(event.actor_id, event.contract_id, event.link_name)
            self._emit(
                {
                    "kind": "link_deleted",
                    "actor": event.actor_id,
                    "contract": event.contract_id,
                    "link_name": event.link_name,
                }
            )
        elif isinstance(event, ConfigChanged):
            self._emit(
                {"kind": "config_changed", "key": event.name, "deleted": event.value is None}
            )
        elif isinstance(event, ActorsChanged) and event.host_id != self.directory.host_id:
            self._emit({"kind": "actors_changed", "host": event.host_id})
        elif isinstance(event, HostRemoved):
            self._emit({"kind": "host_state_removed", "host": event.host_id})
        elif isinstance(event, EntryChanged):
            self._emit(
                {
                    "kind": "entry_changed",
                    "ns": event.ns,
                    "key": event.key,
                    "deleted": event.value is None,
                }
            )
        elif isinstance(event, EntryRefused):
            log.warning(
                "directory: %d entries passed on by %s refused (first %s/%s, written "
                "by %s): no valid operator signature or role",
                event.count,
                short_id(event.sender_id),
                event.ns,
                event.key,
                short_id(event.writer),
            )
        elif isinstance(event, PeerMisbehaved):
            log.warning(
                "directory message from %s dropped: %s", short_id(event.sender_id), event.reason
            )
        elif isinstance(event, StoreFailed):
            log.error("directory: %s", event.reason)
        elif isinstance(event, ClockSkewDetected):
            log.warning(
                "host %s writes stamps %d ms in our future (via %s); check its clock",
                short_id(event.writer),
                event.ahead_ms,
                short_id(event.sender_id),
            )

    async def _tick_loop(self) -> None:
        cores = os.cpu_count() or 1
        next_resync = trio.current_time() + LINK_RESYNC_S
        next_pull = trio.current_time() + ANTI_ENTROPY_S
        while True:
            await trio.sleep(TICK_S)
            try:
                self.directory.set_load(round(self._load() / cores, 3))
                self.directory.tick()
            except Exception:  # tried again at the next tick; the host keeps running
                log.exception("directory: a periodic tick failed")
            if trio.current_time() >= next_pull and self._nursery is not None:
                next_pull = trio.current_time() + ANTI_ENTROPY_S
                peers = self._peers()
                if peers:
                    self._nursery.start_soon(self.pull, self._rng.choice(peers))
            if trio.current_time() >= next_resync:
                next_resync = trio.current_time() + LINK_RESYNC_S
                try:
                    await self._links.apply_links(self.directory.links())
                except Exception:  # retried at the next resync; the host keeps running
                    log.exception("directory: re-applying links failed")


def _link_fields(link: Any) -> dict[str, Any]:
    return {
        "actor": link.actor_id,
        "contract": link.contract_id,
        "link_name": link.link_name,
        "provider": link.provider_id,
    }
