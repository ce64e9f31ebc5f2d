"""Typed errors for every layer of meshhost.

Everything meshhost raises on purpose derives from :class:`MeshError`.  The
split that matters most is whose fault an error is:

* :class:`LocalProtocolError` - we (or the user driving us) misused an API or
  gave bad input: a wrong CLI argument, a malformed manifest, a bad key file.
* :class:`RemoteProtocolError` - a peer sent bytes that break the protocol.
  Decoders of network input raise only this family, so a driver can catch it
  at one receive point, count it, and drop the peer without crashing.

Every error message names what was wrong and, where it can, what to do about
it.  Sections below are grouped by layer; each layer adds its own classes in
its own section.
"""

from __future__ import annotations

import enum
from typing import Any

SHORT_ID_CHARS = 12
"""Characters of a key kept by :func:`short_id`: 11 after the prefix letter tell
thousands of hosts apart, and the result is a prefix the CLI accepts for a host."""


def short_id(key: str) -> str:
    """The one way a host (or actor) key is shortened for people: its first 12
    characters and ``…`` (``NBX4ABCD2EFG…``). Short keys are returned whole.

    It lives here, in the bottom layer, because error messages name keys with
    it; :mod:`meshhost.identity` exports it too."""
    return key[:SHORT_ID_CHARS] + "…" if len(key) > SHORT_ID_CHARS + 1 else key


class ErrorCode(enum.IntEnum):
    """Wire error codes (proto/SPEC.md, "Error codes"). Append-only."""

    OK = 0
    PROTOCOL = 1
    UNSUPPORTED = 2
    TOO_LARGE = 3
    TIMEOUT = 4
    CANCELLED = 5
    UNAUTHENTICATED = 6
    DENIED = 7
    NOT_FOUND = 8
    UNAVAILABLE = 9
    ACTOR_FAILED = 10
    PROVIDER_FAILED = 11
    SHUTTING_DOWN = 12
    OVERLOADED = 13
    INVALID = 14
    SIGN = 15


class MeshError(Exception):
    """Base of every error meshhost raises on purpose.

    ``code`` is the wire error code sent to a remote caller when this error
    ends a request; subclasses override it.
    """

    code: ErrorCode = ErrorCode.INVALID


class LocalProtocolError(MeshError):
    """We, or the person driving us, misused an API or gave invalid input."""


class RemoteProtocolError(MeshError):
    """A peer sent something that breaks the protocol."""

    code = ErrorCode.PROTOCOL


class DecodeError(RemoteProtocolError):
    """Bytes could not be decoded: truncated, oversized, garbage or wrong type."""


class ConfigError(LocalProtocolError):
    """A configuration file, environment variable or flag is invalid."""


class InvalidActorLimits(ConfigError):
    """An actor's runtime limits (``start`` flags, manifest properties or the
    host's ``[actor_limits]``) name an unknown limit or a value out of bounds."""


class InvalidLatticeName(ConfigError):
    """A lattice name (``--lattice``, ``$MESHHOST_LATTICE``, TOML ``lattice``) is not
    1..64 letters, digits, ``-``, ``_`` or ``.`` (not starting with ``.``): it names a
    directory under the per-user data dir, so ``../x`` must never pass."""


class DataDirNotPrivate(ConfigError):
    """The data dir (host key, lattice secret, data) can be read or entered by other users."""


# --- identity: nkeys, claims, wasm module parsing ---------------------------


class IdentityError(MeshError):
    """Base for key and claims problems."""


class NkeyError(IdentityError, LocalProtocolError):
    """An nkey string or seed is malformed."""


class NkeyPrefixError(NkeyError):
    """The key has the wrong or an unknown prefix."""


class NkeyChecksumError(NkeyError):
    """The CRC16 checksum at the end of the key does not match."""


class NkeyLengthError(NkeyError):
    """The decoded key has the wrong number of bytes."""


class NkeyEncodingError(NkeyError):
    """The key has characters outside the base32 alphabet."""


class SignatureError(IdentityError):
    """An ed25519 signature does not verify."""


