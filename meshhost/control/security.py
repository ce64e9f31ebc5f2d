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

import bisect
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from meshhost.apps.model import ComponentType
from meshhost.apps.placement import link_specs
from meshhost.apps.store import (
    DEPLOYMENTS_NS,
    LINKS_NS,
    MANIFESTS_NS,
    deployed_manifests,
    encode_link,
    link_record_key,
)
from meshhost.capabilities.links import LinkDefinition
from meshhost.directory.codec import encode_value
from meshhost.directory.links import link_key
from meshhost.directory.state import LINK_NS
from meshhost.errors import ActorRevoked, DecodeError, IssuerNotAllowed, NkeyError, SignatureError
from meshhost.identity.operators import (
    Role,
    SecurityState,
    Statement,
    StatementKind,
    decode_statement,
    evaluate,
    role_timeline,
    verify_entry,
)

if TYPE_CHECKING:
    from meshhost.directory import Directory
    from meshhost.directory.codec import LwwEntry

__all__ = ["DEPLOYER_NAMESPACES", "SECURITY_NS", "LatticeSecurity", "entry_role"]

log = logging.getLogger(__name__)

MAX_DECODED = 10_000
"""Verified statements remembered (stored bytes are at most 1 KiB each)."""
SECURITY_NS = "security"
"""Directory namespace of signed security statements (key: the statement's digest)."""
DEPLOYER_NAMESPACES = frozenset({MANIFESTS_NS, DEPLOYMENTS_NS, LINKS_NS})
"""Entries a deployer may sign (what ``apply`` and ``app_delete`` write); every other
namespace (links, config, any other) needs an admin."""
DERIVED_NAMESPACES = frozenset({LINK_NS, LINKS_NS})
"""Where the reconciler writes, unsigned, the links a deployed manifest declares."""
MAX_VERIFIED = 10_000


def entry_role(ns: str) -> Role:
    """The role an operator needs to sign an entry of namespace ``ns``."""
    return Role.DEPLOYER if ns in DEPLOYER_NAMESPACES else Role.ADMIN


