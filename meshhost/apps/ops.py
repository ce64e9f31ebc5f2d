"""Host-side handlers of the application control ops (``meshhost apply`` / ``app ...``).

One :class:`AppOps` per host answers ``apply``, ``app_list``, ``app_get``,
``app_status``, ``app_delete`` and ``app_diff`` (proto/spec/rpc.md,
"Control"; user guide in docs/manifests.md). It reads and writes the
``control.*`` namespaces of the lattice-wide directory through the pure
functions of :mod:`meshhost.apps.store`; the reconcilers of every host
then pick the change up from the directory. Nothing here imports trio or the
host: what it needs comes in through the constructor.

Contracts of the injected callables:

* ``members()`` — this host's membership view as placement
  :class:`~meshhost.apps.placement.HostView` s (id, labels, state), e.g.
  ``placement.host_views(swim_members, directory.host_labels())``. Dead and
  left members may be included; placement ignores them. It must be the same
  view the reconciler uses, so ``app status`` shows what hosts act on.
* ``running()`` — managed instances as ``{host_id: {component_key:
  count}}``, where ``component_key`` is the key
  :func:`~meshhost.apps.placement.component_key` makes
  (``app/component@<16 hex of the module sha256>``), the same keys the
  placement and the reconciler (``Reconciler.update(running=...)``) use.
  Give exact counts for the hosts you know exactly (at least this host:
  what its reconciler is told it runs); a host in the result replaces what
  is derived for it, keys with nothing running may be left out. Every host
  it leaves out (all of them when ``running`` is not given) is derived from
  the directory's per-host actor records by :func:`running_from_directory`
  (exact while each actor id belongs to one component key; see there).
* ``store_module(sha256_hex, module)`` — keep an actor module in the
  host's content-addressed store; called by ``apply`` for every module the
  client sent, after checking that the bytes hash to the key, and before
  anything is written to the directory (a reconciler that sees the
  manifest may need the module at once).
* ``has_module(sha256_hex)`` — True when the host already stores that module,
  so a client may leave it out of ``modules`` (default: never).
* ``inspect_image(module)`` — the ``M…`` subject of a module's claims
  (``manifest.actor_id_from_claims``); when given, ``apply`` checks that
  every sent module is the actor its component names.

Every method takes the op's msgpack-decoded ``args`` mapping, validates each
argument (a wrong type or an unknown argument is
:class:`~meshhost.errors.ControlArgumentError`, wire code ``invalid``),
and returns plain data (dicts, lists, text, ints, bytes) ready for msgpack
and JSON. Errors are :class:`~meshhost.errors.MeshError` s whose ``code`` is
the wire code: ``invalid`` (bad arguments, bad manifest, digest mismatch,
version conflict), ``not_found`` (no such application or version),
``too_large``, ``unavailable`` (``store_module`` raised OSError).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from meshhost.apps.manifest import decode_manifest
from meshhost.apps.model import ComponentType, Manifest, ScalerKind
from meshhost.apps.placement import (
    HostView,
    LinkSpec,
    Placement,
    Workload,
    compute_placement,
    link_specs,
)
from meshhost.apps.status import diff, placement_diff, status
from meshhost.apps.store import (
    DEPLOYMENTS_NS,
    LINKS_NS,
    MANIFESTS_NS,
    DirectoryDelete,
    DirectoryPut,
    DirectoryWrite,
    app_summaries,
    apply_writes,
    decode_link,
    delete_writes,
    deployed_manifests,
    link_record_key,
    manifest_key,
)
from meshhost.errors import (
    ControlArgumentError,
    LinksWouldBeReplaced,
    ManifestNotFound,
    ManifestVersionConflict,
    MeshError,
    ModuleStoreFailed,
    StoredManifestInvalid,
    UnknownControlOp,
)

if TYPE_CHECKING:
    from meshhost.directory import Directory

__all__ = [
    "APP_OPS",
    "MAX_ARG_CHARS",
    "MAX_SOURCE_CHARS",
    "AppOps",
    "running_from_directory",
]

APP_OPS = ("apply", "app_list", "app_get", "app_status", "app_delete", "app_diff")
"""The control ops :meth:`AppOps.dispatch` answers."""
MAX_ARG_CHARS = 512
"""Longest name or version argument: the directory's key limit (names are <= 63,
versions <= 128 characters, so anything longer cannot exist)."""
MAX_SOURCE_CHARS = 4096
"""Longest ``source`` (the file name shown in messages); a path is shorter."""
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")

Members = Callable[[], Iterable[HostView]]
Running = Callable[[], Mapping[str, Mapping[str, int]]]


def _invalid(message: str) -> ControlArgumentError:
    return ControlArgumentError(message)


# --- argument checking -----------------------------------------------------------------


def _check_args(op: str, args: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(args, Mapping):
        raise _invalid(f"{op}: args must be a map, got {type(args).__name__}")
    unknown = sorted(str(k) for k in args if k not in allowed)
    if unknown:
        expected = ", ".join(allowed) if allowed else "none"
        raise _invalid(f"{op}: unknown argument(s) {', '.join(unknown)} (expected: {expected})")
    return args


def _text(op: str, args: Mapping[str, Any], name: str, limit: int = MAX_ARG_CHARS) -> str:
    value = args.get(name)
    if value is None:
        raise _invalid(f"{op}: argument {name!r} is required")
    if not isinstance(value, str):
        raise _invalid(f"{op}: argument {name!r} must be text, got {type(value).__name__}")
    if not value or len(value) > limit:
        raise _invalid(f"{op}: argument {name!r} must be 1..{limit} characters")
    return value


def _optional_text(
    op: str, args: Mapping[str, Any], name: str, limit: int = MAX_ARG_CHARS
) -> str | None:
    return None if args.get(name) is None else _text(op, args, name, limit)


def _manifest_arg(op: str, args: Mapping[str, Any]) -> Manifest:
    """Decode and re-validate the canonical manifest a client sent."""
    raw = args.get("manifest")
    if raw is None:
        raise _invalid(f"{op}: argument 'manifest' is required (the canonical manifest bytes)")
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, bytes | bytearray):
        raise _invalid(
            f"{op}: argument 'manifest' must be bytes (canonical manifest JSON), "
            f"got {type(raw).__name__}"
        )
    source = _optional_text(op, args, "source", MAX_SOURCE_CHARS) or "<manifest sent>"
    try:
        return decode_manifest(bytes(raw), source=source)
    except StoredManifestInvalid as exc:
        raise _invalid(
            f"{op}: the manifest sent is not a valid canonical manifest ({exc}); "
            "send what `meshhost apply` sends: Manifest.canonical() of a parsed file"
        ) from None


def _modules_arg(op: str, args: Mapping[str, Any]) -> dict[str, bytes]:
    raw = args.get("modules")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _invalid(f"{op}: argument 'modules' must map sha256 hex to module bytes")
    modules: dict[str, bytes] = {}
    for digest, module in raw.items():
        if not isinstance(digest, str) or not _SHA256_RE.match(digest):
            raise _invalid(
                f"{op}: modules key {str(digest)[:80]!r} is not a sha256 (64 lower-case hex)"
            )
        if not isinstance(module, bytes | bytearray):
            raise _invalid(
                f"{op}: module {digest[:16]}… must be bytes, got {type(module).__name__}"
            )
        actual = hashlib.sha256(module).hexdigest()
        if actual != digest:
            raise _invalid(
                f"{op}: digest mismatch: the module sent as sha256 {digest} hashes to "
                f"{actual}; it was damaged or mislabelled, nothing was applied"
            )
        modules[digest] = bytes(module)
    return modules


def _apply_writes(
    manifest: Manifest, stored: bytes | None, args: Mapping[str, Any]
) -> list[DirectoryWrite]:
    """``store.apply_writes``, with a version conflict naming the client's file."""
    try:
        return apply_writes(manifest, stored)
    except ManifestVersionConflict as exc:
        source = args.get("source")
        if not isinstance(source, str) or not source:
            raise
        raise ManifestVersionConflict(exc.problem, source=source, field=exc.field) from None


