"""Host configuration: frozen dataclasses, named profiles, layered sources.

Precedence, lowest first: profile defaults < TOML file < ``MESHHOST_*``
environment variables < CLI flags.  Every field has its unit in its name.

Profiles:

* ``lan``   - hashicorp/memberlist ``DefaultLANConfig`` numbers; the default.
* ``local`` - several hosts on one machine: shorter timeouts, fewer retransmits
  (memberlist ``DefaultLocalConfig``).
* ``wan``   - high-latency links (memberlist ``DefaultWANConfig``).
* ``sim``   - like ``lan`` but for the simulator; identical numbers so that
  simulated figures predict real ones.

A TOML file has one table per section, e.g.::

    profile = "lan"
    lattice = "default"
    [membership]
    probe_interval_s = 2.0
    [actor_limits]
    max_memory_mib = 128

``[actor_limits]`` are the host's defaults for the runtime limits of each
actor (:class:`ActorLimitsConfig`); ``meshhost start --max-…`` flags and
manifest component properties of the same names override them per actor.

Environment variables are ``MESHHOST_<FIELD>`` for top-level fields and
``MESHHOST_<SECTION>__<FIELD>`` for section fields, e.g.
``MESHHOST_MEMBERSHIP__PROBE_TIMEOUT_S=0.3``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from meshhost.datadir import check_lattice_name
from meshhost.errors import ConfigError, InvalidActorLimits, MeshError

__all__ = [
    "LIMIT_BOUNDS",
    "MEMBERSHIP_MODELS",
    "PROFILES",
    "ActorLimitsConfig",
    "HostConfig",
    "MembershipConfig",
    "TransportConfig",
    "check_ipv4",
    "limits_with",
    "load",
    "membership_model",
]

ENV_PREFIX = "MESHHOST_"
log = logging.getLogger(__name__)


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ConfigError(f"{type(obj).__name__}.{name} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """SWIM + Lifeguard parameters (memberlist names and LAN defaults)."""

    probe_interval_s: float = 1.0
    """Time between failure-detection probes of one random member."""
    probe_timeout_s: float = 0.5
    """Wait for a direct ack before asking k peers to probe indirectly."""
    indirect_checks: int = 3
    """k: how many peers are asked to probe a member that missed its ack."""
    suspicion_mult: int = 4
    """Suspicion timeout = mult * max(1, log10 N) * probe interval (minimum)."""
    suspicion_max_timeout_mult: int = 6
    """Upper bound of the suspicion timeout, as a multiple of its minimum."""
    retransmit_mult: int = 4
    """A broadcast is piggybacked mult * ceil(log10(N + 1)) times."""
    gossip_interval_s: float = 0.2
    """How often broadcasts are pushed to gossip_nodes random members."""
    gossip_nodes: int = 3
    """Fan-out of each gossip round."""
    gossip_to_dead_s: float = 30.0
    """Keep gossiping to a dead member this long so it learns and can refute."""
    push_pull_interval_s: float = 30.0
    """Full-state anti-entropy with one random member over TCP."""
    reconnect_interval_s: float = 10.0
    """How often we try to rejoin one failed member, so partitions heal alone."""
    dead_tombstone_s: float = 60.0
    """How long a member that left is remembered, so stale alives are refused."""
    reconnect_timeout_s: float = 86400.0
    """How long a failed member is remembered and retried (Serf's 24 h), so a
    long partition still heals; after that it must be rediscovered."""
    awareness_max_multiplier: int = 8
    """Lifeguard local health: probe timeouts stretch up to this factor."""
    udp_packet_bytes: int = 1200
    """Largest sealed UDP datagram we send (fits any sane path MTU)."""
    # Model switches: each Lifeguard part, and meshhost's own additions, can be
    # turned off to compare SWIM, memberlist and meshhost (see MEMBERSHIP_MODELS).
    # Production keeps them all on; none changes the wire format.
    lifeguard_awareness: bool = True
    """Lifeguard local health: failed probes and refutations stretch our own probe
    interval and timeouts (off: the multiplier stays 1)."""
    lifeguard_suspicion: bool = True
    """Lifeguard suspicion: the timeout starts at max and shrinks with independent
    confirmations (off: a fixed timeout of the minimum, as SWIM and early memberlist)."""
    lifeguard_buddy: bool = True
    """Lifeguard buddy system: a ping to a suspect carries the suspicion."""
    lifeguard_nacks: bool = True
    """Lifeguard nacks: indirect probes ask relays to nack, and missing nacks count
    against our local health (off: no nacks asked, a failed probe counts +1)."""
    refute_at_once: bool = True
    """meshhost: accusations travel directly, not only by gossip: a failed probe
    sends the suspicion to the suspect, a suspect that talks to us is told, an
    accused host answers its accuser with its refutation (and pings are answered
    after the rest of their datagram, so the ack carries it)."""
    last_chance: bool = True
    """meshhost: probe_timeout_s before a suspicion expires the observer reminds
    the suspect once, directly."""

    def __post_init__(self) -> None:
        _positive(
            self,
            "probe_interval_s",
            "probe_timeout_s",
            "gossip_interval_s",
            "push_pull_interval_s",
            "reconnect_interval_s",
            "suspicion_mult",
            "retransmit_mult",
            "gossip_nodes",
            "awareness_max_multiplier",
        )
        if self.probe_timeout_s >= self.probe_interval_s:
            raise ConfigError("membership.probe_timeout_s must be below probe_interval_s")
        if self.suspicion_max_timeout_mult < 1:
            raise ConfigError("membership.suspicion_max_timeout_mult must be >= 1")
        if not 576 <= self.udp_packet_bytes <= 65507:
            raise ConfigError("membership.udp_packet_bytes must be within 576..65507")


MEMBERSHIP_MODELS: dict[str, dict[str, bool]] = {
    "swim": {
        "lifeguard_awareness": False,
        "lifeguard_suspicion": False,
        "lifeguard_buddy": False,
        "lifeguard_nacks": False,
        "refute_at_once": False,
        "last_chance": False,
    },
    "memberlist": {
        "lifeguard_awareness": True,
        "lifeguard_suspicion": True,
        "lifeguard_buddy": True,
        "lifeguard_nacks": True,
        "refute_at_once": False,
        "last_chance": False,
    },
    "meshhost": {
        "lifeguard_awareness": True,
        "lifeguard_suspicion": True,
        "lifeguard_buddy": True,
        "lifeguard_nacks": True,
        "refute_at_once": True,
        "last_chance": True,
    },
}
"""Named protocol models: SWIM with suspicion (no Lifeguard), memberlist
(Lifeguard, none of meshhost's additions) and meshhost (everything, the default)."""


def membership_model(name: str, base: MembershipConfig | None = None) -> MembershipConfig:
    """``base`` (default: LAN numbers) with the switches of model ``name``.

    Raises ``ConfigError`` naming the known models for an unknown ``name``.
    """
    switches = MEMBERSHIP_MODELS.get(name)
    if switches is None:
        raise ConfigError(
            f"unknown membership model {name!r}; known: {', '.join(sorted(MEMBERSHIP_MODELS))}"
        )
    return replace(base if base is not None else MembershipConfig(), **switches)


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Noise-over-TCP session parameters."""

    handshake_timeout_s: float = 5.0
    """A peer that has not finished the handshake by then is dropped."""
    idle_timeout_s: float = 120.0
    """A session with no traffic for this long is closed (pings keep it open)."""
    connect_timeout_s: float = 3.0
    """TCP connect deadline per attempt."""
    max_connections: int = 1024
    """Refuse inbound connections beyond this count (at the limit, the oldest
    connection that has not sent a valid handshake message 1 makes way); lowered
    to leave ``transport.listener.FD_RESERVE`` of the process's open-file limit."""
    rekey_after_messages: int = 1 << 20
    """Rekey each direction's cipher after this many messages."""
    send_buffer_frames: int = 256
    """Frames queued per session before writers block (backpressure)."""
    backoff_initial_s: float = 0.1
    """First reconnect delay; doubles per failure, with jitter."""
    backoff_max_s: float = 10.0
    """Ceiling of the reconnect delay."""
    max_payload_bytes: int = 257 << 20
    """Largest request or reply body (streamed in chunks): rpc's 256 MiB plus envelope room."""
    stream_window_bytes: int = 1 << 20
    """Initial credit per stream and direction: bytes a sender may have in flight."""
    max_concurrent_requests: int = 256
    """Inbound requests in progress per session; more are refused with ``overloaded``."""
    keepalive_interval_s: float = 15.0
    """A session silent this long sends a PING; silent for three intervals it is closed
    as dead (at most a quarter of ``idle_timeout_s`` is used)."""
    handshake_rate_per_s: float = 32.0
    """Inbound connections accepted per second from one source IP address once its
    burst is spent; the excess is closed before a byte is read (0: no limit)."""
    handshake_burst: int = 128
    """Inbound connections one source IP may open at once before the rate applies:
    a whole lattice restarting behind one address stays well inside it."""

    def __post_init__(self) -> None:
        _positive(
            self,
            "handshake_timeout_s",
            "idle_timeout_s",
            "connect_timeout_s",
            "max_connections",
            "rekey_after_messages",
            "send_buffer_frames",
            "backoff_initial_s",
            "backoff_max_s",
            "max_payload_bytes",
            "max_concurrent_requests",
            "keepalive_interval_s",
        )
        if not 65536 <= self.stream_window_bytes <= 1 << 30:
            raise ConfigError("transport.stream_window_bytes must be within 64 KiB..1 GiB")
        if not self.handshake_rate_per_s >= 0:  # also refuses NaN
            raise ConfigError("transport.handshake_rate_per_s must be 0 (no limit) or positive")
        if self.handshake_burst < 1:
            raise ConfigError("transport.handshake_burst must be at least 1")


LIMIT_BOUNDS: dict[str, tuple[int, int, str]] = {
    "max_memory_mib": (1, 4096, "MiB"),
    "max_cpu_time_ms": (1, 600_000, "ms"),
    "max_call_time_ms": (1, 600_000, "ms"),
    "max_instances": (1, 1000, "instances"),
}
"""Each per-actor limit's allowed range and unit.  Memory: a wasm32 memory holds
at most 4 GiB.  Times: the longest call the control API accepts (10 min).
Instances: the most one host runs of one actor."""


@dataclass(frozen=True, slots=True)
class ActorLimitsConfig:
    """Runtime limits of one actor on one host (``[actor_limits]``: the host's defaults).

    The defaults are the values meshhost always used.  A limit that bites fails
    the call (or the start) with ``ActorLimitExceeded`` naming it.
    """

    max_memory_mib: int = 64
    """Linear memory of each instance, in MiB; growing past it fails (limit ``memory``)."""
    max_cpu_time_ms: int = 2000
    """Guest run time per call, host calls not counted (limit ``cpu``; 5 ms resolution)."""
    max_call_time_ms: int = 30_000
    """Wall-clock time per call, host calls counted; a caller's shorter timeout wins
    (limit ``deadline``)."""
    max_instances: int = 1000
    """Instances of the actor on this host; starting or scaling past it fails
    (limit ``instances``)."""

    def __post_init__(self) -> None:
        for name, (low, high, unit) in LIMIT_BOUNDS.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise InvalidActorLimits(
                    f"actor limit {name} must be a whole number of {unit} from {low} to "
                    f"{high}, got {value!r}"
                )

    def as_dict(self) -> dict[str, int]:
        """The limits by name (as ``inventory`` shows them)."""
        return {name: getattr(self, name) for name in LIMIT_BOUNDS}


def limits_with(
    base: ActorLimitsConfig, overrides: Mapping[str, Any] | None, where: str = "limits"
) -> ActorLimitsConfig:
    """``base`` with the per-actor ``overrides`` (name -> whole number) applied.

    Raises InvalidActorLimits, naming ``where``, for an unknown name, a value
    that is not a whole number, or one out of its bounds (:data:`LIMIT_BOUNDS`).
    """
    if not overrides:
        return base
    if not isinstance(overrides, Mapping):
        raise InvalidActorLimits(f"{where} must be a map of limit names to whole numbers")
    for name, value in overrides.items():
        if name not in LIMIT_BOUNDS:
            known = ", ".join(LIMIT_BOUNDS)
            raise InvalidActorLimits(f"{where}: unknown actor limit {name!r}; known: {known}")
        if type(value) is not int:
            raise InvalidActorLimits(
                f"{where}: actor limit {name} must be a whole number of "
                f"{LIMIT_BOUNDS[name][2]}, got {value!r}"
            )
    try:
        return replace(base, **dict(overrides))
    except InvalidActorLimits as exc:
        raise InvalidActorLimits(f"{where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class HostConfig:
    """Everything a host needs to start. Sections are their own dataclasses."""

    profile: str = "lan"
    """Name of the profile the defaults came from."""
    lattice: str = "default"
    """Lattice name: bound into every handshake and packet; hosts of other lattices never mix."""
    data_dir: str = ""
    """Host key, lattice secret, module cache, kv store, links. Empty: the per-user default."""
    bind: str = "0.0.0.0"
    """Address the TCP listener and UDP socket bind to."""
    port: int = 0
    """TCP and UDP port (same number for both); 0 picks a free one."""
    seeds: tuple[str, ...] = ()
    """Static ``host:port`` addresses to join, for networks without multicast."""
    mdns: bool = True
    """Announce and browse with mDNS."""
    labels: tuple[tuple[str, str], ...] = ()
    """``key=value`` labels for placement constraints."""
    allowed_issuers: tuple[str, ...] = ()
    """Account keys (A...) whose actors this host runs; empty: any valid issuer."""
    actor_calls: str = "linked"
    """Who may call an actor: ``linked`` (deny by default: the caller needs a link
    whose contract is the target's key or call alias) or ``open`` (wasmCloud 0.x:
    any actor may call any actor)."""
    membership: MembershipConfig = field(default_factory=MembershipConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    actor_limits: ActorLimitsConfig = field(default_factory=ActorLimitsConfig)
    """Defaults for every actor's runtime limits (overridable per actor)."""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(
                f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}"
            )
        check_lattice_name(self.lattice)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be within 0..65535, got {self.port}")
        check_ipv4(self.bind, "bind address (--bind, bind)")
        if self.actor_calls not in ("linked", "open"):
            raise ConfigError(f"actor_calls must be 'linked' or 'open', got {self.actor_calls!r}")
        for key, _ in self.labels:
            if not key:
                raise ConfigError("label keys must not be empty")
        for issuer in self.allowed_issuers:
            _check_issuer(issuer)


def _check_issuer(key: str) -> None:
    """Raise ConfigError unless ``key`` is an account (issuer) public key, A…."""
    from meshhost.identity import nkeys  # config is imported by everything; keep it light

    try:
        nkeys.decode_public(key, nkeys.Prefix.ACCOUNT)
    except MeshError as exc:
        raise ConfigError(
            f"allowed issuer {key[:16]!r} is not an account key (A…): {exc}"
        ) from None


def check_ipv4(text: str, what: str) -> None:
    """Raise ConfigError unless ``text`` is a dotted IPv4 address (sockets and peers need one)."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise ConfigError(
            f"{what} {text!r} is not an IPv4 address like 127.0.0.1 or 192.168.1.20"
        ) from None


def _lan() -> HostConfig:
    return HostConfig(profile="lan")


def _local() -> HostConfig:
    # memberlist DefaultLocalConfig: loopback RTTs are microseconds, so time-outs
    # can be short and fewer retransmits reach everyone.
    return HostConfig(
        profile="local",
        membership=MembershipConfig(
            probe_interval_s=1.0,
            probe_timeout_s=0.2,
            suspicion_mult=3,
            retransmit_mult=2,
            gossip_interval_s=0.1,
            push_pull_interval_s=15.0,
            gossip_to_dead_s=15.0,
            reconnect_interval_s=2.0,
        ),
        transport=TransportConfig(handshake_timeout_s=2.0),
    )


def _wan() -> HostConfig:
    # memberlist DefaultWANConfig: RTTs of hundreds of ms and loss.
    return HostConfig(
        profile="wan",
        membership=MembershipConfig(
            probe_interval_s=5.0,
            probe_timeout_s=3.0,
            suspicion_mult=6,
            retransmit_mult=4,
            gossip_interval_s=0.5,
            gossip_nodes=4,
            push_pull_interval_s=60.0,
            gossip_to_dead_s=60.0,
            reconnect_interval_s=30.0,
        ),
        transport=TransportConfig(handshake_timeout_s=15.0, connect_timeout_s=10.0),
    )


def _sim() -> HostConfig:
    # Same numbers as LAN so simulated figures predict the real lattice.
    return HostConfig(profile="sim")


PROFILES = {"lan": _lan, "local": _local, "wan": _wan, "sim": _sim}


def _describe(value: Any) -> str:
    kind = {
        bool: "a boolean",
        int: "a whole number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
    return f"{kind} ({value!r})" if not isinstance(value, list | dict) else kind


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a TOML value or environment string to the field's type.

    Raises ConfigError naming ``where`` (the key, variable or flag) and what
    was expected, never Python's own wording (``invalid literal for int()``).
    """
    hint = annotation
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str | int) else ""
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, got {_describe(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value.strip())
        raise ConfigError(f"{where} must be a whole number, got {_describe(value)}")
    if hint is float:
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(
                f"{where} must be a number (seconds or a count, e.g. 0.5), got {_describe(value)}"
            )
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be text (in quotes in TOML), got {_describe(value)}")
        return value
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            items: list[Any] = value.split(",")
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise ConfigError(
                f"{where} must be a list or comma-separated text, got {_describe(value)}"
            )
        args = typing.get_args(hint)
        if args and typing.get_origin(args[0]) is tuple:  # labels: k=v pairs
            pairs = []
            for item in items:
                if isinstance(item, str):
                    key, sep, val = item.partition("=")
                    if not sep:
                        raise ConfigError(f"{where}: label {item!r} is not key=value")
                    pairs.append((key.strip(), val.strip()))
                elif isinstance(item, list | tuple) and len(item) == 2:
                    pairs.append((str(item[0]), str(item[1])))
                else:
                    raise ConfigError(
                        f'{where}: each label must be "key=value" text, got {_describe(item)}'
                    )
            return tuple(pairs)
        for item in items:
            if not isinstance(item, str | int) or isinstance(item, bool):
                raise ConfigError(f"{where}: each item must be text, got {_describe(item)}")
        return tuple(str(i).strip() for i in items if str(i).strip())
    raise ConfigError(f"{where}: unsupported type {hint!r}")


RENAMED = {"bind_host": "bind"}
"""Old setting names still accepted (with a warning) and the names that replaced them."""

Namer = typing.Callable[[str], str]


def _apply(obj: Any, values: Mapping[str, Any], name: Namer, path: str = "") -> Any:
    """``obj`` with ``values`` applied; ``name(dotted key)`` says where a value came from."""
    hints = typing.get_type_hints(type(obj))
    by_name = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{path}{key}"
        if not path and key in RENAMED:
            new = RENAMED[key]
            log.warning("%s is deprecated; it is now called %r", name(dotted), new)
            if new in values:
                continue  # the new name wins when both are given
            key, dotted = new, new
        if key not in by_name:
            known = ", ".join(sorted(by_name))
            raise ConfigError(f"{name(dotted)} is unknown; known settings: {known}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{name(dotted)} is a section: set its fields, e.g. "
                    f"{name(dotted + '.' + fields(hint)[0].name)}"
                )
            changes[key] = _apply(getattr(obj, key), value, name, dotted + ".")
        else:
            if isinstance(hint, types.UnionType):
                hint = typing.get_args(hint)[0]
            changes[key] = _coerce(value, hint, name(dotted))
    try:
        return replace(obj, **changes)
    except TypeError as exc:  # pragma: no cover - every field is known by now
        raise ConfigError(f"{name(path or 'config')}: {exc}") from None


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "PROFILE":
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(
                    f"{name}: {ENV_PREFIX}{part.upper()} is set too; a setting cannot be "
                    "both a value and a section"
                )
        node[path[-1]] = value
    return out


def _env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.upper().replace(".", "__")


def load(
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> HostConfig:
    """Build a HostConfig: profile < TOML file < environment < overrides.

    ``overrides`` uses the same shape as the TOML file (nested dicts for
    sections); ``None`` values are ignored so CLI flags left unset change
    nothing.  Raises ConfigError naming the file, variable or flag at fault.
    """
    environ = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses per nested array or inline table
            raise ConfigError(f"config file {path} nests values too deeply") from None
    env_values = _env_values(environ)
    clean_overrides = {k: v for k, v in (overrides or {}).items() if v is not None}

    profile = (
        clean_overrides.get("profile")
        or environ.get(ENV_PREFIX + "PROFILE")
        or file_values.get("profile")
        or "lan"
    )
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    config: HostConfig = PROFILES[profile]()
    config = _apply(
        config,
        {k: v for k, v in file_values.items() if k != "profile"},
        lambda key: f"{path}: setting {key!r}",
    )
    config = _apply(config, env_values, _env_name)
    config = _apply(
        config,
        {k: v for k, v in clean_overrides.items() if k != "profile"},
        lambda key: f"setting {key!r}",
    )
    return config
