"""Operator keys, roles, and the lattice-wide security state (proto/spec/operators.md).

Theory of operation.  Holding the lattice secret lets a host join and serve;
changing the lattice needs an *operator key* (an nkey, ``O…`` or ``U…``)
with a *role*.  Two signed formats, both pure functions here:

* **Signed control requests** (:func:`request_signing_bytes`): the CLI signs
  the op, its arguments (the target host among them), its key, a wall-clock
  timestamp and a random nonce; the host that applies the op checks the
  signature, the time window and that the nonce is new (``control/authz.py``).
* **Security statements** (:class:`Statement`): "key K has role R", "issuer
  A is allowed", "actor or issuer X is revoked", each signed by an admin and
  stored in the directory's lattice-wide map under the digest of its bytes,
  so a statement can never be overwritten, only superseded by a newer one
  about the same subject.  :func:`evaluate` folds every statement a host
  holds into one :class:`SecurityState`; every host holding the same
  statements computes the same state, whatever order they arrived in.

Trust starts from the *bootstrap admins* (written by ``meshhost lattice
new`` into the secret file as ``# admin O…``).  Statements are applied in
``(at_ms, digest)`` order; one counts only when its signer is an admin at
that point, so an admin can add a new admin and that one can remove the
first (key rotation).  Canonical msgpack (maps with sorted keys, minimal
integers, bin for bytes, float64) makes the signed bytes reproducible by
any implementation.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from meshhost.errors import DecodeError, IdentityError, NkeyError, SignatureError
from meshhost.identity import nkeys
from meshhost.wire import Limits, Reader

__all__ = [
    "ADMIN_LINE",
    "CONTROL_DOMAIN",
    "ENTRY_DOMAIN",
    "NONCE_BYTES",
    "OPERATOR_PREFIXES",
    "STATEMENT_DOMAIN",
    "Role",
    "SecurityState",
    "Statement",
    "StatementKind",
    "bootstrap_admins",
    "canonical",
    "check_operator_key",
    "decode_statement",
    "entry_signing_bytes",
    "evaluate",
    "request_signing_bytes",
    "role_timeline",
    "sign_entry",
    "sign_request",
    "sign_statement",
    "verify_entry",
    "verify_request_signature",
]

CONTROL_DOMAIN = b"meshhost-control/1\x00"
"""Prefix of the bytes a control request signature covers (never valid as msgpack)."""
STATEMENT_DOMAIN = b"meshhost-security/1\x00"
"""Prefix of the bytes a security statement signature covers."""
ENTRY_DOMAIN = b"meshhost-entry/1\x00"
"""Prefix of the bytes an operator signs for one lattice-wide directory entry."""
NONCE_BYTES = 16
MAX_STATEMENT_BYTES = 1024
"""A statement names two keys and a word; anything bigger is not one."""
MAX_CANONICAL_DEPTH = 32
OPERATOR_PREFIXES = (nkeys.Prefix.OPERATOR, nkeys.Prefix.USER)


class Role(enum.IntEnum):
    """What an operator key may do; a higher role may do everything a lower one may.

    ``NONE`` removes a key's role.  Wire names are the lower-case member names.
    """

    NONE = 0
    MEMBER = 1
    DEPLOYER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise IdentityError(f"unknown role {text!r}; expected one of {names}") from None


class StatementKind(enum.Enum):
    """Append-only: these names are in every lattice's directory."""

    ROLE = "role"  # subject: operator key; value: role name
    ISSUER = "issuer"  # subject: issuer account A…; value: "allow" or "none"
    REVOKE = "revoke"  # subject: actor M… or issuer A…; value: "revoked" or "none"


_VALUES = {
    StatementKind.ROLE: frozenset(r.label for r in Role),
    StatementKind.ISSUER: frozenset({"allow", "none"}),
    StatementKind.REVOKE: frozenset({"revoked", "none"}),
}
_SUBJECTS = {
    StatementKind.ROLE: OPERATOR_PREFIXES,
    StatementKind.ISSUER: (nkeys.Prefix.ACCOUNT,),
    StatementKind.REVOKE: (nkeys.Prefix.MODULE, nkeys.Prefix.ACCOUNT),
}


