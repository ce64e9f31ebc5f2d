"""The control ops a running host answers (proto/spec/rpc.md, "Control").

The local CLI reaches :meth:`HostControl.dispatch` over the Unix socket;
peers reach :meth:`HostControl.dispatch_from_peer` over transport channel 3.
An op aimed at another host (``host`` argument) is forwarded to it over the
lattice, so any host can control any other; a forwarded op is never
forwarded again.  Host ids may be abbreviated to a unique prefix, as the CLI
prints them.

Lattice-wide ops (links, config, ``call``, ``hosts``) run on whichever host
gets them: links and config are directory writes that gossip everywhere.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

import trio

from meshhost.actorhost import ActorHost
from meshhost.apps.ops import APP_OPS
from meshhost.capabilities import LinkDefinition
from meshhost.capabilities.policy import is_actor_key
from meshhost.config import limits_with
from meshhost.control.api import CHANNEL, decode_reply, encode_request
from meshhost.control.keyops import KEYRING_OPS, keyring_op
from meshhost.control.security import SECURITY_NS
from meshhost.datadir import admin_key_path
from meshhost.directory import Staging
from meshhost.directory.codec import encode_value
from meshhost.errors import (
    ControlError,
    DecodeError,
    ErrorCode,
    MeshError,
    ModuleStoreFailed,
    NkeyError,
    NotAuthorized,
    SignatureError,
    TraceArgsError,
)
from meshhost.identity import short_id
from meshhost.identity.operators import Role, decode_statement
from meshhost.membership import MemberState
from meshhost.monitor import tracing
from meshhost.monitor.events import event_to_dict
from meshhost.monitor.snapshot import snapshot
from meshhost.monitor.spans import parse_traceparent

if TYPE_CHECKING:
    from meshhost.control.source import ControlledHost

__all__ = ["HostControl", "event_to_dict"]

log = logging.getLogger(__name__)

FORWARD_TIMEOUT_S = 30.0
"""A forwarded op (e.g. ``start`` compiling a big module on a slow host) may take a while."""
MAX_CALL_TIMEOUT_MS = 10 * 60 * 1000
"""Upper bound of a CLI ``call`` deadline."""
MAX_COUNT = 1000
_SIGNED: contextvars.ContextVar[tuple[Mapping[str, Any], Any]] = contextvars.ContextVar(
    "signed_request", default=({}, None)
)
"""The args as signed and the signature of the op this task is handling, for ops that
pass it on (``start`` by labels, ``stop`` everywhere); per trio task, so concurrent
requests never see each other's."""
HOST_OPS = frozenset({"inventory", "start", "stop", "scale", "host_stop", "metrics"}) | KEYRING_OPS
"""Ops that act on one host and are forwarded when ``host`` names another."""


ENTRY_SIGS = "entry_sigs"
"""Argument of a signed op carrying the operator's signatures of its directory entries."""


def _invalid(message: str) -> ControlError:
    return ControlError(ErrorCode.INVALID, message)