class WasmFormatError(IdentityError, DecodeError):
    """A WebAssembly binary is malformed (bad magic, truncated section, bad LEB128)."""

    offset: int | None = None
    """Byte offset of the fault in the binary, when known."""
    reason: str = ""
    """What is wrong there, without the offset."""


class ClaimsError(IdentityError):
    """Base for problems with an actor's or provider's signed claims."""

    code = ErrorCode.DENIED


class ClaimsMissing(ClaimsError):
    """The module carries no claims section: it is unsigned."""


class ClaimsMalformed(ClaimsError):
    """The claims token is not a well-formed wascap JWT."""


class ClaimsSignatureInvalid(ClaimsError):
    """The token's signature does not verify against its issuer."""


class ClaimsHashMismatch(ClaimsError):
    """The module was changed after it was signed."""


class ClaimsExpired(ClaimsError):
    """The token's `exp` is in the past."""


class ClaimsNotYetValid(ClaimsError):
    """The token's `nbf` is in the future."""


class IssuerNotAllowed(ClaimsError):
    """The token's issuer is not on this host's allow-list."""


# --- keyring and discovery: lattice secret, sealing, mDNS, seeds -------------


class ActorRevoked(ClaimsError):
    """An admin revoked this actor or its issuer lattice-wide (``meshhost revoke``)."""

    code = ErrorCode.DENIED


class NotAuthorized(MeshError):
    """A control op refused for want of an operator role; the message says how to get it."""

    code = ErrorCode.DENIED


class KeyringError(IdentityError, LocalProtocolError):
    """The lattice keyring was misused (unknown key, removing the primary, ...)."""


class LatticeSecretError(KeyringError):
    """A lattice secret string (``SL...``) is malformed."""


class LatticeSecretChecksumError(LatticeSecretError):
    """The lattice secret's checksum does not match: it was mistyped or truncated."""


class DiscoveryError(MeshError):
    """Discovery could not start or was misconfigured (bad seed, bad service type)."""


class SeedAddressError(DiscoveryError, ConfigError):
    """A static seed address is not ``host:port``."""


# --- rpc: invocations between hosts ---------------------------------------


class InvocationError(MeshError):
    """An invocation could not be completed."""

    code = ErrorCode.UNAVAILABLE


class NoHostForActor(InvocationError):
    """No live host in the lattice runs the target actor."""

    code = ErrorCode.NOT_FOUND


class HostUnreachable(InvocationError):
    """The chosen host could not be reached (connection lost or refused, or no answer)."""

    code = ErrorCode.UNAVAILABLE


class DeadlineExceeded(InvocationError):
    """The caller's deadline passed before an answer came."""

    code = ErrorCode.TIMEOUT


class HopLimitExceeded(InvocationError):
    """A chain of actor-to-actor calls grew longer than the hop limit (a loop?)."""

    code = ErrorCode.INVALID


class InvalidInvocation(InvocationError):
    """A call that cannot be sent to another host as given (a name over the wire limit)."""

    code = ErrorCode.INVALID


class RemoteInvocationError(InvocationError):
    """The host that ran the call answered with an error; ``code`` is the wire code it sent."""

    def __init__(self, code: ErrorCode, message: str, host: str = "") -> None:
        super().__init__(message)
        self.remote_code = code
        self.code = code  # passed on unchanged to our own callers
        self.host = host


class HostShuttingDown(InvocationError):
    """This host is draining before it stops: the caller should try another host."""

    code = ErrorCode.SHUTTING_DOWN


# --- control: manifests and leaderless placement ----------------------------


class ManifestError(LocalProtocolError):
    """A manifest is invalid.

    ``str(err)`` reads ``file:line:column: field.path: problem`` so an editor
    can jump to it; the parts are also attributes (``line``/``column`` are
    1-based, 0 when unknown, e.g. for a manifest decoded from the directory).
    """

    code = ErrorCode.INVALID

    def __init__(
        self,
        problem: str,
        *,
        source: str = "<manifest>",
        line: int = 0,
        column: int = 0,
        field: str = "",
    ) -> None:
        self.problem = problem
        self.source = source
        self.line = line
        self.column = column
        self.field = field
        where = f"{source}:{line}:{column}" if line else source
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