# -- canonical msgpack -----------------------------------------------------------


def canonical(value: Any) -> bytes:
    """The canonical msgpack encoding of ``value`` (maps sorted by their encoded keys).

    Raises DecodeError for anything but None, bool, int (64-bit), float, str,
    bytes, list/tuple and maps with str keys.
    """
    out = bytearray()
    _pack_into(out, value, 0)
    return bytes(out)


def _pack_into(out: bytearray, value: Any, depth: int) -> None:
    if depth > MAX_CANONICAL_DEPTH:
        raise DecodeError(f"value nests deeper than {MAX_CANONICAL_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str | bytes):
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not (-(2**63) <= value < 2**64)
        ):
            raise DecodeError("integer outside the 64-bit range")
        out += msgpack.packb(value, use_bin_type=True)
    elif isinstance(value, float):
        out += b"\xcb" + struct.pack(">d", value)
    elif isinstance(value, list | tuple):
        out += _array_header(len(value))
        for item in value:
            _pack_into(out, item, depth + 1)
    elif isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise DecodeError("map keys must be text")
        items = sorted((msgpack.packb(k, use_bin_type=True), v) for k, v in value.items())
        out += _map_header(len(items))
        for key, item in items:
            out += key
            _pack_into(out, item, depth + 1)
    else:
        raise DecodeError(f"cannot sign a value of type {type(value).__name__}")


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    return b"\xdc" + struct.pack(">H", n) if n < 2**16 else b"\xdd" + struct.pack(">I", n)


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x80 | n])
    return b"\xde" + struct.pack(">H", n) if n < 2**16 else b"\xdf" + struct.pack(">I", n)


# -- keys --------------------------------------------------------------------------


def check_operator_key(key: str) -> str:
    """Return ``key`` when it is an operator (``O…``) or user (``U…``) public key.

    Raises IdentityError naming what was given instead.
    """
    try:
        prefix, _ = nkeys.decode_public(key)
    except NkeyError as exc:
        raise IdentityError(f"{key[:12]!r} is not an operator key: {exc}") from None
    if prefix not in OPERATOR_PREFIXES:
        raise IdentityError(
            f"{key[:12]}… is a {nkeys.seed_kind(prefix)} key; an operator key starts with O "
            "or U (`meshhost keys gen operator`)"
        )
    return key


# -- signed control requests -------------------------------------------------------


def request_signing_bytes(
    lattice: str, op: str, args: Mapping[str, Any], key: str, ts_ms: int, nonce: bytes
) -> bytes:
    """The exact bytes an operator signs for one control request."""
    body = canonical([op, dict(args), key, ts_ms, bytes(nonce)])
    return CONTROL_DOMAIN + lattice.encode("utf-8") + b"\x00" + body


def sign_request(
    signer: nkeys.KeyPair,
    lattice: str,
    op: str,
    args: Mapping[str, Any],
    *,
    ts_ms: int,
    nonce: bytes,
) -> dict[str, Any]:
    """The ``auth`` map of a control request signed by ``signer``."""
    if len(nonce) != NONCE_BYTES:
        raise IdentityError(f"a control nonce is {NONCE_BYTES} bytes")
    key = signer.public_key
    signature = signer.sign(request_signing_bytes(lattice, op, args, key, ts_ms, nonce))
    return {"key": key, "ts_ms": ts_ms, "nonce": bytes(nonce), "sig": signature}