# --- running instances from directory records -------------------------------------------


def running_from_directory(
    directory: Directory, workloads: Mapping[str, Workload], desired: Placement
) -> dict[str, dict[str, int]]:
    """Managed instances per host, derived from the directory's per-host actor records.

    Hosts gossip ``actor/<M… id>`` with an instance count, not component
    keys, so instances are attributed to the ``workloads`` (component keys
    of deployed manifests) with the same actor id. Exact when each actor id
    belongs to one component key and nothing else runs it; when several keys
    share an actor id (a module upgrade in progress, or one actor in two
    applications) a host's instances go first to the keys ``desired`` gives
    that host, in key order, and the rest to the first such key. Instances of
    actors no deployed component names are not managed and are left out.
    Inject the host's exact ``running`` into :class:`AppOps` when it has one.
    """
    keys_of: dict[str, list[str]] = {}
    for key in sorted(workloads):
        actor_id = workloads[key].actor_id
        if actor_id:
            keys_of.setdefault(actor_id, []).append(key)
    result: dict[str, dict[str, int]] = {}
    for host_id in directory.hosts():
        view = directory.host(host_id)
        if view is None:
            continue
        wanted = desired.for_host(host_id)
        share: dict[str, int] = {}
        for actor_id, (_, instances) in view.actors.items():
            keys = keys_of.get(actor_id)
            if not keys or instances <= 0:
                continue
            left = instances
            for key in keys:
                give = min(wanted.get(key, 0), left)
                if give:
                    share[key] = share.get(key, 0) + give
                    left -= give
            if left:
                share[keys[0]] = share.get(keys[0], 0) + left
        if share:
            result[host_id] = share
    return result


