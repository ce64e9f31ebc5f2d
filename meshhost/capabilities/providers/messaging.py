"""``wasmcloud:messaging``: publish/subscribe and request/reply between actors.

Operations (messaging.smithy): ``Messaging.Publish`` (``PubMessage {subject,
replyTo?, body}``, no output) and ``Messaging.Request`` (``RequestMessage
{subject, body, timeoutMs}`` -> ``ReplyMessage``).  Subscribed actors receive
``MessageSubscriber.HandleMessage`` with ``SubMessage {subject, replyTo?,
body}``.

Subscriptions come from link config, as in wasmCloud's NATS provider:
``SUBSCRIPTION=a.b,c.>`` (comma-separated NATS patterns), or
``config_json`` / ``config_b64`` holding ``{"subscriptions": [...]}``.  A
message is delivered once per link whose patterns match its subject.

Delivery.  ``Publish`` returns as soon as the deliveries are queued; a trio
task then runs each one through the :data:`ActorInvoker` hook
(``invoke(actor_id, "MessageSubscriber.HandleMessage", payload, timeout_s)``),
concurrently (at most ``MAX_CONCURRENT_DELIVERIES``), so delivery order is
not guaranteed.  Because links are lattice-wide and the hook is the router,
the host where a message is published delivers it to every subscriber
wherever it runs: no broker and no per-host fan-out.  Locally the hook is the
runtime.  Failed deliveries are logged, not retried (NATS core semantics:
at most once).

Request/reply.  ``Request`` publishes with a fresh ``replyTo`` inbox
(``_INBOX.<random>``) and blocks the calling guest's worker thread until a
``Publish`` to that inbox arrives or ``timeoutMs`` passes (the first reply
wins).  With no matching subscriber it fails at once ("no responders", as
NATS does).  Inboxes are ``_INBOX.<inbox_tag>.<random>`` when the host
gives an ``inbox_tag`` (its id); a reply published on another host to an
inbox that is not its own goes to the ``forward_reply`` hook, which the
router implements by calling :meth:`MessagingProvider.publish` on the host
the tag names.  Without the hook, replies must be published on the
requesting host.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

import trio

from meshhost.capabilities import legacy as lg
from meshhost.capabilities.contracts import (
    MESSAGING,
    PubMessage,
    ReplyMessage,
    RequestMessage,
    SubMessage,
)
from meshhost.capabilities.links import LinkDefinition, LinkKey
from meshhost.capabilities.providers.base import (
    INCOMING_TRACEPARENT,
    ActorInvoker,
    CallContext,
    Provider,
)
from meshhost.capabilities.providers.subjects import matches, parse_pattern, validate_subject
from meshhost.errors import (
    LinkConfigError,
    MeshError,
    ProviderError,
    ProviderNotAvailable,
    ProviderOverloaded,
    ProviderPayloadTooLarge,
)

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "HANDLE_MESSAGE",
    "MAX_CONCURRENT_DELIVERIES",
    "MAX_QUEUED_DELIVERIES",
    "MessagingProvider",
    "ReplyForwarder",
    "subscriptions_of",
]

log = logging.getLogger(__name__)

HANDLE_MESSAGE = "MessageSubscriber.HandleMessage"
INBOX_PREFIX = "_INBOX."

MAX_QUEUED_DELIVERIES = 4096
"""Deliveries waiting for a task; beyond this Publish fails with ProviderOverloaded."""

MAX_CONCURRENT_DELIVERIES = 64
"""Deliveries running at once (each holds a guest instance somewhere)."""

DEFAULT_DELIVERY_TIMEOUT_S = 30.0
"""Deadline of one HandleMessage delivery."""

DEFAULT_REQUEST_TIMEOUT_MS = 2000
"""Used when a Request says timeoutMs = 0."""

MAX_REQUEST_TIMEOUT_MS = 10 * 60 * 1000
"""No request blocks a guest thread longer than this."""

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest message body (NATS' own default is 1 MiB; we stream, so allow more)."""


def subscriptions_of(link: LinkDefinition) -> tuple[tuple[str, ...], ...]:
    """Parsed subscription patterns from a link's config; raises LinkConfigError."""
    texts: list[str] = []
    for key, config in link.json_configs():
        subs = config.get("subscriptions", []) if isinstance(config, dict) else None
        if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
            raise LinkConfigError(f"{link.describe()}: {key} 'subscriptions' must be a list")
        texts.extend(subs)
    raw = link.value("SUBSCRIPTION")
    if raw is not None:
        texts.extend(part.strip() for part in raw.split(",") if part.strip())
    patterns: list[tuple[str, ...]] = []
    for text in texts:
        try:
            pattern = parse_pattern(text)
        except ValueError as exc:
            raise LinkConfigError(f"{link.describe()}: {exc}") from None
        if pattern not in patterns:
            patterns.append(pattern)
    return tuple(patterns)


