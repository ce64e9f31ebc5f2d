"""Liveness and readiness of a host, for service managers and load balancers.

* live (``/healthz``): the process serves: its trio loop answers.
* ready (``/readyz``): the host can do its job in the lattice:

  - ``joined``: membership runs, and a host given static seeds sees at
    least one live peer (a host found only by mDNS may be alone: it is a
    lattice of one until others come);
  - ``directory``: when peers are alive, at least one answered a directory
    pull (this host's view of actors, links and config is not empty by
    mistake);
  - ``control``: the control ops answer (checked by running ``hosts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from meshhost.monitor.source import MonitoredHost

__all__ = ["CONTROL_PROBE_S", "check_ready", "readiness"]

CONTROL_PROBE_S = 2.0
"""How long ``/readyz`` waits for the control probe."""


def readiness(host: MonitoredHost, *, control: bool | None = None) -> dict[str, Any]:
    """``{"ready", "reason", "checks": {joined, directory, control}}`` from the host's state.

    ``control``: the result of a live probe if one was made; otherwise
    whether the host is built (its control ops exist).
    """
    if not host.built:
        checks = {"joined": False, "directory": False, "control": False}
        return {"ready": False, "reason": "the host is starting: not serving yet", "checks": checks}
    peers = len(host.alive_ids() - {host.host_id})
    joined = peers > 0 or not host.config.seeds
    synced = peers == 0 or host.directory_driver.pulls > 0
    if control is None:
        control = True  # a built host has its control ops
    checks = {"joined": joined, "directory": synced, "control": control}
    reasons = {
        "joined": "not joined: no live peer among the static seeds yet",
        "directory": "directory not synced: no peer has answered a directory pull yet",
        "control": "control ops do not answer",
    }
    failing = [reasons[name] for name, ok in checks.items() if not ok]
    return {"ready": not failing, "reason": "; ".join(failing), "checks": checks}


async def check_ready(host: MonitoredHost) -> dict[str, Any]:
    """:func:`readiness` with a live control probe (``hosts``, within :data:`CONTROL_PROBE_S`)."""
    answered = False
    if host.built:
        with trio.move_on_after(CONTROL_PROBE_S):
            try:
                await host.control.dispatch("hosts", {})
                answered = True
            except Exception:  # any failure means "not ready"; the reason says which check
                answered = False
    return readiness(host, control=answered)