def _text(args: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        if required:
            raise _invalid(
                f"argument {name!r} is required"
                if value is None
                else f"argument {name!r} must not be empty"
            )
        return None
    if not isinstance(value, str):
        raise _invalid(f"argument {name!r} must be text, got {type(value).__name__}")
    return value


def _count(args: Mapping[str, Any], name: str, default: int | None, *, low: int = 1) -> int | None:
    value = args.get(name)
    if value is None:
        return default
    if type(value) is not int or not low <= value <= MAX_COUNT:
        raise _invalid(f"argument {name!r} must be a whole number from {low} to {MAX_COUNT}")
    return value


def _labels(args: Mapping[str, Any]) -> dict[str, str]:
    value = args.get("labels") or {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid("argument 'labels' must be a map of text to text")
    return dict(value)


def _link_row(link: LinkDefinition) -> dict[str, Any]:
    """A link as ``link_put`` / ``link_list`` answer it (the names ``link put`` takes)."""
    return {
        "actor": link.actor_id,
        "contract": link.contract_id,
        "link_name": link.link_name,
        "provider": link.provider_id,
        "values": dict(link.values),
    }


class HostControl:
    """Answers control requests for one running host."""

    def __init__(self, host: ControlledHost) -> None:
        self.host = host

    @property
    def actors(self) -> ActorHost:
        return self.host.actors

    # -- entry points ----------------------------------------------------------

    async def dispatch(
        self, op: str, args: Mapping[str, Any], *, auth: Any = None, route: str | None = None
    ) -> Any:
        """An op from the local CLI."""
        if route is not None:
            raise _invalid("'route' is set by a forwarding host, never by a client")
        return await self._dispatch(op, args, forward=True, auth=auth)

    async def dispatch_from_peer(
        self, op: str, args: Mapping[str, Any], *, auth: Any = None, route: str | None = None
    ) -> Any:
        """An op a peer forwarded to us (never forwarded again)."""
        return await self._dispatch(op, args, forward=False, auth=auth, route=route)

    def authorize(self, op: str, args: Mapping[str, Any], auth: Any) -> str | None:
        """The signer of an op this host may run (None: no key needed); raises NotAuthorized."""
        security = self.host.security
        return self.host.authorizer.check(op, args, auth, security.state(), int(time.time() * 1000))

    async def _dispatch(
        self,
        op: str,
        args: Mapping[str, Any],
        *,
        forward: bool,
        auth: Any = None,
        route: str | None = None,
    ) -> Any:
        """Run the op; answer only once every durable write it made is on disk.

        Its writes go through the host's disk writer (group commit on a thread,
        never an fsync on the event loop); the tickets this task submitted are
        waited for here, so an acknowledged write survives a crash.
        """
        writer = self.host.writer
        with writer.track() as tickets:
            result = await self._dispatch_now(op, args, forward=forward, auth=auth, route=route)
        try:
            await writer.durable(tickets)
        except MeshError as exc:
            raise ControlError(exc.code, f"{op!r} was not stored on disk: {exc}") from None
        return result

    async def _dispatch_now(
        self,
        op: str,
        args: Mapping[str, Any],
        *,
        forward: bool,
        auth: Any = None,
        route: str | None = None,
    ) -> Any:
        try:
            # Every host that gets a request checks it: the one the CLI asked and the
            # one a request was forwarded to (which trusts no forwarder).
            signer = self.authorize(op, args, auth)
            signed = args
            if route is not None:
                if route != self.host.host_id or args.get("host") is not None:
                    raise _invalid(f"this is host {self.host.host_id}, not {route}")
                args = {**args, "host": route}  # where the forwarder chose to apply it
            if op in HOST_OPS:
                target = self._host_arg(args)
                if target is not None and target != self.host.host_id:
                    if not forward:
                        raise _invalid(f"this is host {self.host.host_id}, not {target}")
                    return await self.forward(target, op, signed, auth=auth)
            staging = self._staging(op, args, signer)
            if staging is None:
                return await self._run(op, args, signed, auth)
            # the signatures are for the staging, not an argument of the op itself
            args = {k: v for k, v in args.items() if k != ENTRY_SIGS}
            with self.host.directory.staged(staging):
                result = await self._run(op, args, signed, auth)
            if staging.missing:
                raise ControlError(
                    ErrorCode.SIGN,
                    f"{op!r} writes {len(staging.missing)} lattice-wide entr"
                    f"{'y' if len(staging.missing) == 1 else 'ies'} that operator {signer} "
                    "must sign (the CLI does this by itself; proto/spec/operators.md)",
                    sign=[
                        [
                            e.ns,
                            e.key,
                            e.stamp.packed(),
                            e.stamp.node,
                            None if e.value is None else encode_value(e.value),
                        ]
                        for e in staging.missing
                    ],
                )
            self.host.directory.commit(staging)
            return result
        except ControlError:
            raise
        except MeshError as exc:
            raise ControlError(exc.code, str(exc)) from None

    async def _run(
        self, op: str, args: Mapping[str, Any], signed: Mapping[str, Any], auth: Any
    ) -> Any:
        if op in KEYRING_OPS:
            return await keyring_op(self.host, op, args)
        handler = getattr(self, "op_" + op, None) if op.isidentifier() else None
        if handler is None:
            if op in APP_OPS:
                if op == "apply":
                    await self._store_modules(args)
                return self.host.app_ops.dispatch(op, args)
            raise ControlError(ErrorCode.UNSUPPORTED, f"unknown control op {op!r}")
        _SIGNED.set((signed, auth))
        return await handler(args)

    async def _store_modules(self, args: Mapping[str, Any]) -> None:
        """Store the modules an ``apply`` carries, on a thread (each is an fsync'd
        file), before it runs: it then finds them stored and only checks them.

        They are stored by content hash, so one the apply then refuses costs
        disk space only.  Raises ModuleStoreFailed when the disk refuses.
        """
        modules = args.get("modules")
        if not isinstance(modules, Mapping):
            return  # apply says what is wrong with the argument
        blobs = [m for m in modules.values() if isinstance(m, bytes)]
        store = self.actors.modules
        for module in blobs:
            try:
                await trio.to_thread.run_sync(store.put, module)
            except ModuleStoreFailed as exc:
                raise ModuleStoreFailed(f"apply: {exc}; nothing was applied") from None

    def _staging(self, op: str, args: Mapping[str, Any], signer: str | None) -> Staging | None:
        """How the lattice-wide writes of a signed op are collected (None: written at once,
        as in an open lattice or by an op that needs no role)."""
        security = self.host.security
        if signer is None or security.state().open:
            return None
        provided: dict[tuple[str, str], tuple[int, tuple[str, bytes]]] = {}
        raw = args.get(ENTRY_SIGS)
        if raw is not None:
            if not isinstance(raw, list) or len(raw) > 10_000:
                raise _invalid("argument 'entry_sigs' must be a list of [ns, key, stamp, sig]")
            for item in raw:
                if not (
                    isinstance(item, list)
                    and len(item) == 4
                    and isinstance(item[0], str)
                    and isinstance(item[1], str)
                    and type(item[2]) is int
                    and isinstance(item[3], bytes)
                ):
                    raise _invalid(
                        "each 'entry_sigs' item is [ns (text), key (text), "
                        "stamp (int), signature (bytes)]"
                    )
                provided[(item[0], item[1])] = (item[2], (signer, item[3]))
        return Staging(
            check=security.check_entry, provided=provided, exempt=frozenset({SECURITY_NS})
        )

    async def forward(
        self,
        host_id: str,
        op: str,
        args: Mapping[str, Any],
        *,
        auth: Any = None,
        route: str | None = None,
    ) -> Any:
        """Run ``op`` on ``host_id`` over the lattice; its result or its ControlError.

        ``args`` and ``auth`` travel exactly as the operator signed them; ``route``
        names ``host_id`` when the signed args name no host (this host chose it).
        """
        data = await self.host.send_to_host(
            host_id, CHANNEL, encode_request(op, args, auth=auth, route=route), FORWARD_TIMEOUT_S
        )
        try:
            return decode_reply(data).get("result")
        except ControlError as exc:
            if exc.code is not ErrorCode.SIGN:
                raise
            # No op forwarded to one host writes lattice-wide entries there, so an
            # honest host never asks; passed on, the operator's CLI would sign the
            # entries it names (a link, a config value of its choosing) and send the
            # signatures to it in the retried request.
            log.warning(
                "host %s asked for lattice-wide entries to be signed for a forwarded %r: refused",
                host_id,
                op,
            )
            raise ControlError(
                ErrorCode.PROTOCOL,
                f"host {host_id} asked for lattice-wide entries to be signed for {op!r}, "
                "which writes none there; refused (a host that asks this is misbehaving)",
            ) from None

    async def events(self, args: Mapping[str, Any]) -> AsyncGenerator[Mapping[str, Any], None]:
        receive = self.host.subscribe()
        async with receive:
            async for event in receive:
                yield event_to_dict(event)

    # -- helpers ---------------------------------------------------------------

    def _host_arg(self, args: Mapping[str, Any]) -> str | None:
        text = _text(args, "host", required=False)
        return None if text is None else self.resolve_host(text)

    def resolve_host(self, text: str) -> str:
        """A member's full id from its id or a unique prefix of it."""
        ids = [m.id for m in self.host.members() if m.state != MemberState.DEAD]
        if text in ids:
            return text
        matches = [i for i in ids if i.startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ControlError(
                ErrorCode.NOT_FOUND,
                f"no live host {text!r} in lattice {self.host.config.lattice!r}; "
                "`meshhost hosts` lists them",
            )
        raise _invalid(f"host prefix {text!r} matches {len(matches)} hosts; give more of the id")

    def resolve_actor(self, text: str) -> str:
        """An actor's ``M…`` key from the key or a call alias some host runs."""
        if is_actor_key(text):
            return text
        summary = self.host.directory.actor_by_alias(text)
        if summary is None:
            raise ControlError(
                ErrorCode.NOT_FOUND,
                f"no actor with call alias {text!r} runs in the lattice; give its M… key",
            )
        return summary.id

    # -- hosts -----------------------------------------------------------------

    async def op_hosts(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        status = self.host.status()
        directory = self.host.directory
        rows = []
        for m in status["members"]:
            view = directory.host(m["id"])
            rows.append(
                {
                    "id": m["id"],
                    "address": m["addr"],
                    "state": m["state"],
                    "incarnation": m["incarnation"],
                    "labels": m["labels"],
                    "actors": sum(n for _, n in view.actors.values()) if view else 0,
                    "local": m["id"] == self.host.host_id,  # the host that answered
                }
            )
        return rows

    async def op_host_stop(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self.host.stop_soon()
        return {"host": self.host.host_id}

    async def op_metrics(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """This host's figures (:func:`meshhost.monitor.snapshot`); ``metrics: false``
        leaves out the Prometheus families (``top`` polls every host each second)."""
        with_metrics = args.get("metrics", True)
        if not isinstance(with_metrics, bool):
            raise _invalid("argument 'metrics' must be true or false")
        if self.host.monitor is None:
            raise ControlError(
                ErrorCode.UNSUPPORTED, f"host {short_id(self.host.host_id)} runs without monitoring"
            )
        return snapshot(self.host, with_metrics=with_metrics)

    async def op_inventory(self, args: Mapping[str, Any]) -> dict[str, Any]:
        inventory = self.actors.inventory()
        inventory["labels"] = self.host.labels
        return inventory

    # -- actors ------------------------------------------------------------------

    async def op_start(self, args: Mapping[str, Any]) -> dict[str, Any]:
        module = args.get("module")
        if not isinstance(module, bytes) or not module:
            raise _invalid("argument 'module' must be the actor's signed .wasm bytes")
        count = _count(args, "count", 1)
        assert count is not None
        labels = _labels(args)
        limits = args.get("limits")
        if limits is not None:  # checked here too, so a bad value fails before forwarding
            limits_with(self.actors.limit_defaults, limits, "argument 'limits'")
        if labels and args.get("host") is None:
            target = self._pick_host(labels)
            if target != self.host.host_id:
                signed, auth = _SIGNED.get()
                result: dict[str, Any] = await self.forward(
                    target, "start", signed, auth=auth, route=target
                )
                return result
        actor = await self.actors.start(module, count, limits=limits)
        return {
            "actor": actor.actor_id,
            "name": actor.name,
            "host": self.host.host_id,
            "count": count,
        }

    def _pick_host(self, labels: dict[str, str]) -> str:
        """The live host with all ``labels`` running the fewest instances (us on a tie)."""
        directory = self.host.directory
        live = self.host.alive_ids()
        best: tuple[int, int, str] | None = None
        for host_id, host_labels in directory.host_labels().items():
            if host_id not in live or any(host_labels.get(k) != v for k, v in labels.items()):
                continue
            view = directory.host(host_id)
            load = sum(n for _, n in view.actors.values()) if view else 0
            key = (load, 0 if host_id == self.host.host_id else 1, host_id)
            best = key if best is None or key < best else best
        if best is None:
            wanted = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
            raise ControlError(ErrorCode.NOT_FOUND, f"no live host has the labels {wanted}")
        return best[2]

    async def op_stop(self, args: Mapping[str, Any]) -> dict[str, Any]:
        actor = self.resolve_actor(_text(args, "actor") or "")
        count = _count(args, "count", None)
        if args.get("host") is not None:  # resolved to us by _dispatch
            return {"stopped": await self.actors.stop(actor, count), "host": self.host.host_id}
        # No host given: stop it wherever it runs (count: per host).
        stopped, hosts = 0, []
        for loc in self.host.directory.hosts_running(actor):
            if loc.host_id == self.host.host_id:
                n = await self.actors.stop(actor, count)
            else:
                signed, auth = _SIGNED.get()
                result = await self.forward(
                    loc.host_id, "stop", signed, auth=auth, route=loc.host_id
                )
                n = int(result["stopped"])
            stopped += n
            hosts.append(loc.host_id)
        if not hosts:
            raise ControlError(ErrorCode.NOT_FOUND, f"actor {actor} runs on no host")
        return {"stopped": stopped, "hosts": hosts}

    async def op_scale(self, args: Mapping[str, Any]) -> dict[str, Any]:
        actor = self.resolve_actor(_text(args, "actor") or "")
        count = _count(args, "count", None, low=0)
        if count is None:
            raise _invalid("argument 'count' is required")
        total = await self.actors.scale(actor, count)
        return {"actor": actor, "count": total, "host": self.host.host_id}

    async def op_call(self, args: Mapping[str, Any]) -> dict[str, Any]:
        target = _text(args, "actor") or ""
        operation = _text(args, "operation") or ""
        payload = args.get("payload", b"")
        if not isinstance(payload, bytes):
            raise _invalid("argument 'payload' must be bytes")
        timeout_ms = args.get("timeout_ms", 10_000)
        if type(timeout_ms) is not int or not 1 <= timeout_ms <= MAX_CALL_TIMEOUT_MS:
            raise _invalid(f"argument 'timeout_ms' must be from 1 to {MAX_CALL_TIMEOUT_MS}")
        traceparent = args.get("traceparent")
        if traceparent is not None and not isinstance(traceparent, str):
            raise _invalid("argument 'traceparent' must be text (a W3C traceparent)")
        parent = parse_traceparent(traceparent) if traceparent else None
        answer, host, ctx = await self.actors.call(
            target, operation, payload, timeout_s=timeout_ms / 1000, parent=parent
        )
        return {"payload": answer, "host": host, "trace_id": ctx.trace_id.hex()}

    # -- traces ----------------------------------------------------------------------

    async def op_spans(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        """This host's own spans of some traces (the ``trace`` op asks every host)."""
        try:
            return tracing.local_spans(self.actors.spans, args)
        except TraceArgsError as exc:
            raise _invalid(str(exc)) from None

    async def op_trace(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """A trace's spans from every live host in the lattice."""
        live = self.host.alive_ids()

        async def ask(host_id: str, query: dict[str, Any]) -> Any:
            data = await self.host.send_to_host(
                host_id, CHANNEL, encode_request("spans", query), tracing.PEER_TIMEOUT_S
            )
            return decode_reply(data).get("result") or []

        try:
            return await tracing.gather_trace(
                args,
                local_host=self.host.host_id,
                ring=self.actors.spans,
                peers=sorted(live),
                ask=ask,
            )
        except TraceArgsError as exc:
            raise _invalid(str(exc)) from None

    # -- links and config ----------------------------------------------------------

    async def op_link_put(self, args: Mapping[str, Any]) -> dict[str, Any]:
        values = args.get("values") or {}
        if not isinstance(values, Mapping):
            raise _invalid("argument 'values' must be a map of text to text")
        contract = _text(args, "contract") or ""
        if ":" not in contract and not is_actor_key(contract):
            directory = self.host.directory
            if directory.actor_by_alias(contract) is None:
                raise _invalid(
                    f"contract {contract!r} is neither a capability contract id "
                    "(namespace:name, e.g. wasmcloud:keyvalue), an actor key (M…), nor the "
                    "call alias of a running actor"
                )
        try:
            link = LinkDefinition(
                actor_id=self.resolve_actor(_text(args, "actor") or ""),
                contract_id=contract,
                link_name=_text(args, "link_name", required=False) or "default",
                provider_id=_text(args, "provider", required=False) or "",
                values=dict(values),
            )
        except MeshError as exc:
            raise _invalid(str(exc)) from None
        self.host.directory.put_link(link)
        return _link_row(link)

    async def op_link_del(self, args: Mapping[str, Any]) -> dict[str, Any]:
        actor = self.resolve_actor(_text(args, "actor") or "")
        contract = _text(args, "contract") or ""
        name = _text(args, "link_name", required=False) or "default"
        if not self.host.directory.delete_link(actor, contract, name):
            raise ControlError(
                ErrorCode.NOT_FOUND, f"no link {actor} -> {contract} ({name}); `meshhost link list`"
            )
        return {"actor": actor, "contract": contract, "link_name": name}

    async def op_link_list(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        links = sorted(self.host.directory.links(), key=lambda link: link.key)
        return [_link_row(link) for link in links]

    async def op_config_put(self, args: Mapping[str, Any]) -> dict[str, Any]:
        key = _text(args, "key") or ""
        value = args.get("value")
        if value is None:
            raise _invalid("argument 'value' is required (use config del to remove)")
        self.host.directory.config_put(key, value)
        return {"key": key}

    async def op_config_get(self, args: Mapping[str, Any]) -> Any:
        key = _text(args, "key") or ""
        value = self.host.directory.config_get(key)
        if value is None:
            raise ControlError(ErrorCode.NOT_FOUND, f"no config entry {key!r}")
        return value

    async def op_config_del(self, args: Mapping[str, Any]) -> dict[str, Any]:
        key = _text(args, "key") or ""
        if not self.host.directory.config_delete(key):
            raise ControlError(ErrorCode.NOT_FOUND, f"no config entry {key!r}")
        return {"key": key}

    # -- operators, issuers, revocations -------------------------------------------

    async def op_auth_info(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """What the CLI needs to sign: the lattice name, whether it has admins at all, and
        where the admin key `lattice new` made would be (beside this host's secret file)."""
        security = self.host.security
        path = self.host.secret_path
        return {
            "lattice": self.host.config.lattice,
            "open": security.state().open,
            "host": self.host.host_id,
            "admin_key_file": None if path is None else str(admin_key_path(path)),
        }

    async def op_security_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        state = self.host.security.state()
        return {
            "open": state.open,
            "operators": [
                {"key": k, "role": r.label, "bootstrap": k in state.bootstrap}
                for k, r in sorted(state.roles.items())
            ],
            "issuers": sorted(state.issuers),
            "host_issuers": list(self.host.security.host_issuers),
            "revoked": sorted(state.revoked),
            "ignored": state.ignored,
        }

    async def op_security_put(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Store one signed statement (grant a role, allow an issuer, revoke a key).

        The request was checked for role admin already; the statement itself must be
        signed by an admin too, since it is what every other host checks."""
        security = self.host.security
        data = args.get("statement")
        try:
            statement = decode_statement(self.host.config.lattice, data)
        except (DecodeError, SignatureError, NkeyError) as exc:
            raise _invalid(f"argument 'statement' is not a valid signed statement: {exc}") from None
        if security.state().role_of(statement.signer) != Role.ADMIN:
            raise NotAuthorized(
                f"the statement is signed by {statement.signer}, which is not an admin of "
                f"lattice {self.host.config.lattice!r}; sign it with an admin key"
            )
        if (unheard := security.without_effect(statement)) is not None:
            raise _invalid(
                f"the {statement.kind.value} statement about {statement.subject} "
                f"was not stored: {unheard}"
            )
        security.add(statement)
        # this host applies it at once; the others when the entry reaches them
        self.host.publish_event(
            {"kind": "entry_changed", "ns": SECURITY_NS, "key": statement.digest, "deleted": False}
        )
        return {
            "kind": statement.kind.value,
            "subject": statement.subject,
            "value": statement.value,
            "digest": statement.digest,
        }