class LatticeSecurity:
    """One host's view of who may do what in its lattice."""

    def __init__(
        self,
        lattice: str,
        bootstrap: Iterable[str],
        directory: Directory,
        host_issuers: Iterable[str] = (),
    ) -> None:
        self.lattice = lattice
        self.bootstrap = frozenset(bootstrap)
        self.directory = directory
        self.host_issuers = tuple(host_issuers)
        """This host's own allow-list (``up --allowed-issuer``); empty: no host restriction."""
        self._state: SecurityState | None = None
        self._timeline: list[tuple[int, Mapping[str, Role]]] | None = None
        self._verified: dict[tuple[Any, ...], bool] = {}
        self._wanted: tuple[tuple[int, int], dict[tuple[str, str], Any]] | None = None
        self.refused_loaded = 0
        """Entries loaded from disk that were dropped (see :meth:`check_entry`)."""
        self._decoded: dict[bytes, Statement | None] = {}
        """Stored bytes -> the verified statement (None: invalid), so gossip repeating
        what we hold costs a dict lookup, not a signature check."""

    # -- the directory's side ----------------------------------------------------

    def admit(self, entry: LwwEntry) -> bool:
        """Whether a peer's lattice-wide entry may be merged (the directory's ``admit``).

        Outside :data:`SECURITY_NS`, in a lattice with admins: :meth:`check_entry`
        (an open lattice admits everything).  Inside: only a live,
        correctly signed statement stored under its own digest, whose signer is an
        admin now (a key that is not, or no longer, admin cannot add statements).
        """
        if entry.ns != SECURITY_NS:
            if self.state().open:
                return True  # no admin: today's (open) behaviour
            if self.directory.entry(entry.ns, entry.key) == entry:
                return True  # what we hold already: nothing changes
            return self.check_entry(entry)
        if entry.value is not None and self.directory.get(SECURITY_NS, entry.key) == entry.value:
            return True  # what we hold already: nothing changes
        statement = self._decode(entry.value)
        if statement is None or statement.digest != entry.key:
            return False
        if self.state().role_of(statement.signer) != Role.ADMIN:
            return False
        self.changed()  # the next entry of this batch may be signed by this one's grantee
        return True

    def changed(self) -> None:
        """The security namespace changed: recompute on the next :meth:`state`."""
        self._state = None
        self._timeline = None

    def check_entry(self, entry: LwwEntry) -> bool:
        """Whether a lattice-wide entry outside :data:`SECURITY_NS` may be held.

        In an open lattice, always.  Otherwise a signed entry needs a valid
        signature (``operators.md``, "Signed entries") by a key that held
        :func:`entry_role` of its namespace at the entry's stamp time; an unsigned
        one must be a link the deployed manifests declare, exactly as the
        reconciler writes it (namespaces ``link``, ``control.links``), or the
        tombstone of such an unsigned link that no deployed manifest declares.
        """
        if entry.ns == SECURITY_NS or self.state().open:
            return True
        if entry.auth is not None:
            return self._signed_ok(entry)
        if entry.ns not in DERIVED_NAMESPACES:
            return False
        wanted = self._wanted_entries()
        if entry.value is not None:
            return bool(wanted.get((entry.ns, entry.key)) == entry.value)
        if (entry.ns, entry.key) in wanted:
            return False
        held = self.directory.entry(entry.ns, entry.key)
        return held is not None and held.auth is None

    def _signed_ok(self, entry: LwwEntry) -> bool:
        assert entry.auth is not None
        signer, signature = entry.auth
        value = None if entry.value is None else encode_value(entry.value)
        packed = entry.stamp.packed()
        ident = (entry.ns, entry.key, packed, entry.stamp.node, value, signer, signature)
        ok = self._verified.get(ident)
        if ok is None:
            ok = verify_entry(
                self.lattice,
                signer,
                signature,
                entry.ns,
                entry.key,
                packed,
                entry.stamp.node,
                value,
            )
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()
            self._verified[ident] = ok
        return ok and self.role_at(signer, entry.stamp.wall_ms) >= entry_role(entry.ns)

    def role_at(self, key: str, at_ms: int) -> Role:
        """The role ``key`` held at Unix ms ``at_ms`` by the statements held now."""
        if self._timeline is None:
            self._timeline = role_timeline(self.bootstrap, self.statements())
        index = bisect.bisect_right(self._timeline, at_ms, key=lambda item: item[0]) - 1
        return self._timeline[max(index, 0)][1].get(key, Role.NONE)

    def _wanted_entries(self) -> dict[tuple[str, str], Any]:
        """(ns, key) -> value of every link entry the deployed manifests declare."""
        version = (self.directory.changes(MANIFESTS_NS), self.directory.changes(DEPLOYMENTS_NS))
        if self._wanted is not None and self._wanted[0] == version:
            return self._wanted[1]
        manifests, _ = deployed_manifests(
            self._bytes_items(MANIFESTS_NS), self._bytes_items(DEPLOYMENTS_NS)
        )
        wanted: dict[tuple[str, str], Any] = {}
        for manifest in manifests:
            for component in manifest.components:
                if component.type is not ComponentType.ACTOR or not component.actor_id:
                    continue
                for spec in link_specs(manifest.name, component):
                    definition = LinkDefinition(
                        component.actor_id, spec.contract_id, spec.link_name, "", dict(spec.values)
                    )
                    wanted[
                        (LINK_NS, link_key(component.actor_id, spec.contract_id, spec.link_name))
                    ] = definition.to_dict()
                    wanted[(LINKS_NS, link_record_key(spec))] = encode_link(spec)
        self._wanted = (version, wanted)
        return wanted

    def _bytes_items(self, namespace: str) -> list[tuple[str, bytes]]:
        return [
            (key, bytes(value) if isinstance(value, bytes | bytearray) else b"\xff")
            for key, value in self.directory.items(namespace)
        ]

    def revalidate(self) -> int:
        """Drop held entries :meth:`check_entry` refuses (after loading from disk); the
        number dropped."""
        dropped = self.directory.revalidate(
            self.check_entry, first=(SECURITY_NS, MANIFESTS_NS, DEPLOYMENTS_NS)
        )
        self.refused_loaded += len(dropped)
        for entry in dropped[:5]:
            log.warning(
                "directory: dropped %s/%s from disk: no valid operator signature or "
                "role for lattice %r",
                entry.ns,
                entry.key,
                self.lattice,
            )
        return len(dropped)

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

    def without_effect(self, statement: Statement) -> str | None:
        """Why ``statement``, added to those held, would change nothing it says
        (None when it takes effect, or already holds).

        Statements apply in order of their ``at_ms`` (the signer's clock), so one
        dated before the statement that decides its subject now, or before its
        signer became admin, is stored and gossiped but never counts: the operator
        must be told, not left believing a key was removed or an actor revoked.
        """
        after = evaluate(self.bootstrap, [*self.statements(), statement])
        if statement.kind is StatementKind.ROLE:
            holds = after.role_of(statement.subject) == Role.parse(statement.value)
        elif statement.kind is StatementKind.ISSUER:
            holds = (statement.subject in after.issuers) == (statement.value == "allow")
        else:
            holds = (statement.subject in after.revoked) == (statement.value == "revoked")
        if holds:
            return None
        later = [
            st.at_ms
            for st in self.statements()
            if st.at_ms >= statement.at_ms
            and (
                (st.kind, st.subject) == (statement.kind, statement.subject)
                or (st.kind is StatementKind.ROLE and st.subject == statement.signer)
            )
        ]
        return (
            f"it is dated {statement.at_ms} (Unix ms, the signer's clock) and would not "
            f"take effect: a statement dated {max(later, default=statement.at_ms)} "
            "decides it (statements apply in the order of their dates); check the "
            "signer's clock and sign it again"
        )

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
            return (
                f"issuer {issuer} of actor {actor_id} is not on lattice {self.lattice!r}'s "
                "allow-list (`meshhost issuer list`)"
            )
        if self.host_issuers and issuer not in self.host_issuers:
            return (
                f"issuer {issuer} of actor {actor_id} is not on this host's allow-list "
                "(`meshhost up --allowed-issuer`)"
            )
        return None

    def check_actor(self, actor_id: str, issuer: str) -> None:
        """Raise ActorRevoked or IssuerNotAllowed when this host must not run the actor."""
        reason = self.refusal(actor_id, issuer)
        if reason is None:
            return
        if "revoked" in reason:
            raise ActorRevoked(f"{reason}; an admin can undo it with `meshhost revoke del`")
        raise IssuerNotAllowed(reason)