@dataclass(frozen=True, slots=True)
class _Delivery:
    actor_id: str
    payload: bytes
    subject: str
    operation: str = HANDLE_MESSAGE
    fallback: tuple[str, bytes] | None = None
    """(operation, payload) for a wasmCloud 0.1x actor, tried when the wasmbus
    operation finds no handler in the guest (legacy.is_missing_handler)."""
    traceparent: str = ""
    """The W3C trace context of the publish (the publishing actor's call), or ""."""


@dataclass(frozen=True, slots=True)
class _Forward:
    subject: str
    reply_to: str | None
    body: bytes


ReplyForwarder = Callable[[str, str | None, bytes], Awaitable[None]]
"""``await forward(inbox_subject, reply_to, body)``: carry a reply to the host whose inbox it is."""


class _Waiter:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: PubMessage | None = None


class MessagingProvider(Provider):
    """wasmbus ``Messaging.*``, plus waSCC's (``wascc:messaging``) and wasmCloud
    0.1x's bare ``Publish`` / ``Request`` and their deliveries (``legacy.py``)."""

    contract_id = MESSAGING
    CONTRACT_ALIASES = (lg.WASCC_MESSAGING,)
    OPERATIONS: ClassVar[dict[str, str]] = {
        "Messaging.Publish": "op_publish",
        "Messaging.Request": "op_request",
        "Publish": "legacy_publish",
        "Request": "legacy_request",
    }

    def __init__(
        self,
        invoke: ActorInvoker,
        *,
        delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
        random_bytes: Callable[[int], bytes] = os.urandom,
        inbox_tag: str = "",
        forward_reply: ReplyForwarder | None = None,
    ) -> None:
        super().__init__()
        self._invoke = invoke
        self._inbox_prefix = f"{INBOX_PREFIX}{inbox_tag}." if inbox_tag else INBOX_PREFIX
        self._forward_reply = forward_reply
        self._delivery_timeout_s = delivery_timeout_s
        self._random_bytes = random_bytes
        self._lock = threading.Lock()
        self._subs: dict[LinkKey, tuple[str, tuple[tuple[str, ...], ...], str]] = {}
        self._turns: dict[str, int] = {}
        self._waiters: dict[str, _Waiter] = {}
        self._old_subscribers: set[str] = set()
        self.current_traceparent: Callable[[], str] = lambda: ""
        """Set by the host: the ``traceparent`` of the call running on this thread (an
        actor publishing), so its deliveries continue that trace."""
        """Subscribers that answered wasmCloud 0.1x's ``HandleMessage`` (tried first)."""
        self._send: trio.MemorySendChannel[_Delivery | _Forward] | None = None
        self._closing = False
        self.delivered = 0
        """Deliveries that completed (the actor answered), for tests and metrics."""
        self.failed = 0

    # --- links -------------------------------------------------------------

    async def on_put_link(self, link: LinkDefinition) -> None:
        patterns = subscriptions_of(link)
        queue = (link.value("QUEUEGROUP_NAME") or "").strip()
        with self._lock:
            self._subs[link.key] = (link.actor_id, patterns, queue)

    async def on_del_link(self, link: LinkDefinition) -> None:
        with self._lock:
            self._subs.pop(link.key, None)

    def subscribers(self, subject: str) -> list[str]:
        """Actor ids to deliver ``subject`` to: one per matching link, except that the
        links of one queue group (``QUEUEGROUP_NAME``) share a message, taking turns."""
        return [actor for actor, _contract in self._targets(subject)]

    def _targets(self, subject: str) -> list[tuple[str, str]]:
        """(actor id, contract id of its link) for each delivery of ``subject``."""
        targets: list[tuple[str, str]] = []
        groups: dict[str, list[tuple[str, str]]] = {}
        with self._lock:
            for key, (actor, patterns, queue) in sorted(self._subs.items()):
                if any(matches(p, subject) for p in patterns):
                    if queue:
                        groups.setdefault(queue, []).append((actor, key[1]))
                    else:
                        targets.append((actor, key[1]))
            for queue, members in sorted(groups.items()):
                turn = self._turns.get(queue, -1) + 1
                self._turns[queue] = turn
                targets.append(members[turn % len(members)])
        return targets

    # --- service -----------------------------------------------------------

    async def run_service(self, task_status: trio.TaskStatus[None]) -> None:
        send, receive = trio.open_memory_channel[_Delivery | _Forward](MAX_QUEUED_DELIVERIES)
        limiter = trio.CapacityLimiter(MAX_CONCURRENT_DELIVERIES)
        self._send = send
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                async for delivery in receive:
                    await limiter.acquire_on_behalf_of(delivery)
                    nursery.start_soon(self._deliver, delivery, limiter)
        finally:
            self._send = None

    async def aclose(self) -> None:
        """Wake every guest blocked in Request: the host is going away."""
        with self._lock:
            waiters = list(self._waiters.values())
            self._closing = True
        for waiter in waiters:
            waiter.event.set()

    async def _deliver(self, delivery: _Delivery | _Forward, limiter: trio.CapacityLimiter) -> None:
        if isinstance(delivery, _Forward):
            await self._forward(delivery, limiter)
            return
        INCOMING_TRACEPARENT.set(delivery.traceparent)  # this task's own context
        try:
            try:
                await self._invoke(
                    delivery.actor_id,
                    delivery.operation,
                    delivery.payload,
                    self._delivery_timeout_s,
                )
            except MeshError as exc:
                if delivery.fallback is None or not lg.is_missing_handler(exc):
                    raise
                operation, payload = delivery.fallback  # a wasmCloud 0.1x subscriber
                await self._invoke(delivery.actor_id, operation, payload, self._delivery_timeout_s)
                with self._lock:  # call it the way it answered first, next time
                    if operation == lg.WASMCLOUD_HANDLE_MESSAGE:
                        self._old_subscribers.add(delivery.actor_id)
                    else:
                        self._old_subscribers.discard(delivery.actor_id)
            self.delivered += 1
        except MeshError as exc:
            self.failed += 1
            log.warning(
                "message on %r not delivered to actor %s: %s",
                delivery.subject,
                delivery.actor_id,
                exc,
            )
        except Exception:  # a bug in the hook must not stop other deliveries
            self.failed += 1
            log.exception("delivering a message to actor %s failed", delivery.actor_id)
        finally:
            limiter.release_on_behalf_of(delivery)

    async def _forward(self, reply: _Forward, limiter: trio.CapacityLimiter) -> None:
        assert self._forward_reply is not None
        try:
            await self._forward_reply(reply.subject, reply.reply_to, reply.body)
        except Exception:  # MeshError or a bug: a lost reply times the requester out
            log.warning("reply to %r could not be forwarded", reply.subject, exc_info=True)
        finally:
            limiter.release_on_behalf_of(reply)

    def _enqueue(self, delivery: _Delivery | _Forward) -> None:
        """On the trio thread: queue one delivery."""
        if self._send is None:
            raise ProviderError("messaging: the provider's delivery service is not running")
        try:
            self._send.send_nowait(delivery)
        except trio.WouldBlock:
            raise ProviderOverloaded(
                f"messaging: {MAX_QUEUED_DELIVERIES} deliveries already queued; retry later"
            ) from None

    # --- publishing --------------------------------------------------------

    def owns_inbox(self, subject: str) -> bool:
        """Whether ``subject`` is one of this host's reply inboxes (``_INBOX.<tag>.…``)."""
        return subject.startswith(self._inbox_prefix) and len(subject) > len(self._inbox_prefix)

    def publish_sync(self, subject: str, body: bytes, reply_to: str | None = None) -> int:
        """Publish from any thread; returns how many deliveries were queued.

        Raises ProviderError for a bad subject, ProviderOverloaded when the
        queue is full, ProviderNotAvailable when the service is not running.
        """
        try:
            validate_subject(subject)
            if reply_to is not None:
                validate_subject(reply_to)
        except ValueError as exc:
            raise ProviderError(f"messaging: {exc}") from None
        if len(body) > MAX_BODY_BYTES:
            raise ProviderPayloadTooLarge(f"messaging: body exceeds {MAX_BODY_BYTES} bytes")
        with self._lock:
            waiter = self._waiters.get(subject)
        if waiter is not None:
            if waiter.reply is None:  # the first reply wins
                waiter.reply = PubMessage(subject, reply_to, body)
                waiter.event.set()
            return 1
        queued = 0
        if (
            self._forward_reply is not None
            and subject.startswith(INBOX_PREFIX)
            and not subject.startswith(self._inbox_prefix)
        ):  # another host's inbox: carry the reply there
            forward = _Forward(subject, reply_to, body)
            self.bridge.run_sync(self._enqueue, forward, what="Messaging.Publish")
            queued += 1
        targets = self._targets(subject)
        payload = SubMessage(subject, reply_to, body).encode()
        old_payload = lg.BROKER_MESSAGE.encode(subject=subject, reply_to=reply_to or "", body=body)
        traceparent = self.current_traceparent() if targets else ""
        for actor_id, contract_id in targets:
            if contract_id == lg.WASCC_MESSAGING:
                delivery = _Delivery(
                    actor_id,
                    old_payload,
                    subject,
                    lg.WASCC_DELIVER_MESSAGE,
                    traceparent=traceparent,
                )
            elif actor_id in self._old_subscribers:
                delivery = _Delivery(
                    actor_id,
                    old_payload,
                    subject,
                    lg.WASMCLOUD_HANDLE_MESSAGE,
                    fallback=(HANDLE_MESSAGE, payload),
                    traceparent=traceparent,
                )
            else:
                delivery = _Delivery(
                    actor_id,
                    payload,
                    subject,
                    fallback=(lg.WASMCLOUD_HANDLE_MESSAGE, old_payload),
                    traceparent=traceparent,
                )
            self.bridge.run_sync(self._enqueue, delivery, what="Messaging.Publish")
        return queued + len(targets)

    async def publish(self, subject: str, body: bytes, reply_to: str | None = None) -> int:
        """Publish from the trio thread (host, CLI); same contract as publish_sync."""
        return self.publish_sync(subject, body, reply_to)

    def op_publish(self, ctx: CallContext, payload: bytes) -> bytes:
        msg = PubMessage.decode(payload)
        self.publish_sync(msg.subject, msg.body, msg.reply_to or None)
        return b""

    def op_request(self, ctx: CallContext, payload: bytes) -> bytes:
        req = RequestMessage.decode(payload)
        timeout_ms = min(req.timeout_ms or DEFAULT_REQUEST_TIMEOUT_MS, MAX_REQUEST_TIMEOUT_MS)
        if self.bridge.on_trio_thread():
            raise ProviderError(
                "Messaging.Request blocks until a reply; it must run on a guest worker thread"
            )
        inbox = self._inbox_prefix + self._random_bytes(12).hex()
        waiter = _Waiter()
        with self._lock:
            if self._closing:
                raise ProviderNotAvailable("Messaging.Request: the host is shutting down")
            self._waiters[inbox] = waiter
        try:
            if self.publish_sync(req.subject, req.body, inbox) == 0:
                raise ProviderError(f"Messaging.Request: no responders for subject {req.subject!r}")
            if not waiter.event.wait(timeout_ms / 1000):
                raise ProviderError(
                    f"Messaging.Request: no reply on subject {req.subject!r} within {timeout_ms} ms"
                )
        finally:
            with self._lock:
                self._waiters.pop(inbox, None)
        reply = waiter.reply
        if reply is None:  # woken by aclose()
            raise ProviderNotAvailable("Messaging.Request: the host is shutting down")
        return ReplyMessage(reply.subject, reply.reply_to, reply.body).encode()

    # --- waSCC / wasmCloud 0.1x ----------------------------------------------------------

    def legacy_publish(self, ctx: CallContext, payload: bytes) -> bytes:
        """``Publish``: waSCC BrokerMessage (no answer) / 0.1x PublishArgs (PublishResponse)."""
        msg = lg.Shape(
            f"{ctx.link.contract_id} {lg.BROKER_MESSAGE.name}", lg.BROKER_MESSAGE.fields
        ).decode(payload)
        self.publish_sync(msg["subject"], msg["body"], msg["reply_to"] or None)
        if lg.generation_of(ctx.link.contract_id) == "wascc":
            return b""
        return lg.PUBLISH_RESPONSE.encode(published=True)

    def legacy_request(self, ctx: CallContext, payload: bytes) -> bytes:
        """``Request``: waSCC answers the reply's raw body, 0.1x a BrokerMessage."""
        args = lg.Shape(
            f"{ctx.link.contract_id} {lg.REQUEST_ARGS.name}", lg.REQUEST_ARGS.fields
        ).decode(payload)
        timeout_ms = min(max(args["timeout"], 0), 0xFFFF_FFFF)
        reply = ReplyMessage.decode(
            self.op_request(ctx, RequestMessage(args["subject"], args["body"], timeout_ms).encode())
        )
        if lg.generation_of(ctx.link.contract_id) == "wascc":
            return reply.body  # "the broker plugin applies no wrapper" (wascc-actor)
        return lg.BROKER_MESSAGE.encode(
            subject=reply.subject, reply_to=reply.reply_to or "", body=reply.body
        )
