"""Pure functions behind ``meshhost app status`` and ``meshhost app diff``.

``status`` compares what the placement wants with what hosts report running
(the directory's per-host inventory), per component and host. ``diff`` says
what changes between two versions of a manifest, field by field, and
``placement_diff`` which instances would start or stop where.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshhost.apps.model import Manifest
from meshhost.apps.placement import Placement

__all__ = [
    "AppState",
    "AppStatus",
    "Change",
    "InstanceChange",
    "StatusRow",
    "diff",
    "placement_diff",
    "status",
]


class AppState(enum.StrEnum):
    """Overall state of a deployed application (wadm's words)."""

    DEPLOYED = "deployed"
    """Every component runs exactly as desired."""
    RECONCILING = "reconciling"
    """Hosts are still starting or stopping instances."""
    FAILED = "failed"
    """Part of the application cannot be placed (no matching host, link conflict)."""


@dataclass(frozen=True, slots=True)
class StatusRow:
    """Desired vs running instances of one component key on one host."""

    component: str
    key: str
    host_id: str
    desired: int
    running: int

    @property
    def state(self) -> str:
        """``ok``, ``starting`` (too few running) or ``stopping`` (too many)."""
        if self.running == self.desired:
            return "ok"
        return "starting" if self.running < self.desired else "stopping"


@dataclass(frozen=True, slots=True)
class AppStatus:
    """Status of one application: state, rows sorted by component then host, problems."""

    app: str
    version: str
    state: AppState
    rows: tuple[StatusRow, ...]
    problems: tuple[str, ...]

    def totals(self) -> dict[str, tuple[int, int]]:
        """``component -> (desired, running)`` summed over hosts."""
        result: dict[str, tuple[int, int]] = {}
        for row in self.rows:
            desired, running = result.get(row.component, (0, 0))
            result[row.component] = (desired + row.desired, running + row.running)
        return result

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output."""
        return {
            "app": self.app,
            "version": self.version,
            "state": str(self.state),
            "problems": list(self.problems),
            "rows": [
                {
                    "component": r.component,
                    "key": r.key,
                    "host": r.host_id,
                    "desired": r.desired,
                    "running": r.running,
                    "state": r.state,
                }
                for r in self.rows
            ],
        }


def status(
    manifest: Manifest,
    desired: Placement,
    running: Mapping[str, Mapping[str, int]],
) -> AppStatus:
    """Desired vs running for ``manifest``.

    ``running`` is ``host_id -> {component_key: count}`` as hosts report it;
    keys of other applications are ignored, while keys of this application's
    components that are no longer desired (an old module) show as rows with
    desired 0. State is FAILED if anything is unsatisfied, RECONCILING while
    any row differs, else DEPLOYED.
    """
    prefix = f"{manifest.name}/"
    rows: dict[tuple[str, str], list[int]] = {}
    for host, share in desired.by_host.items():
        for key, count in share.items():
            if key.startswith(prefix):
                rows.setdefault((key, host), [0, 0])[0] += count
    for host, share in running.items():
        for key, count in share.items():
            if key.startswith(prefix) and count:
                rows.setdefault((key, host), [0, 0])[1] += count
    result = tuple(
        sorted(
            (
                StatusRow(_component_of(key), key, host, d, r)
                for (key, host), (d, r) in rows.items()
            ),
            key=lambda row: (row.component, row.key, row.host_id),
        )
    )
    problems = tuple(
        u.message if not u.component else f"component {u.component}: {u.message}"
        for u in desired.unsatisfied
        if u.app == manifest.name
    )
    if problems:
        state = AppState.FAILED
    elif any(row.state != "ok" for row in result):
        state = AppState.RECONCILING
    else:
        state = AppState.DEPLOYED
    return AppStatus(manifest.name, manifest.version, state, result, problems)


def _component_of(key: str) -> str:
    return key.split("/", 1)[1].split("@", 1)[0].split("~", 1)[0]


@dataclass(frozen=True, slots=True)
class Change:
    """One field that differs between two manifests. ``old``/``new`` are None when
    the field is added/removed. ``path`` names components by name, not index."""

    path: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        return "removed" if self.new is None else "changed"


def _flatten(manifest: Manifest) -> dict[str, str]:
    flat: dict[str, str] = {"version": manifest.version}
    if manifest.description:
        flat["description"] = manifest.description
    for key, value in manifest.annotations:
        flat[f"annotations.{key}"] = value
    for key, value in manifest.labels:
        flat[f"labels.{key}"] = value
    for component in manifest.components:
        base = f"components.{component.name}"
        flat[f"{base}.type"] = str(component.type)
        if component.image:
            flat[f"{base}.image"] = component.image
        for name in ("sha256", "actor_id", "contract_id"):
            value = getattr(component, name)
            if value:
                flat[f"{base}.{name}"] = value
        if component.contract_id:
            flat[f"{base}.link_name"] = component.link_name
        if component.scaler is not None:
            scaler = component.scaler
            flat[f"{base}.scaler"] = str(scaler.kind)
            flat[f"{base}.instances"] = str(scaler.instances)
            for spread in scaler.spread:
                s_base = f"{base}.spread.{spread.name}"
                flat[f"{s_base}.weight"] = str(spread.weight)
                for key, value in spread.requirements:
                    flat[f"{s_base}.requirements.{key}"] = value
        for link in component.linkdefs:
            l_base = f"{base}.linkdef.{link.contract_id}/{link.link_name}"
            flat[f"{l_base}.target"] = link.target
            for key, value in link.values:
                flat[f"{l_base}.values.{key}"] = value
    return flat


def diff(old: Manifest | None, new: Manifest) -> tuple[Change, ...]:
    """Field-level changes from ``old`` (None: nothing deployed) to ``new``, sorted by path."""
    before = _flatten(old) if old is not None else {}
    after = _flatten(new)
    return tuple(
        Change(path, before.get(path), after.get(path))
        for path in sorted(set(before) | set(after))
        if before.get(path) != after.get(path)
    )


@dataclass(frozen=True, slots=True)
class InstanceChange:
    """Instances of ``key`` on ``host_id`` go from ``old`` to ``new``."""

    host_id: str
    key: str
    old: int
    new: int


def placement_diff(old: Placement, new: Placement) -> tuple[InstanceChange, ...]:
    """Every (host, key) whose desired count differs, sorted by host then key."""
    changes = []
    for host in sorted(set(old.by_host) | set(new.by_host)):
        before, after = old.for_host(host), new.for_host(host)
        for key in sorted(set(before) | set(after)):
            if before.get(key, 0) != after.get(key, 0):
                changes.append(InstanceChange(host, key, before.get(key, 0), after.get(key, 0)))
    return tuple(changes)
