"""The trio side of the leaderless reconciler on a running host.

Feeds the sans-IO :class:`~meshhost.apps.reconciler.Reconciler` what this
host knows (deployed manifests and manifest-owned links from the directory,
members with labels from membership, the instances this host runs for
manifests) whenever any of it may have changed, and carries out the actions
it returns: start or stop this host's share of instances, and write or
delete application links in the directory.

Modules: a component names its image by path and SHA-256.  The host looks in
its own module store first, then reads the image path (the manifest was
applied on this machine, or a shared file system), then asks peers for the
module by digest (peer op ``module_get`` on transport channel 5): the host where
the manifest was applied always has it.

Join gate: the reconciler plans nothing until membership has settled, so a
freshly started host that sees only itself does not start every instance of
every application on itself: members are handed over once another host is
alive and this host has pulled the lattice-wide state from a peer (so a
revocation or issuer policy made while it was away is known before it starts
anything; at most ``SYNC_WAIT_S``), or after ``JOIN_GRACE_S`` for a lattice
of one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import trio

from meshhost.apps.model import Manifest
from meshhost.apps.placement import HostView, LinkSpec, Workload, host_views
from meshhost.apps.plan import Action, DeleteLink, PutLink, StartActor, StopActor
from meshhost.apps.reconciler import Reconciler, ReconcilerConfig
from meshhost.apps.store import (
    DEPLOYMENTS_NS,
    LINKS_NS,
    MANIFESTS_NS,
    decode_link,
    deployed_manifests,
    deployed_names,
    encode_link,
    link_record_key,
)
from meshhost.capabilities import LinkDefinition
from meshhost.errors import MeshError, StoredManifestInvalid
from meshhost.identity import short_id
from meshhost.modstore import sha256_hex
from meshhost.rpc import peer

if TYPE_CHECKING:
    from meshhost.actorhost import ActorHost
    from meshhost.directory import Directory

__all__ = ["JOIN_GRACE_S", "SYNC_WAIT_S", "ReconcileDriver"]

log = logging.getLogger(__name__)

JOIN_GRACE_S = 3.0
"""A host alone this long after starting plans for a lattice of one."""
SYNC_WAIT_S = 15.0
"""A host that sees peers waits for its first directory pull (the lattice-wide state:
revocations, issuer policy) before planning; past this it plans with what it has (the
security state is enforced again whenever it changes)."""
FETCH_TIMEOUT_S = 30.0
MAX_FETCH_PEERS = 8
"""Peers asked for a module before the start counts as failed (and backs off)."""
CONTROL_PREFIX = "control."
RETRY_S = 1.0
"""Pause after a reconcile round failed unexpectedly (a bug), before the next one."""

Send = Callable[[str, int, bytes, float], Awaitable[bytes]]
EventSink = Callable[[dict[str, Any]], None]


class ReconcileDriver:
    def __init__(
        self,
        host_id: str,
        directory: Directory,
        actors: ActorHost,
        *,
        members: Callable[[], list[Any]],
        live_ids: Callable[[], set[str]],
        send: Send,
        emit: EventSink,
        config: ReconcilerConfig | None = None,
        synced: Callable[[], bool] = lambda: True,
    ) -> None:
        self.host_id = host_id
        self.directory = directory
        self.actors = actors
        self._members = members
        self._live_ids = live_ids
        self._send = send
        self._emit = emit
        self._synced = synced
        self.reconciler = Reconciler(host_id, config)
        self._wake = trio.Event()
        self._started = 0.0
        self._joined = False
        self.problems: list[str] = []
        """Why deployed applications cannot be reconciled here now (for status)."""
        self.actions_done = 0
        self.actions_failed = 0
        self.rounds_failed = 0
        self._failures: dict[str, str] = {}

    @property
    def joined(self) -> bool:
        """True once this host plans placements (see the join gate in the module doc)."""
        return self._joined

    # -- inputs ------------------------------------------------------------------

    def poke(self) -> None:
        """Something the plan depends on may have changed; look again soon."""
        self._wake.set()

    def on_member_event(self, event: object) -> None:
        self.poke()

    def on_directory_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "entry_changed" and str(event.get("ns", "")).startswith(
            CONTROL_PREFIX
        ):
            self.poke()
        elif event.get("kind") in ("host_state_removed", "actors_changed"):
            self.poke()

    def views(self) -> list[HostView]:
        """This host's membership view with labels, as placement sees it."""
        return host_views(self._members(), self.directory.host_labels())

    def deployed(self) -> tuple[list[Manifest], list[str]]:
        return deployed_manifests(
            _bytes_items(self.directory.items(MANIFESTS_NS)),
            _bytes_items(self.directory.items(DEPLOYMENTS_NS)),
        )

    def _managed_links(self) -> list[LinkSpec]:
        links = []
        for key, value in self.directory.items(LINKS_NS):
            try:
                links.append(decode_link(value if isinstance(value, bytes) else b""))
            except StoredManifestInvalid as exc:
                log.warning("ignoring application link record %r: %s", key, exc)
        return links

    def _update(self, now: float) -> None:
        manifests, problems = self.deployed()
        readable = {m.name for m in manifests}
        keep = deployed_names(_bytes_items(self.directory.items(DEPLOYMENTS_NS))) - readable
        if problems != self.problems:
            for problem in problems:
                log.info("reconcile: %s", problem)
        self.problems = problems
        if not self._joined:
            alone = self._live_ids() <= {self.host_id}
            if (alone and now >= self._started + JOIN_GRACE_S) or (
                not alone and (self._synced() or now >= self._started + SYNC_WAIT_S)
            ):
                self._joined = True
        self.reconciler.update(
            now,
            manifests=manifests,
            members=self.views() if self._joined else None,
            running=self.actors.managed_running(),
            managed_links=self._managed_links(),
            keep_links_of=keep,
        )

    # -- the loop -------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._started = trio.current_time()
        task_status.started()
        next_update = self._started
        while True:
            try:
                next_update = await self._round(next_update)
            except Exception:  # a bug must neither end this host's reconciling nor spin
                self.rounds_failed += 1
                log.exception("reconcile: a round failed; trying again in %g s", RETRY_S)
                await trio.sleep(RETRY_S)
                next_update = trio.current_time()

    async def _round(self, next_update: float) -> float:
        """Update the desired state when due, carry out due actions or wait; returns
        when the desired state is next due for an update."""
        now = trio.current_time()
        if now >= next_update or self._wake.is_set():
            self._wake = trio.Event()
            self._update(now)
            # until joined, look again at the end of the grace period
            next_update = now + (JOIN_GRACE_S if not self._joined else float("inf"))
        timer = self.reconciler.get_timer()
        if timer is not None and timer <= now:
            actions = self.reconciler.handle_timer(now)
            for action in actions:
                await self._carry_out(action)
            if any(isinstance(a, StartActor | StopActor) for a in actions):
                self.reconciler.update(trio.current_time(), running=self.actors.managed_running())
            return next_update
        wake_at = min(t for t in (timer, next_update) if t is not None)
        with trio.move_on_at(wake_at):
            await self._wake.wait()
        return next_update

    async def _carry_out(self, action: Action) -> None:
        try:
            if isinstance(action, StartActor):
                await self._start(action.workload, action.count)
            elif isinstance(action, StopActor):
                await self._stop(action.key, action.count)
            elif isinstance(action, PutLink):
                self._put_link(action.link)
            elif isinstance(action, DeleteLink):
                self._delete_link(action.link)
            self.actions_done += 1
        except Exception as exc:  # one failed action must not end this host's reconciling
            if not isinstance(exc, MeshError):
                log.exception("reconcile: %s failed unexpectedly", _describe(action))
            self.actions_failed += 1
            if isinstance(action, StartActor):
                self.reconciler.start_failed(action.key, trio.current_time())
            what = _describe(action)
            if self._failures.get(what) != str(exc):  # say it once, not at every resync
                self._failures[what] = str(exc)
                log.warning("reconcile: %s failed: %s", what, exc)
                self._emit({"kind": "reconcile_failed", "action": what, "reason": str(exc)})
        else:
            self._failures.pop(_describe(action), None)

    async def _start(self, workload: Workload, count: int) -> None:
        module = await self._module(workload)
        await self.actors.start(
            module,
            count,
            managed_key=workload.key,
            limits=dict(workload.limits) if workload.limits else None,
        )
        self.reconciler.start_succeeded(workload.key)
        log.info("reconcile: started %d x %s", count, workload.key)

    async def _stop(self, key: str, count: int) -> None:
        actor_id = self.actors.actor_of_managed(key)
        if actor_id is None:
            return
        await self.actors.stop(actor_id, count, managed_key=key)
        log.info("reconcile: stopped %d x %s", count, key)

    def _put_link(self, spec: LinkSpec) -> None:
        if spec.actor_id is None:
            raise StoredManifestInvalid(
                f"application {spec.app!r} links {spec.source!r} without knowing its actor id"
            )
        self.directory.put_link(
            LinkDefinition(spec.actor_id, spec.contract_id, spec.link_name, "", dict(spec.values))
        )
        self.directory.put(LINKS_NS, link_record_key(spec), encode_link(spec))

    def _delete_link(self, spec: LinkSpec) -> None:
        if spec.actor_id is not None:
            self.directory.delete_link(spec.actor_id, spec.contract_id, spec.link_name)
        self.directory.delete(LINKS_NS, link_record_key(spec))

    # -- modules -------------------------------------------------------------------

    async def _module(self, workload: Workload) -> bytes:
        digest = workload.sha256
        if digest is not None:
            module = await trio.to_thread.run_sync(self.actors.modules.get, digest)
            if module is not None:
                return module
        module = await trio.to_thread.run_sync(_read_image, workload.image)
        if module is not None and (digest is None or sha256_hex(module) == digest):
            return module
        if digest is None:
            raise StoredManifestInvalid(
                f"{workload.key}: image {workload.image} is not readable here and the "
                "manifest has no digest to fetch it by"
            )
        return await self._fetch(workload, digest)

    async def _fetch(self, workload: Workload, digest: str) -> bytes:
        peers = [loc.host_id for loc in self.directory.hosts_running(workload.actor_id or "")]
        peers += sorted(self._live_ids())
        tried: list[str] = []
        for host_id in dict.fromkeys(peers):
            if host_id == self.host_id or len(tried) >= MAX_FETCH_PEERS:
                continue
            tried.append(host_id)
            try:
                module = await peer.request(
                    self._send, host_id, "module_get", {"sha256": digest}, FETCH_TIMEOUT_S
                )
            except MeshError as exc:
                log.debug("module %s not from %s: %s", digest[:12], short_id(host_id), exc)
                continue
            if isinstance(module, bytes) and sha256_hex(module) == digest:
                await trio.to_thread.run_sync(self.actors.modules.put, module)
                return module
        raise StoredManifestInvalid(
            f"{workload.key}: module {digest[:16]}… is not in this host's store, "
            f"{workload.image} is not readable here, and {len(tried)} peer(s) did not have it; "
            "run `meshhost apply` again where the image is readable"
        )


def _read_image(image: str) -> bytes | None:
    path = Path(unquote(urlparse(image).path)) if image.startswith("file:") else Path(image)
    try:
        return path.read_bytes()
    except OSError:
        return None


def _bytes_items(items: list[tuple[str, Any]]) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in items if isinstance(v, bytes)]


def _describe(action: Action) -> str:
    if isinstance(action, StartActor):
        return f"start {action.count} x {action.key}"
    if isinstance(action, StopActor):
        return f"stop {action.count} x {action.key}"
    verb = "put" if isinstance(action, PutLink) else "delete"
    link = action.link
    return f"{verb} link {link.source} -> {link.contract_id} ({link.link_name})"