def verify_request_signature(
    lattice: str, op: str, args: Mapping[str, Any], auth: Any
) -> tuple[str, int, bytes]:
    """Check ``auth``'s shape and signature; return ``(key, ts_ms, nonce)``.

    Raises DecodeError for a malformed map and SignatureError (an
    IdentityError) when the signature does not verify.  Freshness and replay
    are the caller's (``control/authz.py``).
    """
    if not isinstance(auth, Mapping):
        raise DecodeError("control 'auth' must be a map")
    key, ts_ms, nonce, sig = (auth.get(n) for n in ("key", "ts_ms", "nonce", "sig"))
    if (
        not isinstance(key, str)
        or type(ts_ms) is not int
        or not isinstance(nonce, bytes)
        or not isinstance(sig, bytes)
    ):
        raise DecodeError("control 'auth' needs key (text), ts_ms (int), nonce and sig (bytes)")
    if len(nonce) != NONCE_BYTES or len(sig) != 64:
        raise DecodeError(f"control 'auth' nonce must be {NONCE_BYTES} bytes and sig 64")
    check_operator_key(key)
    nkeys.verify(key, request_signing_bytes(lattice, op, args, key, ts_ms, nonce), sig)
    return key, ts_ms, nonce


# -- signed directory entries ------------------------------------------------------


def entry_signing_bytes(
    lattice: str, ns: str, key: str, stamp: int, writer: str, value: bytes | None
) -> bytes:
    """The bytes an operator signs for one lattice-wide entry (``operators.md``).

    ``stamp`` is the packed HLC stamp, ``writer`` the host id in it, ``value`` the
    msgpack encoding of the value (the directory's ``encode_value``) or None for a
    tombstone.
    """
    body = canonical([ns, key, stamp, writer, value])
    return ENTRY_DOMAIN + lattice.encode("utf-8") + b"\x00" + body


def sign_entry(
    signer: nkeys.KeyPair,
    lattice: str,
    ns: str,
    key: str,
    stamp: int,
    writer: str,
    value: bytes | None,
) -> bytes:
    """The 64-byte signature of ``signer`` over one entry."""
    check_operator_key(signer.public_key)
    return signer.sign(entry_signing_bytes(lattice, ns, key, stamp, writer, value))


def verify_entry(
    lattice: str,
    signer: str,
    signature: bytes,
    ns: str,
    key: str,
    stamp: int,
    writer: str,
    value: bytes | None,
) -> bool:
    """Whether ``signature`` is ``signer``'s (an operator key) over the entry; never raises."""
    if not isinstance(signature, bytes) or len(signature) != 64:
        return False
    try:
        check_operator_key(signer)
        nkeys.verify(signer, entry_signing_bytes(lattice, ns, key, stamp, writer, value), signature)
    except (IdentityError, DecodeError):
        return False
    return True


# -- security statements -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One signed fact about the lattice's security, as stored in the directory."""

    kind: StatementKind
    subject: str
    value: str
    at_ms: int
    signer: str
    signature: bytes = field(repr=False)
    body: bytes = field(repr=False)
    """The canonical bytes signed (after the domain and lattice name)."""

    @property
    def digest(self) -> str:
        """The directory key: hex SHA-256 of the body and signature, 32 characters."""
        return hashlib.sha256(self.body + self.signature).hexdigest()[:32]

    def encoded(self) -> bytes:
        """The stored form: canonical ``[body, signature]``."""
        return canonical([self.body, self.signature])


def _statement_body(
    kind: StatementKind, subject: str, value: str, at_ms: int, signer: str
) -> bytes:
    return canonical(
        {
            "v": 1,
            "kind": kind.value,
            "subject": subject,
            "value": value,
            "at_ms": at_ms,
            "signer": signer,
        }
    )