def _problems_of(name: str, problems: Iterable[str]) -> list[str]:
    """The problems ``store.deployed_manifests`` reported about application ``name``."""
    return [p for p in problems if repr(name) in p or f"/{name}@" in p]


def _values_text(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "no values"


def describe_replaced_link(link: Mapping[str, Any]) -> str:
    """One line about a hand-made link ``apply`` would replace (an item of
    ``replaced_links``)."""
    return (
        f"{link['actor']} {link['contract']} ({link['link_name']}): "
        f"{_values_text(link['old'])} -> {_values_text(link['new'])}"
    )


# --- the ops -------------------------------------------------------------------------------


class AppOps:
    """Answers the application control ops on one host (see the module docstring)."""

    def __init__(
        self,
        directory: Directory,
        *,
        members: Members,
        running: Running | None = None,
        store_module: Callable[[str, bytes], None] | None = None,
        has_module: Callable[[str], bool] | None = None,
        inspect_image: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self.directory = directory
        self._members = members
        self._running = running
        self._store_module = store_module
        self._has_module = has_module
        self._inspect_image = inspect_image

    def dispatch(self, op: str, args: Mapping[str, Any]) -> Any:
        """Run ``op`` (one of :data:`APP_OPS`); raises UnknownControlOp (unsupported) for others."""
        handler = {
            "apply": self.apply,
            "app_list": self.app_list,
            "app_get": self.app_get,
            "app_status": self.app_status,
            "app_delete": self.app_delete,
            "app_diff": self.app_diff,
        }.get(op)
        if handler is None:
            raise UnknownControlOp(f"{op!r} is not an application op")
        return handler(args)

    # -- reading the directory

    def _deployed(self) -> tuple[list[Manifest], list[str]]:
        return deployed_manifests(
            self._bytes_items(MANIFESTS_NS), self._bytes_items(DEPLOYMENTS_NS)
        )

    def _bytes_items(self, namespace: str) -> list[tuple[str, bytes]]:
        # Values come from peers: anything that is not bytes is a bad record;
        # store's readers report it (as not UTF-8 / not a manifest).
        return [
            (key, bytes(value) if isinstance(value, bytes | bytearray) else b"\xff")
            for key, value in self.directory.items(namespace)
        ]

    def _deployed_version(self, name: str) -> str | None:
        raw = self.directory.get(DEPLOYMENTS_NS, name)
        if not isinstance(raw, bytes | bytearray):
            return None
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _stored(self, name: str, version: str) -> Manifest:
        key = manifest_key(name, version)
        raw = self.directory.get(MANIFESTS_NS, key)
        if raw is None:
            stored = self._versions(name)
            hint = (
                f"; stored versions: {', '.join(stored)}"
                if stored
                else "; 'meshhost app list' shows what is"
            )
            raise ManifestNotFound(f"no application {name!r} version {version!r} is stored{hint}")
        if not isinstance(raw, bytes | bytearray):
            raise StoredManifestInvalid(f"{MANIFESTS_NS}/{key} is not bytes")
        return decode_manifest(bytes(raw), source=f"{MANIFESTS_NS}/{key}")

    def _versions(self, name: str) -> list[str]:
        return sorted(
            key.partition("@")[2]
            for key, _ in self.directory.items(MANIFESTS_NS)
            if key.partition("@")[0] == name
        )

    def _views(self) -> list[HostView]:
        return list(self._members())

    def _running_now(self, desired: Placement) -> Mapping[str, Mapping[str, int]]:
        derived: dict[str, Mapping[str, int]] = dict(
            running_from_directory(self.directory, desired.workloads, desired)
        )
        if self._running is not None:
            derived.update(self._running())  # exact counts win for the hosts they cover
        return derived

    def _write(self, writes: Iterable[DirectoryWrite]) -> None:
        for write in writes:
            if isinstance(write, DirectoryPut):
                self.directory.put(write.namespace, write.key, write.value)
            elif isinstance(write, DirectoryDelete):
                self.directory.delete(write.namespace, write.key)

    def _replaced_links(self, manifest: Manifest) -> list[dict[str, Any]]:
        """Link definitions in the directory that applying ``manifest`` would overwrite
        and that no application owns as they are: made by hand with ``link put``, or an
        application's link changed by hand since. A link owned by another application
        is not listed (placement reports that conflict; the first app keeps it)."""
        records: dict[str, LinkSpec] = {}
        for key, value in self.directory.items(LINKS_NS):
            try:
                records[key] = decode_link(
                    bytes(value) if isinstance(value, bytes | bytearray) else b""
                )
            except MeshError:
                continue  # an unreadable record owns nothing
        replaced = []
        for component in manifest.actors:
            if component.actor_id is None:
                continue
            for spec in link_specs(manifest.name, component):
                existing = self.directory.link(component.actor_id, spec.contract_id, spec.link_name)
                if existing is None:
                    continue
                old = dict(existing.values)
                record = records.get(link_record_key(spec))
                if record is not None and (
                    record.app != manifest.name or dict(record.values) == old
                ):
                    continue  # an application's own link, as it wrote it
                if old == dict(spec.values) and record is not None:
                    continue
                replaced.append(
                    {
                        "actor": component.actor_id,
                        "component": component.name,
                        "contract": spec.contract_id,
                        "link_name": existing.link_name,
                        "old": old,
                        "new": dict(spec.values),
                    }
                )
        return replaced

    def _problems_of_app(self, name: str, manifests: list[Manifest]) -> list[str]:
        """What placement cannot satisfy of application ``name`` among ``manifests``."""
        placed = compute_placement(manifests, self._views())
        return [
            f"component {u.component}: {u.message}" if u.component else u.message
            for u in placed.unsatisfied
            if u.app == name
        ]

    # -- apply

    def apply(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Store and deploy a manifest.

        Args: ``manifest`` (bytes: ``Manifest.canonical()``; text is taken as
        UTF-8), ``source`` (text, optional: the file name for messages),
        ``modules`` (map sha256 hex -> module bytes, one per actor module not
        already stored). Result: ``{"app", "version", "digest", "previous"
        (the version deployed before, or None), "changed" (False when this
        exact version was already stored and deployed), "modules_stored"
        (sha256s handed to ``store_module``), "replaced_links" (hand-made links
        the manifest's links replace; see ``force``), "problems" (what placement
        cannot satisfy of the application now: a non-empty list means some part
        of it runs nowhere)}``. ``force`` (bool, optional): replace link
        definitions made by hand; without it their presence is refused
        (LinksWouldBeReplaced, INVALID) and nothing is written.
        Raises INVALID for a bad manifest, a module that is missing, does not
        hash to its key, is not used, or is signed as another actor, and for
        the same version stored with other content.
        """
        args = _check_args("apply", args, ("manifest", "source", "modules", "force"))
        manifest = _manifest_arg("apply", args)
        force = args.get("force", False)
        if not isinstance(force, bool):
            raise _invalid(f"apply: argument 'force' must be a boolean, got {type(force).__name__}")
        modules = _modules_arg("apply", args)
        needed: dict[str, str] = {}
        for component in manifest.actors:
            if component.sha256 is None:
                raise _invalid(
                    f"apply: actor {component.name!r} has no sha256: hosts could not tell "
                    "which module to run; apply the file with `meshhost apply`, which reads "
                    "the image"
                )
            needed.setdefault(component.sha256, component.name)
            module = modules.get(component.sha256)
            if module is None:
                if self._has_module is not None and self._has_module(component.sha256):
                    continue
                raise _invalid(
                    f"apply: the module of actor {component.name!r} (sha256 "
                    f"{component.sha256}) was not sent and this host does not store it"
                )
            if self._inspect_image is not None and component.actor_id:
                try:
                    found = self._inspect_image(module)
                except MeshError as exc:
                    raise _invalid(
                        f"apply: the module of actor {component.name!r} cannot be used: {exc}"
                    ) from None
                if found != component.actor_id:
                    raise _invalid(
                        f"apply: the module of actor {component.name!r} is signed as {found}, "
                        f"but the manifest names {component.actor_id}"
                    )
        unused = sorted(set(modules) - set(needed))
        if unused:
            raise _invalid(
                f"apply: module(s) {', '.join(d[:16] + '…' for d in unused)} were sent but no "
                "actor of the manifest uses them"
            )
        key = manifest_key(manifest.name, manifest.version)
        raw = self.directory.get(MANIFESTS_NS, key)
        stored = bytes(raw) if isinstance(raw, bytes | bytearray) else None
        previous = self._deployed_version(manifest.name)
        writes = _apply_writes(manifest, stored, args)  # raises on a version conflict
        changed = not (stored is not None and previous == manifest.version)
        replaced = self._replaced_links(manifest)
        if replaced and not force:
            lines = "; ".join(describe_replaced_link(link) for link in replaced)
            raise LinksWouldBeReplaced(
                f"apply: {manifest.name} {manifest.version} would replace {len(replaced)} "
                f"link(s) made by hand: {lines}. Nothing was applied; `meshhost app diff` "
                "shows them, `meshhost apply --force` replaces them"
            )
        if self._store_module is not None:
            for digest, module in sorted(modules.items()):
                try:
                    self._store_module(digest, module)
                except (OSError, ModuleStoreFailed) as exc:  # a full disk: not the client's fault
                    reason = exc.strerror if isinstance(exc, OSError) else None
                    raise ModuleStoreFailed(
                        f"apply: this host cannot store module {digest[:16]}…: "
                        f"{reason or exc}; nothing was applied",
                    ) from None
        if changed:
            self._write(writes)
        manifests, _ = self._deployed()
        return {
            "app": manifest.name,
            "version": manifest.version,
            "digest": manifest.digest(),
            "previous": previous,
            "changed": changed,
            "modules_stored": sorted(modules) if self._store_module is not None else [],
            "replaced_links": replaced,
            "problems": self._problems_of_app(manifest.name, manifests),
        }

    # -- list / get

    def app_list(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every stored or deployed application, sorted by name.

        No args. Each row: ``{"name", "deployed" (version or None),
        "versions" (stored, sorted), "state" ("deployed" | "reconciling" |
        "failed" for a deployed app, "waiting" when its manifest has not
        arrived or is unreadable here, None when not deployed),
        "desired", "running" (instances summed over components and hosts),
        "problems" (list of text)}``.
        """
        _check_args("app_list", args, ())
        manifests, problems = self._deployed()
        desired = compute_placement(manifests, self._views())
        running = self._running_now(desired)
        by_name = {m.name: m for m in manifests}
        rows = []
        for summary in app_summaries(
            (k for k, _ in self.directory.items(MANIFESTS_NS)), self._bytes_items(DEPLOYMENTS_NS)
        ):
            row: dict[str, Any] = {
                "name": summary.name,
                "deployed": summary.deployed_version,
                "versions": list(summary.versions),
                "state": None,
                "desired": 0,
                "running": 0,
                "problems": [],
            }
            manifest = by_name.get(summary.name)
            if manifest is not None:
                app_status = status(manifest, desired, running)
                row["state"] = str(app_status.state)
                row["desired"] = sum(r.desired for r in app_status.rows)
                row["running"] = sum(r.running for r in app_status.rows)
                row["problems"] = list(app_status.problems)
            elif summary.deployed_version is not None or self._deployed_raw(summary.name):
                row["state"] = "waiting"
                row["problems"] = _problems_of(summary.name, problems) or [
                    f"{summary.name!r} is deployed but its manifest cannot be read here"
                ]
            rows.append(row)
        return rows

    def _deployed_raw(self, name: str) -> bool:
        return self.directory.get(DEPLOYMENTS_NS, name) is not None

    def app_get(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """One stored manifest.

        Args: ``name``, ``version`` (optional; default the deployed one).
        Result: ``{"app", "version", "deployed" (bool: this version is the
        deployed one), "digest", "manifest" (the OAM document as a map),
        "yaml" (the same as YAML text)}``. NOT_FOUND when there is no such
        application or version, or no version is given and none is deployed.
        """
        args = _check_args("app_get", args, ("name", "version"))
        name = _text("app_get", args, "name")
        version = _optional_text("app_get", args, "version")
        deployed = self._deployed_version(name)
        if version is None:
            if deployed is None:
                stored = self._versions(name)
                if not stored:
                    raise ManifestNotFound(
                        f"no application {name!r} is stored; 'meshhost app list' shows what is"
                    )
                raise ManifestNotFound(
                    f"application {name!r} is not deployed; give --version (stored: "
                    f"{', '.join(stored)})"
                )
            version = deployed
        manifest = self._stored(name, version)
        return {
            "app": manifest.name,
            "version": manifest.version,
            "deployed": deployed == manifest.version,
            "digest": manifest.digest(),
            "manifest": manifest.to_document(),
            "yaml": manifest.to_yaml(),
        }

    # -- status

    def app_status(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Desired vs running of a deployed application.

        Args: ``name``. Result: ``AppStatus.as_dict()`` — ``{"app", "version",
        "state", "problems", "rows": [{"component", "key", "host", "desired",
        "running", "state"}]}`` — plus ``"components": [{"component",
        "desired", "running"}]`` (totals over hosts, every actor component
        listed even with nothing placed) and ``"hosts"`` (how many candidate
        hosts placement used). NOT_FOUND when ``name`` is not deployed.
        """
        args = _check_args("app_status", args, ("name",))
        name = _text("app_status", args, "name")
        manifests, problems = self._deployed()
        manifest = next((m for m in manifests if m.name == name), None)
        if manifest is None:
            version = self._deployed_version(name)
            if version is not None or self._deployed_raw(name):
                reasons = _problems_of(name, problems)
                raise ManifestNotFound(
                    f"application {name!r} is deployed but its manifest cannot be read on this "
                    f"host: {'; '.join(reasons) or 'record missing or malformed'}"
                )
            stored = self._versions(name)
            if stored:
                raise ManifestNotFound(
                    f"application {name!r} is not deployed (stored versions: "
                    f"{', '.join(stored)}); deploy one with 'meshhost apply'"
                )
            raise ManifestNotFound(
                f"no application {name!r} is deployed; 'meshhost app list' shows what is"
            )
        desired = compute_placement(manifests, self._views())
        app_status = status(manifest, desired, self._running_now(desired))
        result = app_status.as_dict()
        totals = app_status.totals()
        result["components"] = [
            {
                "component": c.name,
                "asked": c.scaler.instances
                if c.scaler is not None and c.scaler.kind is ScalerKind.SPREAD
                else None,
                "desired": totals.get(c.name, (0, 0))[0],
                "running": totals.get(c.name, (0, 0))[1],
            }
            for c in manifest.components
            if c.type is ComponentType.ACTOR
        ]
        result["hosts"] = len(desired.candidates)
        return result

    # -- delete

    def app_delete(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Undeploy and forget an application, or one stored version of it.

        Args: ``name``, ``version`` (optional). Result: ``{"app", "deleted"
        (the stored versions removed, sorted), "undeployed" (bool: the
        deployment was removed, so its instances stop as hosts reconcile)}``.
        NOT_FOUND when nothing matches.
        """
        args = _check_args("app_delete", args, ("name", "version"))
        name = _text("app_delete", args, "name")
        version = _optional_text("app_delete", args, "version")
        keys = [k for k, _ in self.directory.items(MANIFESTS_NS)]
        deployed = self._deployed_version(name)
        if deployed is None and self._deployed_raw(name):
            deployed = ""  # a malformed deployment record: remove it with the app
        writes = delete_writes(name, keys, deployed, version)
        self._write(writes)
        return {
            "app": name,
            "deleted": sorted(
                w.key.partition("@")[2]
                for w in writes
                if isinstance(w, DirectoryDelete) and w.namespace == MANIFESTS_NS
            ),
            "undeployed": any(
                isinstance(w, DirectoryDelete) and w.namespace == DEPLOYMENTS_NS for w in writes
            ),
        }

    # -- diff

    def app_diff(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """What applying a manifest would change; writes nothing.

        Args: ``manifest`` and ``source`` as for :meth:`apply`. Result:
        ``{"app", "version", "deployed" (the version deployed now, or None),
        "conflict" (text when apply would refuse: same version stored with
        other content; else None), "changes": [{"path", "old", "new",
        "kind"}], "instances": [{"host", "key", "component", "old", "new"}],
        "problems" (what the new placement cannot satisfy), "replaced_links"
        (link definitions made by hand that apply would replace, only with
        ``--force``: ``[{"actor", "component", "contract", "link_name", "old",
        "new"}]``, values as maps)}``.
        """
        args = _check_args("app_diff", args, ("manifest", "source"))
        manifest = _manifest_arg("app_diff", args)
        manifests, _ = self._deployed()
        current = next((m for m in manifests if m.name == manifest.name), None)
        conflict = None
        raw = self.directory.get(MANIFESTS_NS, manifest_key(manifest.name, manifest.version))
        if isinstance(raw, bytes | bytearray):
            try:
                _apply_writes(manifest, bytes(raw), args)
            except MeshError as exc:
                conflict = str(exc)
        views = self._views()
        before = compute_placement(manifests, views)
        after = compute_placement(
            [m for m in manifests if m.name != manifest.name] + [manifest], views
        )
        prefix = f"{manifest.name}/"
        instances = [
            {
                "host": change.host_id,
                "key": change.key,
                "component": change.key[len(prefix) :].split("@", 1)[0].split("~", 1)[0],
                "old": change.old,
                "new": change.new,
            }
            for change in placement_diff(before, after)
            if change.key.startswith(prefix)
        ]
        problems = [
            f"component {u.component}: {u.message}" if u.component else u.message
            for u in after.unsatisfied
            if u.app == manifest.name
        ]
        return {
            "app": manifest.name,
            "version": manifest.version,
            "deployed": self._deployed_version(manifest.name),
            "conflict": conflict,
            "changes": [
                {"path": c.path, "old": c.old, "new": c.new, "kind": c.kind}
                for c in diff(current, manifest)
            ],
            "instances": instances,
            "problems": problems,
            "replaced_links": self._replaced_links(manifest),
        }