class ManifestTooLarge(ManifestError):
    """A manifest file (or its stored form) is over the size limit."""

    code = ErrorCode.TOO_LARGE


class ManifestVersionConflict(ManifestError):
    """The same application name and version is already stored with other content."""


class LinksWouldBeReplaced(LocalProtocolError):
    """Applying a manifest would replace link definitions made by hand (``link put``);
    refused unless the person asks for it (``apply --force``)."""


class ManifestNotFound(LocalProtocolError):
    """No stored manifest has that name (and version)."""

    code = ErrorCode.NOT_FOUND


class StoredManifestInvalid(DecodeError):
    """A manifest record read from the directory (written by a peer) is malformed."""


# --- directory: host state, links, config, LWW-HLC --------------------------


class DirectoryError(MeshError):
    """Base for problems in the lattice directory."""


class DirectoryDecodeError(DirectoryError, DecodeError):
    """A peer's directory message (piggyback or push-pull state) is malformed."""


class ClockDriftError(DirectoryError, RemoteProtocolError):
    """A peer's clock stamp is further ahead of ours than the drift limit allows."""


class DirectoryValueError(DirectoryError, LocalProtocolError):
    """A key or value given to the directory is invalid (wrong type, too large, too deep)."""


class DirectoryStoreCorrupt(DirectoryError):
    """The directory file in the data dir cannot be read; it names the file and line."""


class DirectoryStoreFailed(DirectoryError):
    """The directory file in the data dir cannot be written (disk full, read-only, ...)."""

    code = ErrorCode.UNAVAILABLE


# --- capabilities: policy, link definitions, built-in providers -------------


class CapabilityError(MeshError):
    """Base for capability policy and provider problems."""


class CapabilityDenied(CapabilityError):
    """Policy refused a host call; the message names what is missing."""

    code = ErrorCode.DENIED


class NotSignedForCapability(CapabilityDenied):
    """The actor's signed claims do not list the contract id it called."""


class LinkNotFound(CapabilityDenied):
    """No link definition binds the actor, contract id and link name."""


class ActorCallDenied(CapabilityDenied):
    """An actor-to-actor call is not granted by a link definition."""


class HostNotAllowed(CapabilityDenied):
    """The HTTP client link does not allow requests to that host."""


class UnknownCallTarget(CapabilityError):
    """No actor with that call alias or id, and no provider for that contract."""

    code = ErrorCode.NOT_FOUND


class ProviderNotAvailable(CapabilityError):
    """A link exists but no provider serves the contract on this host (or it is not started)."""

    code = ErrorCode.UNAVAILABLE


class ProviderError(CapabilityError):
    """A capability provider failed to carry out an operation."""

    code = ErrorCode.PROVIDER_FAILED


class OperationNotSupported(ProviderError):
    """The provider has no operation of that name."""

    code = ErrorCode.UNSUPPORTED


class ProviderOverloaded(ProviderError):
    """A provider queue is full; retry later."""

    code = ErrorCode.OVERLOADED


class ProviderPayloadTooLarge(ProviderError):
    """A request or response exceeds the provider's size limit."""

    code = ErrorCode.TOO_LARGE


class PayloadDecodeError(CapabilityError, DecodeError):
    """An operation payload is not the msgpack shape the contract defines."""

    code = ErrorCode.INVALID


class LinkConfigError(CapabilityError, ConfigError):
    """A link definition's values (config) are invalid for its provider."""


# --- transport: Noise sessions over TCP --------------------------------------


class NoiseError(RemoteProtocolError):
    """A Noise message from a peer is truncated, fails authentication or has a bad key."""


class NoiseUsageError(LocalProtocolError):
    """The Noise core was called out of turn or with bad arguments (a bug on our side)."""


class FrameError(DecodeError):
    """A transport frame is truncated, oversized, malformed or breaks flow control."""


class UnsupportedFrame(FrameError):
    """A transport frame has a type this host does not know."""

    code = ErrorCode.UNSUPPORTED