def _check_statement_fields(kind: StatementKind, subject: str, value: str) -> None:
    if value not in _VALUES[kind]:
        raise IdentityError(
            f"a {kind.value} statement's value is one of "
            f"{', '.join(sorted(_VALUES[kind]))}, not {value!r}"
        )
    try:
        prefix, _ = nkeys.decode_public(subject)
    except NkeyError as exc:
        raise IdentityError(f"{subject[:12]!r} is not a key: {exc}") from None
    if prefix not in _SUBJECTS[kind]:
        wanted = " or ".join(p.letter + "…" for p in _SUBJECTS[kind])
        what = {
            StatementKind.ROLE: "an operator role is given to an operator key",
            StatementKind.ISSUER: "an allowed issuer is an account key",
            StatementKind.REVOKE: "a revocation names an actor or issuer key",
        }[kind]
        called = {
            nkeys.Prefix.MODULE: "an actor",
            nkeys.Prefix.SERVER: "a host",
            nkeys.Prefix.ACCOUNT: "an account",
            nkeys.Prefix.OPERATOR: "an operator",
            nkeys.Prefix.USER: "a user",
        }.get(prefix, f"a {prefix.name.lower()}")
        raise IdentityError(f"{what} ({wanted}), and {subject[:12]}… is {called} key")


def sign_statement(
    signer: nkeys.KeyPair, lattice: str, kind: StatementKind, subject: str, value: str, at_ms: int
) -> Statement:
    """A new statement signed by ``signer``; raises IdentityError for a bad subject/value."""
    check_operator_key(signer.public_key)
    _check_statement_fields(kind, subject, value)
    body = _statement_body(kind, subject, value, at_ms, signer.public_key)
    signature = signer.sign(STATEMENT_DOMAIN + lattice.encode("utf-8") + b"\x00" + body)
    return Statement(kind, subject, value, at_ms, signer.public_key, signature, body)


_wire = Reader(DecodeError)
_STATEMENT_LIMITS = Limits(max_bytes=MAX_STATEMENT_BYTES, max_depth=MAX_CANONICAL_DEPTH + 1)


def decode_statement(lattice: str, data: Any) -> Statement:
    """Parse and verify a stored statement; raises DecodeError or SignatureError."""
    if not isinstance(data, bytes) or len(data) > MAX_STATEMENT_BYTES:
        raise DecodeError(f"a security statement is at most {MAX_STATEMENT_BYTES} bytes of msgpack")
    outer = _wire.unpack(data, _STATEMENT_LIMITS, "security statement")
    if type(outer) is not list or len(outer) != 2:
        raise DecodeError("a security statement is canonical msgpack [body, sig]")
    body = _wire.binary(outer[0], "security statement body", MAX_STATEMENT_BYTES)
    signature = _wire.binary(outer[1], "security statement signature", MAX_STATEMENT_BYTES)
    fields = _wire.unpack(body, _STATEMENT_LIMITS, "security statement body")
    if not isinstance(fields, dict) or fields.get("v") != 1:
        raise DecodeError("a security statement is [body, sig] with a version-1 body")
    try:
        kind = StatementKind(fields.get("kind"))
    except ValueError:
        raise DecodeError(f"unknown statement kind {fields.get('kind')!r}") from None
    subject, value, at_ms, signer = (fields.get(n) for n in ("subject", "value", "at_ms", "signer"))
    if not (
        isinstance(subject, str)
        and isinstance(value, str)
        and type(at_ms) is int
        and isinstance(signer, str)
    ):
        raise DecodeError("a statement needs subject, value, signer (text) and at_ms (int)")
    if canonical(fields) != body or canonical([body, signature]) != data:
        raise DecodeError("a security statement is not in canonical form")
    try:
        _check_statement_fields(kind, subject, value)
        check_operator_key(signer)
    except IdentityError as exc:
        raise DecodeError(str(exc)) from None
    nkeys.verify(signer, STATEMENT_DOMAIN + lattice.encode("utf-8") + b"\x00" + body, signature)
    return Statement(kind, subject, value, at_ms, signer, signature, body)


