"""wascap-compatible signed claims for actors, as wasmCloud 0.x writes them.

A claims token is a JWT: ``base64url(header) . base64url(claims) .
base64url(ed25519 signature)``, all base64url without padding, the signature
taken over the ASCII bytes ``header.claims`` by the issuer's account key.  It
is embedded in the module as a custom section named ``wasmcloud_jwt``
(wascap < 0.9 used ``jwt``; both are read, only ``wasmcloud_jwt`` is written).

The JSON is byte-for-byte what wascap's serde structs produce (field order,
omitted ``None`` fields, compact separators), so a token re-encoded here from
the same values has the same signature input as wasmCloud's.  The module hash
(``wascap.hash``) is the upper-case hex SHA-256 of the module with every
``jwt``/``wasmcloud_jwt`` custom section removed and every other byte kept as
it is; a verifier also accepts wascap >= 0.10.1's variant, which re-emits each
remaining section with a minimal LEB128 size first (``proto/spec/claims.md``).

Pure functions: time (``now``) and randomness (``random_bytes``) are passed
in.  Every decoder bounds its input and raises only ClaimsError subclasses or
WasmFormatError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from meshhost.errors import (
    ClaimsExpired,
    ClaimsHashMismatch,
    ClaimsMalformed,
    ClaimsMissing,
    ClaimsModuleMalformed,
    ClaimsNotYetValid,
    ClaimsSignatureInvalid,
    IssuerNotAllowed,
    LocalProtocolError,
    NkeyError,
    NkeyPrefixError,
    SignatureError,
    WasmFormatError,
)
from meshhost.identity import legacyhash, nkeys, wasm
from meshhost.identity.nkeys import KeyPair, Prefix

__all__ = [
    "CLAIMS_SECTION",
    "CLAIMS_SECTION_NAMES",
    "HEADER",
    "LEGACY_CLAIMS_SECTION",
    "MAX_TOKEN_BYTES",
    "WASCAP_REVISION",
    "ActorClaims",
    "check_times",
    "decode_token",
    "encode_token",
    "extract_claims",
    "find_token",
    "legacy_module_hash",
    "make_jti",
    "module_hash",
    "normalize_call_alias",
    "sign_module",
    "verify_module",
    "verify_token",
    "wascap_module_hash",
]

CLAIMS_SECTION = "wasmcloud_jwt"
LEGACY_CLAIMS_SECTION = "jwt"  # written by wascap before 0.9
CLAIMS_SECTION_NAMES = wasm.CLAIMS_SECTION_NAMES  # (CLAIMS_SECTION, LEGACY_CLAIMS_SECTION)
HEADER_TYPE = "jwt"
HEADER_ALGORITHM = "Ed25519"
# serde_json output of wascap's ClaimsHeader {typ, alg}; fixed, so fixed bytes.
HEADER = '{"typ":"jwt","alg":"Ed25519"}'
WASCAP_REVISION = 3  # what we write; wascap's WASCAP_INTERNAL_REVISION
MIN_HASHED_REVISION = 3  # wascap checks the module hash only from this revision on
# wascap allows no clock skew: a token is expired one second after exp, as in
# wasmCloud.  Callers that want slack pass leeway_s.
DEFAULT_LEEWAY_S = 0.0
# Real tokens are 0.5-1.5 KiB; 64 KiB bounds every allocation while leaving
# room for long capability and tag lists.
MAX_TOKEN_BYTES = 64 * 1024
# jti is a NATS NUID in wascap: 22 characters of base62.
JTI_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
JTI_LEN = 22
SIGNATURE_LEN = 64
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class ActorClaims:
    """Decoded wascap actor claims. Times are Unix seconds.

    ``caps_listed``/``tags_listed`` record whether the token carried the
    ``caps``/``tags`` arrays at all (wascap omits them when ``None``), so that
    re-encoding reproduces the original bytes.  ``revision`` is None when the
    token has no ``wascap_revision`` (wascap < 0.9).  ``token`` is the raw JWT.
    """

    subject: str
    issuer: str
    name: str | None
    caps: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    rev: int | None = None
    ver: str | None = None
    call_alias: str | None = None
    provider: bool = False
    issued_at: int = 0
    expires: int | None = None
    not_before: int | None = None
    module_hash: str = ""
    jti: str = ""
    revision: int | None = WASCAP_REVISION
    token: str = ""
    caps_listed: bool = True
    tags_listed: bool = True

    def to_json(self) -> dict[str, Any]:
        """The claims as a plain dict (for ``--json`` output and the directory)."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "name": self.name,
            "caps": list(self.caps),
            "tags": list(self.tags),
            "rev": self.rev,
            "ver": self.ver,
            "call_alias": self.call_alias,
            "provider": self.provider,
            "issued_at": self.issued_at,
            "expires": self.expires,
            "not_before": self.not_before,
            "module_hash": self.module_hash,
            "jti": self.jti,
            "revision": self.revision,
        }


