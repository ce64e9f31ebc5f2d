"""The lattice-wide security state in the directory: operators, issuers, revocations.

Signed statements (``identity/operators.py``) live in the directory's
lattice-wide map, namespace :data:`SECURITY_NS`, each under the digest of its
bytes: a statement is never overwritten or deleted, only superseded by a
newer one about the same subject, and a peer cannot forge, alter or tombstone
one (:meth:`LatticeSecurity.admit` refuses anything else before the merge).
They spread and persist like links: gossip, push-pull, the directory's store.

:class:`LatticeSecurity` evaluates them, from the bootstrap admins this host
was given, into a :class:`~meshhost.identity.operators.SecurityState`, cached
until the namespace changes.  Sans-IO: the directory is handed in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from meshhost.errors import ActorRevoked, DecodeError, IssuerNotAllowed, NkeyError, SignatureError
from meshhost.identity.operators import (
    Role,
    SecurityState,
    Statement,
    decode_statement,
    evaluate,
)

if TYPE_CHECKING:
    from meshhost.directory import Directory
    from meshhost.directory.codec import LwwEntry

__all__ = ["SECURITY_NS", "LatticeSecurity"]

log = logging.getLogger(__name__)

MAX_DECODED = 10_000
"""Verified statements remembered (stored bytes are at most 1 KiB each)."""
SECURITY_NS = "security"
"""Directory namespace of signed security statements (key: the statement's digest)."""


class LatticeSecurity:
    """One host's view of who may do what in its lattice."""

    def __init__(self, lattice: str, bootstrap: Iterable[str], directory: Directory,
                 host_issuers: Iterable[str] = ()) -> None:
        self.lattice = lattice
        self.bootstrap = frozenset(bootstrap)
        self.directory = directory
        self.host_issuers = tuple(host_issuers)
        """This host's own allow-list (``up --allowed-issuer``); empty: no host restriction."""
        self._state: SecurityState | None = None
        self._decoded: dict[bytes, Statement | None] = {}
        """Stored bytes -> the verified statement (None: invalid), so gossip repeating
        what we hold costs a dict lookup, not a signature check."""

    # -- the directory's side ----------------------------------------------------

    def admit(self, entry: LwwEntry) -> bool:
        """Whether a peer's lattice-wide entry may be merged (the directory's ``admit``).

        Outside :data:`SECURITY_NS` everything is admitted.  Inside: only a live,
        correctly signed statement stored under its own digest, whose signer is an
        admin now (a key that is not, or no longer, admin cannot add statements).
        """
        if entry.ns != SECURITY_NS:
            return True
        if entry.value is not None and self.directory.get(SECURITY_NS, entry.key) == entry.value:
            return True  # what we hold already: nothing changes
        statement = self._decode(entry.value)
        if statement is None or statement.digest != entry.key:
            return False
        if self.state().role_of(statement.signer) != Role.ADMIN:
            return False
        self._state = None  # the next statement of this batch may be signed by this one's grantee
        return True

    def changed(self) -> None:
        """The security namespace changed: recompute on the next :meth:`state`."""
        self._state = None

    def _decode(self, value: object) -> Statement | None:
        if not isinstance(value, bytes):
            return None
        if value in self._decoded:
            return self._decoded[value]
        try:
            statement: Statement | None = decode_statement(self.lattice, value)
        except (DecodeError, SignatureError, NkeyError):
            statement = None
        if len(self._decoded) >= MAX_DECODED:
            self._decoded.clear()  # a flood of junk must not grow memory; valid ones re-verify
        self._decoded[value] = statement
        return statement

    def statements(self) -> list[Statement]:
        out = []
        for key, value in self.directory.items(SECURITY_NS):
            statement = self._decode(value)
            if statement is not None and statement.digest == key:
                out.append(statement)
        return out

    def state(self) -> SecurityState:
        if self._state is None:
            self._state = evaluate(self.bootstrap, self.statements())
        return self._state

    def add(self, statement: Statement) -> None:
        """Store a statement this host made or received from its CLI (already checked)."""
        self.directory.put(SECURITY_NS, statement.digest, statement.encoded())
        self.changed()

    # -- actors ----------------------------------------------------------------------

    def refusal(self, actor_id: str, issuer: str) -> str | None:
        """Why this host must not run ``actor_id`` (issued by ``issuer``), or None."""
        state = self.state()
        if actor_id in state.revoked:
            return f"actor {actor_id} is revoked in lattice {self.lattice!r}"
        if issuer in state.revoked:
            return f"issuer {issuer} of actor {actor_id} is revoked in lattice {self.lattice!r}"
        if state.issuers and issuer not in state.issuers:
            return (f"issuer {issuer} of actor {actor_id} is not on lattice {self.lattice!r}'s "
                    "allow-list (`meshhost issuer list`)")
        if self.host_issuers and issuer not in self.host_issuers:
            return (f"issuer {issuer} of actor {actor_id} is not on this host's allow-list "
                    "(`meshhost up --allowed-issuer`)")
        return None

    def check_actor(self, actor_id: str, issuer: str) -> None:
        """Raise ActorRevoked or IssuerNotAllowed when this host must not run the actor."""
        reason = self.refusal(actor_id, issuer)
        if reason is None:
            return
        if "revoked" in reason:
            raise ActorRevoked(f"{reason}; an admin can undo it with `meshhost revoke del`")
        raise IssuerNotAllowed(reason)