@dataclass(frozen=True, slots=True)
class SecurityState:
    """The lattice's operators, allowed issuers and revocations, as one host computes them."""

    bootstrap: frozenset[str]
    roles: Mapping[str, Role]
    """Operator key -> role (bootstrap admins included, removed keys absent)."""
    issuers: frozenset[str]
    """Issuer accounts allowed lattice-wide (empty: no lattice-wide restriction)."""
    revoked: frozenset[str]
    """Revoked actor (M…) and issuer (A…) keys."""
    ignored: int = 0
    """Statements whose signer was not an admin when they were made."""

    @property
    def open(self) -> bool:
        """No admin is known: this lattice predates operator keys; any secret holder may act."""
        return not self.bootstrap and not any(r == Role.ADMIN for r in self.roles.values())

    def role_of(self, key: str) -> Role:
        return self.roles.get(key, Role.NONE)

    def admins(self) -> list[str]:
        return sorted(k for k, r in self.roles.items() if r == Role.ADMIN)


def evaluate(bootstrap: Iterable[str], statements: Iterable[Statement]) -> SecurityState:
    """Fold verified statements into a :class:`SecurityState`.

    Deterministic: statements are applied in ``(at_ms, digest)`` order and one
    counts only if its signer is an admin at that point; the latest counting
    statement about a (kind, subject) decides.
    """
    boot = frozenset(bootstrap)
    roles: dict[str, Role] = {key: Role.ADMIN for key in boot}
    issuers: dict[str, bool] = {}
    revoked: dict[str, bool] = {}
    ignored = 0
    for st in sorted(statements, key=lambda s: (s.at_ms, s.digest)):
        if roles.get(st.signer) != Role.ADMIN:
            ignored += 1
            continue
        if st.kind is StatementKind.ROLE:
            role = Role.parse(st.value)
            if role == Role.NONE:
                roles.pop(st.subject, None)
            else:
                roles[st.subject] = role
        elif st.kind is StatementKind.ISSUER:
            issuers[st.subject] = st.value == "allow"
        else:
            revoked[st.subject] = st.value == "revoked"
    return SecurityState(
        bootstrap=boot,
        roles=roles,
        issuers=frozenset(k for k, on in issuers.items() if on),
        revoked=frozenset(k for k, on in revoked.items() if on),
        ignored=ignored,
    )


def role_timeline(
    bootstrap: Iterable[str], statements: Iterable[Statement]
) -> list[tuple[int, Mapping[str, Role]]]:
    """Who held which role when: ``[(at_ms, roles from then on), ...]`` ascending.

    The first element is ``(-1, bootstrap admins)``; each later one follows a
    counting ``role`` statement, in :func:`evaluate`'s order and by its rule (a
    statement counts only if its signer is admin at that point).
    """
    roles: dict[str, Role] = {key: Role.ADMIN for key in bootstrap}
    timeline: list[tuple[int, Mapping[str, Role]]] = [(-1, dict(roles))]
    for st in sorted(statements, key=lambda s: (s.at_ms, s.digest)):
        if roles.get(st.signer) != Role.ADMIN or st.kind is not StatementKind.ROLE:
            continue
        role = Role.parse(st.value)
        if role == Role.NONE:
            roles.pop(st.subject, None)
        else:
            roles[st.subject] = role
        timeline.append((st.at_ms, dict(roles)))
    return timeline


ADMIN_LINE = "# admin "
"""A secret file line naming a bootstrap admin key: ``# admin O…`` (a comment to
readers that predate operator keys)."""


def bootstrap_admins(secret_text: str) -> list[str]:
    """The bootstrap admin keys named by ``# admin O…`` lines of a secret file.

    Raises IdentityError for such a line that does not hold an operator key.
    """
    keys = []
    for number, line in enumerate(secret_text.splitlines(), start=1):
        line = line.strip()
        if line.startswith(ADMIN_LINE):
            try:
                keys.append(check_operator_key(line[len(ADMIN_LINE) :].strip()))
            except IdentityError as exc:
                raise IdentityError(f"line {number}: {exc}") from None
    return keys


def statement_errors() -> tuple[type[Exception], ...]:
    """What :func:`decode_statement` raises for a statement to drop."""
    return (DecodeError, SignatureError, NkeyError)