# --- helpers -----------------------------------------------------------------


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64url_decode(text: str, what: str) -> bytes:
    """Strict base64url without padding, as data-encoding's BASE64URL_NOPAD."""
    if not _B64URL.fullmatch(text):
        raise ClaimsMalformed(f"token {what} is not base64url (A-Z a-z 0-9 - _, no padding)")
    if len(text) % 4 == 1:
        raise ClaimsMalformed(f"token {what} has an impossible base64 length {len(text)}")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ClaimsMalformed(f"token {what} is not valid base64url") from None
    if _b64url_encode(raw) != text:
        raise ClaimsMalformed(f"token {what} has non-zero trailing bits (not canonical base64url)")
    return raw


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate field {key!r}")
        result[key] = value
    return result


def _json_segment(text: str, what: str) -> dict[str, Any]:
    raw = _b64url_decode(text, what)
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ClaimsMalformed(f"token {what} is not UTF-8") from None
    try:
        value = json.loads(
            decoded,
            object_pairs_hook=_pairs_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as exc:
        raise ClaimsMalformed(f"token {what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ClaimsMalformed(f"token {what} must be a JSON object, not {type(value).__name__}")
    return value


def _field(obj: dict[str, Any], key: str, kind: str, *, required: bool, where: str) -> Any:
    """Read one field with serde's typing rules; None for absent or null optionals."""
    value = obj.get(key)
    if value is None:
        if required:
            raise ClaimsMalformed(f"{where} is missing required field {key!r}")
        return None
    if kind == "str":
        if not isinstance(value, str):
            raise ClaimsMalformed(f"{where} field {key!r} must be a string")
    elif kind in ("u64", "u32", "i32"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ClaimsMalformed(f"{where} field {key!r} must be an integer")
        low, high = {"u64": (0, U64_MAX), "u32": (0, U32_MAX), "i32": (I32_MIN, I32_MAX)}[kind]
        if not low <= value <= high:
            raise ClaimsMalformed(f"{where} field {key!r} is out of range for {kind}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ClaimsMalformed(f"{where} field {key!r} must be true or false")
    elif kind == "strs":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ClaimsMalformed(f"{where} field {key!r} must be a list of strings")
        value = tuple(value)
    return value


def _check_key(text: str, allowed: Sequence[Prefix], what: str) -> None:
    try:
        prefix, _ = nkeys.decode_public(text)
    except NkeyError as exc:
        raise ClaimsMalformed(f"{what} {text[:12]!r}... is not a valid nkey: {exc}") from None
    if prefix not in allowed:
        letters = " or ".join(f"{p.letter}... ({p.name.lower()})" for p in allowed)
        raise ClaimsMalformed(f"{what} must be {letters}, got a {prefix.name.lower()} key")


def normalize_call_alias(alias: str) -> str:
    """wascap's call-alias normalisation: lower case, trimmed, ASCII only,
    spaces, ``-`` and ``.`` become ``_``."""
    out = alias.lower().strip()
    out = "".join(c for c in out if c.isascii())
    for char in " -.":
        out = out.replace(char, "_")
    return out


def make_jti(random_bytes: Callable[[int], bytes] | None = None) -> str:
    """A 22-character base62 token id, the shape of wascap's NUIDs."""
    source = random_bytes or secrets.token_bytes
    raw = source(JTI_LEN)
    if len(raw) < JTI_LEN:
        raise ValueError("random_bytes returned too few bytes")
    # 62 does not divide 256; the tiny bias is irrelevant for a unique id.
    return "".join(JTI_ALPHABET[b % len(JTI_ALPHABET)] for b in raw[:JTI_LEN])


# --- tokens ------------------------------------------------------------------


def _claims_json(claims: ActorClaims) -> str:
    """Serialise exactly as serde_json does wascap's Claims<Actor> (field order matters)."""
    meta: dict[str, Any] = {}
    if claims.name is not None:
        meta["name"] = claims.name
    meta["hash"] = claims.module_hash
    if claims.tags_listed:
        meta["tags"] = list(claims.tags)
    if claims.caps_listed:
        meta["caps"] = list(claims.caps)
    if claims.rev is not None:
        meta["rev"] = claims.rev
    if claims.ver is not None:
        meta["ver"] = claims.ver
    if claims.call_alias is not None:
        meta["call_alias"] = claims.call_alias
    meta["prov"] = claims.provider
    body: dict[str, Any] = {}
    if claims.expires is not None:
        body["exp"] = claims.expires
    body["jti"] = claims.jti
    body["iat"] = claims.issued_at
    body["iss"] = claims.issuer
    body["sub"] = claims.subject
    if claims.not_before is not None:
        body["nbf"] = claims.not_before
    body["wascap"] = meta
    if claims.revision is not None:
        body["wascap_revision"] = claims.revision
    # serde_json: compact, UTF-8 kept as is, control characters escaped the same way.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def encode_token(claims: ActorClaims, issuer: KeyPair) -> str:
    """Sign ``claims`` with the account key ``issuer``; return the JWT.

    ``claims.issuer`` must be ``issuer``'s public key.  The ``token`` field of
    ``claims`` is ignored.
    """
    if issuer.prefix != Prefix.ACCOUNT:
        raise NkeyPrefixError(
            f"claims are issued by an account key (A...), not a {issuer.prefix.name.lower()} key"
        )
    if claims.issuer != issuer.public_key:
        raise NkeyPrefixError("claims.issuer is not the public key of the signing issuer")
    try:
        payload = _claims_json(claims).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ClaimsMalformed(f"claims contain text that is not valid Unicode: {exc}") from None
    signing_input = _b64url_encode(HEADER.encode("ascii")) + "." + _b64url_encode(payload)
    signature = issuer.sign(signing_input.encode("ascii"))
    token = signing_input + "." + _b64url_encode(signature)
    if len(token) > MAX_TOKEN_BYTES:
        raise ClaimsMalformed(
            f"token would be {len(token)} bytes, over the {MAX_TOKEN_BYTES}-byte limit: "
            "use fewer or shorter caps and tags"
        )
    return token


def _split(token: str | bytes) -> tuple[str, str, str]:
    if isinstance(token, bytes | bytearray):
        if len(token) > MAX_TOKEN_BYTES:
            raise ClaimsMalformed(
                f"token is {len(token)} bytes, over the {MAX_TOKEN_BYTES}-byte limit"
            )
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise ClaimsMalformed("token is not ASCII text") from None
    if not isinstance(token, str):
        raise ClaimsMalformed(f"a token must be text, not {type(token).__name__}")
    if len(token) > MAX_TOKEN_BYTES:
        raise ClaimsMalformed(f"token is {len(token)} bytes, over the {MAX_TOKEN_BYTES}-byte limit")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ClaimsMalformed(f"invalid token format: expected 3 segments, found {len(parts)}")
    return parts[0], parts[1], parts[2]


def decode_token(token: str | bytes) -> ActorClaims:
    """Parse a wascap actor JWT (text, or ASCII bytes) without checking its signature.

    Checks the header (``typ`` "jwt", ``alg`` "Ed25519"), the JSON types with
    serde's rules (unknown fields ignored, duplicates rejected), that
    ``iss`` is an account key and ``sub`` a module (or service) key.
    Raises ClaimsMalformed naming the problem.
    """
    head, body, sig = _split(token)
    header = _json_segment(head, "header")
    alg = header.get("alg")
    typ = header.get("typ")
    if alg != HEADER_ALGORITHM:
        raise ClaimsMalformed(f"unsupported token algorithm {alg!r}: wascap tokens use 'Ed25519'")
    if typ != HEADER_TYPE:
        raise ClaimsMalformed(f"unsupported token type {typ!r}: wascap tokens use 'jwt'")
    signature = _b64url_decode(sig, "signature")
    if len(signature) != SIGNATURE_LEN:
        raise ClaimsMalformed(f"signature is {len(signature)} bytes, an Ed25519 one is 64")
    claims = _json_segment(body, "claims")
    where = "claims"
    jti = _field(claims, "jti", "str", required=True, where=where)
    iat = _field(claims, "iat", "u64", required=True, where=where)
    iss = _field(claims, "iss", "str", required=True, where=where)
    sub = _field(claims, "sub", "str", required=True, where=where)
    exp = _field(claims, "exp", "u64", required=False, where=where)
    nbf = _field(claims, "nbf", "u64", required=False, where=where)
    revision = _field(claims, "wascap_revision", "u32", required=False, where=where)
    meta = claims.get("wascap")
    if meta is None:
        raise ClaimsMalformed(
            "token has no 'wascap' actor metadata (very old waSCC format, or not an actor token)"
        )
    if not isinstance(meta, dict):
        raise ClaimsMalformed("claims field 'wascap' must be an object")
    where = "wascap metadata"
    module_hash = _field(meta, "hash", "str", required=True, where=where)
    name = _field(meta, "name", "str", required=False, where=where)
    tags = _field(meta, "tags", "strs", required=False, where=where)
    caps = _field(meta, "caps", "strs", required=False, where=where)
    rev = _field(meta, "rev", "i32", required=False, where=where)
    ver = _field(meta, "ver", "str", required=False, where=where)
    call_alias = _field(meta, "call_alias", "str", required=False, where=where)
    provider = _field(meta, "prov", "bool", required=False, where=where)
    _check_key(iss, (Prefix.ACCOUNT,), "issuer (iss)")
    _check_key(sub, (Prefix.MODULE, Prefix.SERVICE), "subject (sub)")
    return ActorClaims(
        subject=sub,
        issuer=iss,
        name=name,
        caps=caps or (),
        tags=tags or (),
        rev=rev,
        ver=ver,
        call_alias=call_alias,
        provider=bool(provider),
        issued_at=iat,
        expires=exp,
        not_before=nbf,
        module_hash=module_hash,
        jti=jti,
        revision=revision,
        token=".".join((head, body, sig)),
        caps_listed=caps is not None,
        tags_listed=tags is not None,
    )


def check_times(claims: ActorClaims, *, now: float, leeway_s: float = DEFAULT_LEEWAY_S) -> None:
    """Raise ClaimsExpired / ClaimsNotYetValid, allowing ``leeway_s`` of clock skew.

    With no leeway this is wascap's rule: expired when ``exp < now``, not yet
    valid when ``now < nbf``.
    """
    if claims.expires is not None and now > claims.expires + leeway_s:
        raise ClaimsExpired(
            f"claims of {claims.subject} expired at {claims.expires} "
            f"(now {int(now)}): re-sign the actor"
        )
    if claims.not_before is not None and now + leeway_s < claims.not_before:
        raise ClaimsNotYetValid(
            f"claims of {claims.subject} are not valid before {claims.not_before} (now {int(now)})"
        )


def _check_signature(token: str | bytes) -> ActorClaims:
    """Decode ``token`` and check its Ed25519 signature by its issuer."""
    claims = decode_token(token)
    head, body, sig = _split(token)
    try:
        nkeys.verify(
            claims.issuer, f"{head}.{body}".encode("ascii"), _b64url_decode(sig, "signature")
        )
    except SignatureError:
        raise ClaimsSignatureInvalid(
            f"token signature does not verify against its issuer {claims.issuer}: "
            "the claims were altered or signed by another key"
        ) from None
    return claims


def _check_issuer(claims: ActorClaims, allowed_issuers: Iterable[str]) -> None:
    allowed = tuple(allowed_issuers)
    if allowed and claims.issuer not in allowed:
        raise IssuerNotAllowed(
            f"issuer {claims.issuer} is not on this host's allowed-issuers list "
            f"({len(allowed)} allowed); add it to the list or sign with an allowed account"
        )


def verify_token(
    token: str | bytes,
    *,
    now: float,
    allowed_issuers: Iterable[str] = (),
    leeway_s: float = DEFAULT_LEEWAY_S,
) -> ActorClaims:
    """Decode ``token`` and check its signature, issuer and validity window.

    Does not check the module hash (see :func:`verify_module`).  An empty
    ``allowed_issuers`` allows any issuer with a valid signature.
    """
    claims = _check_signature(token)
    _check_issuer(claims, allowed_issuers)
    check_times(claims, now=now, leeway_s=leeway_s)
    return claims


# --- modules -----------------------------------------------------------------


def module_hash(module: bytes) -> str:
    """The module hash meshhost signs: upper-case hex SHA-256 of the module with
    its ``jwt``/``wasmcloud_jwt`` sections cut out and every other byte kept as
    it is (padded LEB128 section sizes included)."""
    stripped = wasm.strip_custom(module, CLAIMS_SECTION_NAMES)
    return hashlib.sha256(stripped).hexdigest().upper()


def wascap_module_hash(module: bytes) -> str:
    """wascap >= 0.10.1's module hash: like :func:`module_hash`, but each
    remaining section re-emitted with a minimal size first.  Equals
    :func:`module_hash` unless some section size is padded."""
    canonical = wasm.canonical_without(module, CLAIMS_SECTION_NAMES)
    return hashlib.sha256(canonical).hexdigest().upper()


def legacy_module_hash(module: bytes) -> str | None:
    """wascap 0.9's module hash (tokens of revision 2), or None where wascap 0.9
    could not compute one (a component, a data section without segments)."""
    if wasm.binary_kind(module) is not wasm.BinaryKind.MODULE:
        return None
    try:
        hashed = legacyhash.wascap09_hash_input(module)
    except WasmFormatError:
        return None
    return hashlib.sha256(hashed).hexdigest().upper()


def _module_error(exc: WasmFormatError) -> ClaimsModuleMalformed:
    """The same failure, typed as both ClaimsMalformed and WasmFormatError."""
    err = ClaimsModuleMalformed(f"cannot read claims: {exc}")
    err.offset = exc.offset
    err.reason = exc.reason or str(exc)
    return err


def find_token(module: bytes) -> tuple[str, str]:
    """Return ``(section_name, token)`` of the module's claims.

    Prefers ``wasmcloud_jwt`` over the legacy ``jwt`` (a module re-signed by
    wascap 0.9.0 can carry both, the old one first).  Raises ClaimsMissing if
    neither is there, ClaimsMalformed if the payload is not a bounded UTF-8
    string.
    """
    try:
        present = [(s.name, s) for s in wasm.sections(module) if s.name in CLAIMS_SECTION_NAMES]
    except WasmFormatError as exc:
        raise _module_error(exc) from None
    raw = bytes(module)
    for name in CLAIMS_SECTION_NAMES:
        payloads = [raw[s.payload_start : s.end] for n, s in present if n == name]
        if not payloads:
            continue
        payload = payloads[0]
        if len(payload) > MAX_TOKEN_BYTES:
            raise ClaimsMalformed(
                f"{name} section holds {len(payload)} bytes, over the {MAX_TOKEN_BYTES}-byte limit"
            )
        try:
            return name, payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ClaimsMalformed(f"{name} section is not UTF-8 text") from None
    raise ClaimsMissing(
        "module carries no claims (no wasmcloud_jwt or jwt custom section): "
        "sign it with `meshhost claims sign` or `wash claims sign`"
    )


def extract_claims(module: bytes) -> ActorClaims:
    """Decode the claims embedded in ``module`` without verifying anything.

    Raises ClaimsModuleMalformed (a ClaimsMalformed and a WasmFormatError)
    for a malformed binary, ClaimsMissing if unsigned, ClaimsMalformed for a
    bad token.
    """
    return decode_token(find_token(module)[1])


def verify_module(
    module: bytes,
    *,
    now: float,
    allowed_issuers: Iterable[str] = (),
    leeway_s: float = DEFAULT_LEEWAY_S,
    trust_legacy_hash: bool = False,
) -> ActorClaims:
    """Extract and fully verify a module's claims; return them if all checks pass.

    Checks in order: well-formed (ClaimsModuleMalformed, ClaimsMissing,
    ClaimsMalformed), signature (ClaimsSignatureInvalid), module hash
    (ClaimsHashMismatch), issuer allow-list (IssuerNotAllowed; empty = any),
    expiry and not-before with ``leeway_s`` of skew (ClaimsExpired,
    ClaimsNotYetValid).

    The hash is accepted if it equals :func:`module_hash` (the stripped bytes,
    what meshhost signs) or :func:`wascap_module_hash` (what wascap >= 0.10.1
    signs; the two differ only for padded section sizes).  A token older than
    wascap revision 3 may also carry wascap 0.9's hash (revision 2, see
    :func:`legacy_module_hash`), which is checked like the others (wascap <
    0.9 wrote the re-serialisation it hashed, so its tokens match
    :func:`module_hash`).  wasmCloud skips the hash check below revision 3;
    we refuse a mismatch unless ``trust_legacy_hash`` is set.
    """
    token = find_token(module)[1]
    claims = _check_signature(token)
    expected = claims.module_hash
    legacy = (claims.revision or 0) < MIN_HASHED_REVISION
    try:
        matches = expected in (module_hash(module), wascap_module_hash(module)) or (
            legacy and expected == legacy_module_hash(module)
        )
    except WasmFormatError as exc:  # e.g. a nested component is malformed
        raise _module_error(exc) from None
    if not matches:
        if not (legacy and trust_legacy_hash):
            hint = (
                f" (token is wascap revision {claims.revision or 'unset'}): the module was "
                "changed after it was signed, or hashed by an algorithm older than wascap "
                "0.9 that wasmCloud no longer checks; re-sign it, or trust legacy hashes"
                if legacy
                else ": the module was changed after it was signed"
            )
            raise ClaimsHashMismatch(
                f"module hash does not match the signed hash {expected[:16] or '(empty)'}...{hint}"
            )
    _check_issuer(claims, allowed_issuers)
    check_times(claims, now=now, leeway_s=leeway_s)
    return claims


def _instant(now: float, offset_s: float, what: str) -> int:
    at = now + offset_s
    if not math.isfinite(at) or not 0 <= at <= U64_MAX:
        raise LocalProtocolError(
            f"{what}={offset_s!r} puts the time outside 1970..2^64 seconds: use a shorter duration"
        )
    return int(at)


def sign_module(
    module: bytes,
    *,
    issuer: KeyPair,
    subject: KeyPair,
    name: str,
    caps: Iterable[str] = (),
    tags: Iterable[str] = (),
    rev: int | None = None,
    ver: str | None = None,
    call_alias: str | None = None,
    provider: bool = False,
    expires_in_s: float | None = None,
    not_before_s: float | None = None,
    now: float,
    random_bytes: Callable[[int], bytes] | None = None,
) -> bytes:
    """Sign ``module`` and return it with a ``wasmcloud_jwt`` section appended.

    Any existing ``jwt``/``wasmcloud_jwt`` sections are removed first
    (re-signing); every other byte of the module is kept.  ``issuer`` must be
    an account key, ``subject`` a module (or, with ``provider``, service)
    key.  ``expires_in_s``/``not_before_s`` are relative to ``now``.  The
    call alias is normalised as wascap does.
    """
    if subject.prefix not in (Prefix.MODULE, Prefix.SERVICE):
        raise NkeyPrefixError(
            f"the subject must be a module key (M...), not a {subject.prefix.name.lower()} key"
        )
    if isinstance(caps, str) or isinstance(tags, str):
        raise TypeError("caps and tags must be lists of strings, not a single string")
    if not math.isfinite(now) or now < 0:
        raise ValueError(f"now must be a finite Unix time, got {now!r}")
    caps_t = tuple(caps)
    tags_t = tuple(tags)
    for value in (name, *caps_t, *tags_t, ver or "", call_alias or ""):
        if not isinstance(value, str):
            raise ClaimsMalformed(f"claims values must be text, got {type(value).__name__}")
    if any(not cap.strip() for cap in caps_t):
        raise ClaimsMalformed("a capability contract id cannot be empty")
    if rev is not None and (isinstance(rev, bool) or not I32_MIN <= int(rev) <= I32_MAX):
        raise ClaimsMalformed(f"rev {rev!r} must be an integer that fits in 32 bits")
    issued_at = int(now)
    expires = None if expires_in_s is None else _instant(now, expires_in_s, "expires_in_s")
    not_before = None if not_before_s is None else _instant(now, not_before_s, "not_before_s")
    stripped = wasm.strip_custom(module, CLAIMS_SECTION_NAMES)
    claims = ActorClaims(
        subject=subject.public_key,
        issuer=issuer.public_key,
        name=name,
        caps=caps_t,
        tags=tags_t,
        rev=None if rev is None else int(rev),
        ver=ver,
        call_alias=None if call_alias is None else normalize_call_alias(call_alias),
        provider=provider,
        issued_at=issued_at,
        expires=expires,
        not_before=not_before,
        module_hash=module_hash(stripped),
        jti=make_jti(random_bytes),
        revision=WASCAP_REVISION,
    )
    token = encode_token(claims, issuer)
    return wasm.append_custom(stripped, CLAIMS_SECTION, token.encode("ascii"))
