"""Applications: declarative manifests reconciled without a leader.

* :mod:`~meshhost.apps.manifest` — parse and validate wadm-style OAM
  manifests (YAML) into an immutable :class:`Manifest` with a canonical form
  (:mod:`~meshhost.apps.model`); the work is done by
  :mod:`~meshhost.apps.yamlsource` (text to positioned nodes),
  :mod:`~meshhost.apps.fieldreader` (typed reads failing at a position),
  :mod:`~meshhost.apps.validator` (the rules) and
  :mod:`~meshhost.apps.images` (actor image files).
* :mod:`~meshhost.apps.placement` — :func:`compute_placement`: every host
  computes the same desired placement from (deployed manifests, members with
  labels) by rendezvous hashing.
* :mod:`~meshhost.apps.plan` — :func:`reconcile`: the pure planning core
  that turns (desired, what this host runs, manifest links in the directory)
  into start/stop/link actions for this host's share only.
* :mod:`~meshhost.apps.reconciler` — :class:`Reconciler`, the same core
  with a join gate, debounce, periodic resync and start back-off, driven
  by ``update(..., now)`` / ``get_timer()`` / ``handle_timer(now)``.
* :mod:`~meshhost.apps.store` — where manifests, deployments and owned
  links live in the directory, and the writes ``apply``/``delete`` make.
* :mod:`~meshhost.apps.status` — desired-vs-running status and diffs.
* :mod:`~meshhost.apps.ops` — the host-side handlers of the application
  control ops (``apply``, ``app_*``), with what they need injected.
* :mod:`~meshhost.apps.reconcile_loop` — :class:`ReconcileDriver`, the trio
  loop on a running host that feeds the :class:`Reconciler` and carries out
  its actions.

CLI design (built on these functions by the host/CLI layer)::

    meshhost apply FILE [--json]
        load_manifest(FILE, inspect_image=<claims subject reader>); print
        Manifest.warnings; read control.manifests/<name>@<version>;
        apply_writes(...) (refuses same version with other content); do the
        writes on any host (local socket or over the lattice).
    meshhost app list [--json]
        store.app_summaries(keys of control.manifests, control.deployments
        items): NAME, deployed VERSION, stored versions; plus the state
        from status() for deployed ones.
    meshhost app get NAME [--version V] [--json]
        decode_manifest(...).to_yaml() (or .to_document() as JSON); default
        version: the deployed one.
    meshhost app status NAME [--json]
        status(manifest, compute_placement(deployed, host_views(members,
        labels)), inventory from the directory's per-host state):
        one row per component and host: desired, running, ok/starting/stopping,
        plus problems (unsatisfied spreads, link conflicts); exit 0 even when
        failed (state is data), 1 when NAME is unknown.
    meshhost app delete NAME [--version V]
        delete_writes(...); instances stop as hosts reconcile.
    meshhost app diff FILE [--json]
        diff(deployed manifest or None, load_manifest(FILE)) field by field,
        and placement_diff(current placement, placement with FILE deployed):
        which instances would start/stop on which host. Nothing is written.
"""

import importlib
import sys
import types
from typing import Any

# Imported on first use (PEP 562): importing one submodule (the CLI's
# `meshhost.apps.manifest`, the host's reconcile loop) must not pull in yaml
# and every other part with it.
_EXPORTS = {
    "Component": "model",
    "ComponentType": "model",
    "Linkdef": "model",
    "Manifest": "model",
    "Scaler": "model",
    "ScalerKind": "model",
    "Spread": "model",
    "decode_manifest": "manifest",
    "load_manifest": "manifest",
    "parse_manifest": "manifest",
    "HostState": "placement",
    "HostView": "placement",
    "LinkSpec": "placement",
    "Placement": "placement",
    "Unsatisfied": "placement",
    "Workload": "placement",
    "component_key": "placement",
    "compute_placement": "placement",
    "Action": "plan",
    "DeleteLink": "plan",
    "PutLink": "plan",
    "StartActor": "plan",
    "StopActor": "plan",
    "reconcile": "plan",
    "Reconciler": "reconciler",
    "ReconcilerConfig": "reconciler",
    "AppState": "status",
    "AppStatus": "status",
    "Change": "status",
    "StatusRow": "status",
    "diff": "status",
    "placement_diff": "status",
    "status": "status",
}


class _Package(types.ModuleType):
    """Keeps the exported function ``status`` what this package's ``status``
    means, as the eager imports did: loading the submodule of the same name
    would otherwise set the attribute to the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Action",
    "AppState",
    "AppStatus",
    "Change",
    "Component",
    "ComponentType",
    "DeleteLink",
    "HostState",
    "HostView",
    "LinkSpec",
    "Linkdef",
    "Manifest",
    "Placement",
    "PutLink",
    "Reconciler",
    "ReconcilerConfig",
    "Scaler",
    "ScalerKind",
    "Spread",
    "StartActor",
    "StatusRow",
    "StopActor",
    "Unsatisfied",
    "Workload",
    "component_key",
    "compute_placement",
    "decode_manifest",
    "diff",
    "load_manifest",
    "parse_manifest",
    "placement_diff",
    "reconcile",
    "status",
]