class HandshakeRejected(RemoteProtocolError):
    """The peer failed authentication: wrong lattice secret or name, or a bad identity."""

    code = ErrorCode.UNAUTHENTICATED


class UnsupportedVersion(HandshakeRejected):
    """The peer shares no protocol version with us."""

    code = ErrorCode.UNSUPPORTED


class TransportError(MeshError):
    """A transport request failed; ``code`` says why (proto/SPEC.md error codes)."""

    code = ErrorCode.UNAVAILABLE


class PeerUnavailable(TransportError):
    """No session to the peer could be set up (refused, unreachable, handshake failed)."""


class ConnectFailed(PeerUnavailable):
    """The TCP connection to the peer could not be made; ``reason`` says why in a
    few words (``connection refused``, ``timed out``, ``no route to host``)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class HandshakeRefused(PeerUnavailable):
    """The peer closed the connection after our first handshake message without a
    word: it most likely does not share our lattice secret (it may also be full or
    shutting down)."""


class PeerMismatch(TransportError):
    """The host that answered at an address is not the host the caller expected."""

    code = ErrorCode.UNAUTHENTICATED


class SessionClosed(TransportError):
    """The session ended before the reply came; ``reason`` is the close code given."""

    def __init__(self, message: str, reason: ErrorCode = ErrorCode.UNAVAILABLE) -> None:
        super().__init__(message)
        self.reason = reason


class RequestTimeout(TransportError):
    """No reply came before the request's deadline (the request was cancelled)."""

    code = ErrorCode.TIMEOUT


class RemoteError(TransportError):
    """The peer's handler answered with an error; ``code`` is the wire code it sent."""

    def __init__(self, code: ErrorCode, message: str, peer_id: str = "") -> None:
        who = f"{short_id(peer_id)}: " if peer_id else ""
        super().__init__(f"{who}{code.name.lower()}: {message}")
        self.remote_code = code
        self.remote_message = message
        self.peer_id = peer_id

    @property
    def code(self) -> ErrorCode:  # type: ignore[override]  # the code the peer sent
        return self.remote_code

    @property
    def code_name(self) -> str:
        """The code's name as in proto/SPEC.md's table, e.g. ``"denied"``."""
        return self.remote_code.name.lower()


class PayloadTooLarge(LocalProtocolError):
    """A request or reply body is over the transport's ``max_payload_bytes``."""

    code = ErrorCode.TOO_LARGE


class TransportClosed(LocalProtocolError):
    """The transport was closed; it accepts no more requests."""

    code = ErrorCode.SHUTTING_DOWN


# --- runtime: wasm actors (waPC modules and components) ----------------------


class ActorRuntimeError(MeshError):
    """Base for failures of one actor call or load; ``actor_id``/``actor_name`` say whose.

    The message always reads ``actor M... (name): reason``.  A failed call
    never takes the host or any other actor down with it.
    """

    code = ErrorCode.ACTOR_FAILED

    def __init__(self, actor_id: str, actor_name: str, reason: str) -> None:
        label = f"actor {actor_id} ({actor_name})" if actor_name else f"actor {actor_id}"
        super().__init__(f"{label}: {reason}")
        self.actor_id = actor_id
        self.actor_name = actor_name
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:  # keep pickling/copying working
        return (type(self), (self.actor_id, self.actor_name, self.reason))


class ActorNotFound(ActorRuntimeError):
    """No actor with that id is loaded on this host."""

    code = ErrorCode.NOT_FOUND


class ActorLoadError(ActorRuntimeError):
    """A module cannot run here: not valid wasm, imports we do not provide, no
    ``__guest_call`` / handler export, or its start function failed."""

    code = ErrorCode.INVALID


class ActorError(ActorRuntimeError):
    """The guest ran fine and answered with an error of its own (``__guest_error`` / ``err``)."""


class ActorTrapped(ActorRuntimeError):
    """The guest trapped (unreachable, out-of-bounds access, stack overflow, ``proc_exit``)."""


