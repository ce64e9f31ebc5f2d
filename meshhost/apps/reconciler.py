"""The reconciler as a sans-IO object a host driver can feed and drain.

:func:`~meshhost.apps.plan.reconcile` is the pure rule; this class adds
the timing every host needs around it, without reading a clock (``now`` is
always passed in) — the shape of the other cores: ``update(..., now)``,
``get_timer()``, ``handle_timer(now) -> actions``.

* **Join gate.** Nothing is planned until the driver has given a member list
  (call ``update(members=...)`` once membership has finished joining): a host
  that sees only itself would otherwise start every instance of every
  application on itself.
* **Debounce.** Inputs change in bursts (a partition produces hundreds of
  membership events in seconds); a plan is made ``debounce_s`` after the
  first change of a burst, from the inputs as they are then.
* **Resync.** A plan is also made every ``resync_interval_s`` without any
  change, so a lost start or an instance that died unnoticed is repaired.
* **Back-off.** A start that failed (bad module, out of memory) is not
  retried before ``start_backoff_initial_s``, doubling per failure up to
  ``start_backoff_max_s``; a success resets it. Stops and links are never
  held back.

The driver applies each returned action and reports the result with
:meth:`Reconciler.start_failed` / :meth:`start_succeeded`, and reports what
runs with ``update(running=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from meshhost.apps.model import Manifest
from meshhost.apps.placement import HostView, LinkSpec, Placement, compute_placement
from meshhost.apps.plan import Action, StartActor, reconcile
from meshhost.errors import ConfigError

__all__ = ["Reconciler", "ReconcilerConfig"]


@dataclass(frozen=True, slots=True)
class ReconcilerConfig:
    """Timing of the reconciler (seconds)."""

    debounce_s: float = 0.5
    """Wait this long after the first input change before planning (bursts coalesce)."""
    resync_interval_s: float = 30.0
    """Plan at least this often even without changes (repairs lost work)."""
    start_backoff_initial_s: float = 1.0
    """First wait before retrying a start that failed."""
    start_backoff_max_s: float = 60.0
    """Longest wait between retries of a failing start."""

    def __post_init__(self) -> None:
        for name in ("debounce_s", "resync_interval_s", "start_backoff_initial_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"ReconcilerConfig.{name} must be > 0")
        if self.start_backoff_max_s < self.start_backoff_initial_s:
            raise ConfigError("ReconcilerConfig.start_backoff_max_s must be >= the initial")


class Reconciler:
    """One host's reconciler (see the module docstring). Not thread-safe."""

    def __init__(self, host_id: str, config: ReconcilerConfig | None = None) -> None:
        self.host_id = host_id
        self.config = config or ReconcilerConfig()
        self._manifests: tuple[Manifest, ...] = ()
        self._members: tuple[HostView, ...] | None = None
        self._running: dict[str, int] = {}
        self._links: tuple[LinkSpec, ...] = ()
        self._keep: frozenset[str] = frozenset()
        self._desired: Placement | None = None
        self._due: float | None = None
        self._resync_at: float | None = None
        self._backoff: dict[str, tuple[float, float]] = {}  # key -> (retry at, last wait)

    @property
    def desired(self) -> Placement | None:
        """The placement of the last plan (None before the first), for status."""
        return self._desired

    def update(
        self,
        now: float,
        *,
        manifests: Iterable[Manifest] | None = None,
        members: Iterable[HostView] | None = None,
        running: Mapping[str, int] | None = None,
        managed_links: Iterable[LinkSpec] | None = None,
        keep_links_of: Iterable[str] | None = None,
    ) -> None:
        """Replace the given inputs; a plan follows within ``debounce_s``.

        ``manifests``: the deployed ones; ``members``: this host's membership
        view with labels; ``running``: managed instances on this host;
        ``managed_links``: the ``control.links`` records in the directory;
        ``keep_links_of``: deployed applications whose manifest is unreadable
        here yet (their links are left alone).
        """
        if manifests is not None:
            self._manifests = tuple(manifests)
            self._desired = None
        if members is not None:
            self._members = tuple(members)
            self._desired = None
        if running is not None:
            self._running = {k: n for k, n in running.items() if n}
        if managed_links is not None:
            self._links = tuple(managed_links)
        if keep_links_of is not None:
            self._keep = frozenset(keep_links_of)
        if self._due is None:
            self._due = now + self.config.debounce_s

    def start_failed(self, key: str, now: float) -> None:
        """A start of ``key`` failed: hold further starts of it back, doubling each time."""
        _, last = self._backoff.get(key, (0.0, 0.0))
        wait = min(
            self.config.start_backoff_max_s,
            max(self.config.start_backoff_initial_s, last * 2),
        )
        self._backoff[key] = (now + wait, wait)
        if self._due is None or self._due > now + wait:
            self._due = now + wait

    def start_succeeded(self, key: str) -> None:
        """A start of ``key`` worked: forget its back-off."""
        self._backoff.pop(key, None)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` wants to run next (None: nothing to do yet)."""
        times = [t for t in (self._due, self._resync_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[Action]:
        """Plan if due. Returns the actions to carry out now (maybe none)."""
        timer = self.get_timer()
        if timer is None or now < timer:
            return []
        self._due = None
        if self._members is None:  # not joined yet: never plan from a lonely view
            return []
        self._resync_at = now + self.config.resync_interval_s
        if self._desired is None:
            self._desired = compute_placement(self._manifests, self._members)
        plan = reconcile(self.host_id, self._desired, self._running, self._links, self._keep)
        held = {k for k, (at, _) in self._backoff.items() if at > now}
        if held:
            plan = [a for a in plan if not (isinstance(a, StartActor) and a.key in held)]
            self._due = min(self._backoff[k][0] for k in held)
        return plan
