"""Staged lattice-wide writes: a control op's writes collected for an operator's signature.

In a lattice with admins (``proto/spec/operators.md``, "Signed entries") a
control op's lattice-wide writes must each carry an operator's signature.
Inside :meth:`Directory.staged <meshhost.directory.state.Directory.staged>`
the directory applies none of them: :func:`stage` collects each write in the
:class:`Staging`, ready when the operator already signed it and else missing,
with a fresh stamp to sign; the caller then commits all of them or none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from meshhost.directory.codec import EntryAuth, LwwEntry, Value
from meshhost.directory.hlc import Stamp
from meshhost.errors import DecodeError

__all__ = ["Staging", "active_staging", "stage", "staged"]


@dataclass(slots=True)
class Staging:
    """The lattice-wide writes of one control op in a lattice with admins.

    Inside :meth:`Directory.staged`, :meth:`Directory.put` and
    :meth:`Directory.delete` change nothing: each write is collected, as
    ``ready`` when the operator already signed it (``provided`` holds its stamp
    and signature, and ``check`` accepts the entry) or else as ``missing`` with
    a fresh stamp for the operator to sign.  The caller then applies all of
    them with :meth:`Directory.commit` or none (``proto/spec/operators.md``,
    "Signed entries").  Namespaces in ``exempt`` are written at once (security
    statements carry their own signature).
    """

    check: Callable[[LwwEntry], bool]
    provided: dict[tuple[str, str], tuple[int, EntryAuth]]
    """(ns, key) -> (packed stamp, auth) the operator signed."""
    exempt: frozenset[str] = frozenset()
    ready: list[LwwEntry] = field(default_factory=list)
    missing: list[LwwEntry] = field(default_factory=list)


_STAGING: ContextVar[Staging | None] = ContextVar("meshhost_directory_staging", default=None)
"""The staging of the control op running in this task (a context variable: other
tasks writing meanwhile, e.g. the reconciler, are not staged)."""


@contextlib.contextmanager
def staged(staging: Staging) -> Iterator[Staging]:
    """Collect this task's writes in ``staging`` instead of applying them."""
    token = _STAGING.set(staging)
    try:
        yield staging
    finally:
        _STAGING.reset(token)


def active_staging() -> Staging | None:
    """The staging of the control op running in this task, or None."""
    return _STAGING.get()


def stage(
    staging: Staging,
    ns: str,
    key: str,
    value: Value,
    stamp: Stamp,
    current: LwwEntry | None,
    now_ms: int,
    host_id: str,
    max_drift_ms: int,
) -> Stamp:
    """Collect the write of ``value`` under (ns, key) in ``staging``; its stamp.

    ``stamp`` is the one the write would get now and ``current`` the entry it
    replaces. The write is ready with the operator's stamp and signature when
    ``staging.provided`` has them for (ns, key), that stamp supersedes
    ``current``, is not ahead of ``now_ms`` by more than ``max_drift_ms``, and
    ``staging.check`` accepts the signed entry; otherwise it is missing, with
    ``stamp`` for the operator to sign.
    """
    given = staging.provided.get((ns, key))
    if given is not None:
        packed, auth = given
        try:
            signed = Stamp.unpack(packed, host_id)
        except DecodeError:
            signed = None
        if (
            signed is not None
            and (current is None or signed > current.stamp)
            and signed.wall_ms <= now_ms + max_drift_ms
        ):
            entry = LwwEntry(ns, key, signed, value, auth)
            if staging.check(entry):
                staging.ready.append(entry)
                return signed
    staging.missing.append(LwwEntry(ns, key, stamp, value))
    return stamp