class ActorMisbehaved(ActorTrapped):
    """The guest broke the ABI: a pointer outside its memory, success without a
    response, an oversized length.  Its instance is discarded like after a trap."""


class ActorLimitExceeded(ActorRuntimeError):
    """The call hit one of the actor's limits; ``limit`` names which
    (``memory``, ``cpu``, ``fuel``, ``deadline``, ``instances``)."""

    def __init__(self, actor_id: str, actor_name: str, reason: str, limit: str = "") -> None:
        super().__init__(actor_id, actor_name, reason)
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.actor_id, self.actor_name, self.reason, self.limit))


class ActorDeadlineExceeded(ActorLimitExceeded):
    """The call ran past its wall-clock deadline."""

    code = ErrorCode.TIMEOUT


class ActorBusy(ActorLimitExceeded):
    """Every instance of the actor stayed busy until the call's deadline."""

    code = ErrorCode.OVERLOADED


# --- membership: SWIM + Lifeguard core, simulator ---------------------------


class MembershipError(MeshError):
    """Base for membership problems."""


class MembershipDecodeError(MembershipError, DecodeError):
    """A gossip packet or push-pull state is malformed, oversized or of the wrong type."""


class MembershipUsageError(MembershipError, LocalProtocolError):
    """The membership core was misused (metadata too large, wrong key kind, ...)."""


class SimulationError(MeshError):
    """A simulated run broke an invariant; the message names the seed to replay."""


# --- lab: scenario sweeps and history checkers --------------------------------


class ScenarioError(LocalProtocolError):
    """A scenario file, its parameters or a sweep's output folder cannot be used."""


class HistoryViolation(SimulationError):
    """A checker found a recorded history breaking its property (lost write, ...)."""


# --- claims: reading claims out of a malformed module -------------------------


class ClaimsModuleMalformed(ClaimsMalformed, WasmFormatError):
    """The module's bytes are not valid Wasm, so its claims cannot be read.

    Both a ClaimsMalformed (the claims are unreadable) and a WasmFormatError
    (with ``offset`` and ``reason``), so either can be caught.
    """


# --- control: application ops (apply, app_*) --------------------------------


class ControlArgumentError(LocalProtocolError):
    """A control request's arguments are missing, unknown, of the wrong type, or
    inconsistent (a module whose bytes do not hash to its key, a manifest that
    does not decode)."""

    code = ErrorCode.INVALID


class UnknownControlOp(LocalProtocolError):
    """A control op this handler does not answer."""

    code = ErrorCode.UNSUPPORTED


class ModuleNotStored(LocalProtocolError):
    """A peer asked for a module (by digest) this host does not store."""

    code = ErrorCode.NOT_FOUND


class ModuleStoreFailed(MeshError):
    """The host could not keep an actor module (disk full, read-only, ...)."""

    code = ErrorCode.UNAVAILABLE


class ControlError(MeshError):
    """A control request failed on the host; ``code`` is the wire code it sent."""

    def __init__(self, code: ErrorCode, message: str, *, sign: list[Any] | None = None) -> None:
        super().__init__(message)
        self.remote_code = code
        self.code = code
        self.sign = sign
        """With code ``sign``: the entries the operator must sign (operators.md)."""


class TraceArgsError(ControlArgumentError):
    """The ``trace``/``spans`` arguments are malformed (the caller answers ``invalid``)."""


# --- host: one process serving the lattice ------------------------------------


class HostNotServing(MeshError):
    """A host's parts were asked for before :meth:`Host.serve` built them."""

    code = ErrorCode.UNAVAILABLE


class HostBusy(MeshError):
    """Another running process uses this data directory."""


class UnknownChannel(MeshError):
    """A peer sent a request on a transport channel this host does not serve."""

    code = ErrorCode.UNSUPPORTED


# --- lab: scenarios on real hosts in network namespaces -------------------------


class LabError(MeshError):
    """``meshhost lab`` cannot run or compare: a bad scenario, a missing tool or root,
    hosts that did not form, the overall time limit; the message says which."""


class LabTimeout(LabError):
    """The whole run outlived ``--timeout``."""
