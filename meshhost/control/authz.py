"""Who may run which control op: the role table and the request check (sans-IO).

Every control op declares the role it needs in :data:`OP_ROLES`; an op that
is not in the table needs ``admin`` (deny by default), so a new op must
declare itself here (read-only ops as ``None``: the lattice secret is
enough).  :class:`Authorizer` checks one request: its signature
(``identity/operators.py``), that its timestamp is within
:data:`MAX_SKEW_MS` of this host's clock, that its nonce was not seen
before (replay), and that the signer's role is high enough in the current
:class:`~meshhost.identity.operators.SecurityState`.  The host that *applies*
an op checks it, whether it came from the local CLI or forwarded by a peer.

Time comes in as ``now_ms``; nothing here reads a clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from meshhost.errors import DecodeError, IdentityError, NotAuthorized
from meshhost.identity.operators import (
    Role,
    SecurityState,
    verify_request_signature,
)

__all__ = ["MAX_SKEW_MS", "OP_ROLES", "Authorizer", "NotAuthorized", "required_role"]

MAX_SKEW_MS = 120_000
"""A signed request older or newer than this (host clock vs signer clock) is refused:
bounds how long its nonce must be remembered."""
MAX_NONCES = 100_000
"""Nonces remembered at once; past it, new signed requests are refused until some age out
(forgetting a fresh nonce early would let its request be replayed)."""

OP_ROLES: dict[str, Role | None] = {
    # read-only (or data plane): the lattice secret is enough
    "hosts": None,
    "inventory": None,
    "link_list": None,
    "config_get": None,
    "call": None,
    "events": None,
    "app_list": None,
    "app_get": None,
    "app_status": None,
    "app_diff": None,
    "auth_info": None,
    "security_list": None,
    "metrics": None,
    "trace": None,
    "top": None,
    "version": None,
    "spans": None,
    "keyring_list": None,
    # change what runs where
    "start": Role.DEPLOYER,
    "stop": Role.DEPLOYER,
    "scale": Role.DEPLOYER,
    "apply": Role.DEPLOYER,
    "app_delete": Role.DEPLOYER,
    "host_stop": Role.DEPLOYER,
    "label_put": Role.DEPLOYER,
    "label_del": Role.DEPLOYER,
    "labels": Role.DEPLOYER,
    # change what actors may do, and who may do what
    "link_put": Role.ADMIN,
    "link_del": Role.ADMIN,
    "config_put": Role.ADMIN,
    "config_del": Role.ADMIN,
    "security_put": Role.ADMIN,
    # the lattice secret's rotation (`lattice rotate`); listing key ids reveals nothing
    "keyring_install": Role.ADMIN,
    "keyring_use": Role.ADMIN,
    "keyring_remove": Role.ADMIN,
}
"""Op -> the least role that may run it (None: no operator key needed)."""


def required_role(op: str) -> Role | None:
    """The role ``op`` needs; ops missing from :data:`OP_ROLES` need admin."""
    return OP_ROLES.get(op, Role.ADMIN)


def _hint(role: Role) -> str:
    return (
        f"an admin grants it with `meshhost operator add KEY --role {role.label}`; "
        "the CLI signs with --operator-key FILE, $MESHHOST_OPERATOR_KEY, or the admin key "
        "`meshhost lattice new` stored beside the lattice secret"
    )


class Authorizer:
    """Checks signed control requests for one lattice on one host."""

    def __init__(
        self, lattice: str, *, max_skew_ms: int = MAX_SKEW_MS, max_nonces: int = MAX_NONCES
    ) -> None:
        self.lattice = lattice
        self.max_skew_ms = max_skew_ms
        self.max_nonces = max_nonces
        self._nonces: OrderedDict[tuple[str, bytes], int] = OrderedDict()
        self.refused = 0

    def check(
        self, op: str, args: Mapping[str, Any], auth: Any, state: SecurityState, now_ms: int
    ) -> str | None:
        """Return the signer's key (None for an op that needs no role, or an open lattice).

        Raises NotAuthorized naming the role missing and how to get it.
        """
        try:
            return self._check(op, args, auth, state, now_ms)
        except NotAuthorized:
            self.refused += 1
            raise

    def _check(
        self, op: str, args: Mapping[str, Any], auth: Any, state: SecurityState, now_ms: int
    ) -> str | None:
        needed = required_role(op)
        if needed is None or state.open:
            return None
        if auth is None:
            raise NotAuthorized(
                f"{op!r} needs role {needed.label}: this request was not signed by an "
                f"operator key; {_hint(needed)}"
            )
        try:
            key, ts_ms, nonce = verify_request_signature(self.lattice, op, args, auth)
        except (DecodeError, IdentityError) as exc:
            raise NotAuthorized(
                f"{op!r} refused: the request's signature is not valid "
                f"for lattice {self.lattice!r} ({exc})"
            ) from None
        if abs(ts_ms - now_ms) > self.max_skew_ms:
            raise NotAuthorized(
                f"{op!r} refused: signed {abs(ts_ms - now_ms) / 1000:.0f} s away from this "
                f"host's clock (at most {self.max_skew_ms // 1000} s); check both clocks"
            )
        role = state.role_of(key)
        if role < needed:
            held = f"has role {role.label}" if role != Role.NONE else "has no role"
            raise NotAuthorized(
                f"{op!r} needs role {needed.label}: operator {key} {held} in lattice "
                f"{self.lattice!r}; {_hint(needed)}"
            )
        self._remember(key, nonce, ts_ms, now_ms, op)
        return key

    def _remember(self, key: str, nonce: bytes, ts_ms: int, now_ms: int, op: str) -> None:
        while self._nonces:  # forget nonces whose requests can no longer pass the window
            oldest_key, oldest_ts = next(iter(self._nonces.items()))
            if oldest_ts >= now_ms - self.max_skew_ms:
                break
            del self._nonces[oldest_key]
        if (key, nonce) in self._nonces:
            # "received", not "applied": the first copy may itself have been refused
            # later (e.g. asked for its entries' signatures), yet its nonce is spent.
            raise NotAuthorized(
                f"{op!r} refused: this signed request was already received "
                "here (a replay); sign a new one"
            )
        if len(self._nonces) >= self.max_nonces:
            raise NotAuthorized(
                f"{op!r} refused: too many signed requests in the last "
                f"{self.max_skew_ms // 1000} s; try again shortly"
            )
        # kept in arrival order; entries are dropped by their own timestamp, so a
        # request from a clock behind ours may linger a little longer: harmless
        self._nonces[(key, nonce)] = max(ts_ms, now_ms)
