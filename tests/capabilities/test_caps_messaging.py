"""wasmcloud:messaging: subscriptions from link config, delivery, request/reply, NATS subjects."""

from __future__ import annotations

import msgpack
import pytest
import trio

from meshhost.capabilities import MESSAGING, Dispatcher
from meshhost.capabilities.contracts import PubMessage, ReplyMessage, RequestMessage, SubMessage
from meshhost.capabilities.providers.messaging import MessagingProvider, subscriptions_of
from meshhost.capabilities.providers.subjects import matches, parse_pattern, validate_subject
from meshhost.errors import LinkConfigError, ProviderError

PUB = "M" + "P" * 55
SUB_A = "M" + "A" * 55
SUB_B = "M" + "B" * 55


class Subscribers:
    """Stands in for the runtime/router: records HandleMessage deliveries, may reply."""

    def __init__(self) -> None:
        self.got: list[tuple[str, SubMessage]] = []
        self.provider: MessagingProvider | None = None
        self.arrived = trio.Event()

    async def __call__(self, actor_id: str, operation: str, payload: bytes, timeout_s: float):
        assert operation == "MessageSubscriber.HandleMessage"
        msg = SubMessage.decode(payload)
        self.got.append((actor_id, msg))
        if msg.reply_to:  # behave like a responder actor
            await self.provider.publish(msg.reply_to, b"re: " + msg.body)
        self.arrived.set()
        return b""


@pytest.fixture
async def bus(nursery, make_link):
    subs = Subscribers()
    provider = MessagingProvider(subs, random_bytes=lambda n: b"\x01" * n)
    subs.provider = provider
    await nursery.start(provider.serve)
    d = Dispatcher(providers=[provider])
    await d.put_link(make_link(PUB, MESSAGING))
    await d.put_link(make_link(SUB_A, MESSAGING, SUBSCRIPTION="orders.*.created,audit.>"))
    await d.put_link(make_link(SUB_B, MESSAGING, config_json='{"subscriptions": ["orders.eu.*"]}'))
    return d, provider, subs


async def settle(provider: MessagingProvider, count: int) -> None:
    with trio.fail_after(5):
        while provider.delivered + provider.failed < count:
            await trio.sleep(0.001)


async def test_publish_reaches_every_matching_subscription(bus, make_actor):
    d, provider, subs = bus
    pub = make_actor((MESSAGING,), actor_id=PUB, name="pub")
    payload = PubMessage("orders.eu.created", None, b"order 1").encode()
    out = await trio.to_thread.run_sync(
        d.host_call, pub, "", MESSAGING, "Messaging.Publish", payload
    )
    assert out == b""
    await settle(provider, 2)
    assert sorted(actor for actor, _ in subs.got) == [SUB_A, SUB_B]
    assert subs.got[0][1] == SubMessage("orders.eu.created", None, b"order 1")


async def test_gt_wildcard_needs_at_least_one_more_token(bus, make_actor):
    d, provider, subs = bus
    pub = make_actor((MESSAGING,), actor_id=PUB, name="pub")
    for subject in ("audit", "audit.x.y", "orders.us.created"):
        d.host_call(
            pub, "", MESSAGING, "Messaging.Publish", PubMessage(subject, None, b"").encode()
        )
    await settle(provider, 2)
    assert [(a, m.subject) for a, m in subs.got] == [
        (SUB_A, "audit.x.y"),
        (SUB_A, "orders.us.created"),
    ]


async def test_request_gets_the_subscribers_reply(bus, make_actor):
    d, _, subs = bus
    pub = make_actor((MESSAGING,), actor_id=PUB, name="pub")
    payload = RequestMessage("audit.ping", b"hello", 2000).encode()
    out = await trio.to_thread.run_sync(
        d.host_call, pub, "", MESSAGING, "Messaging.Request", payload
    )
    inbox = "_INBOX." + "01" * 12
    assert ReplyMessage.decode(out) == ReplyMessage(inbox, None, b"re: hello")
    assert subs.got == [(SUB_A, SubMessage("audit.ping", inbox, b"hello"))]


async def test_request_without_responders_fails_at_once(bus, make_actor):
    d, _, _ = bus
    pub = make_actor((MESSAGING,), actor_id=PUB, name="pub")
    payload = RequestMessage("nobody.home", b"?", 60_000).encode()
    with pytest.raises(ProviderError, match=r"no responders for subject 'nobody\.home'"):
        await trio.to_thread.run_sync(d.host_call, pub, "", MESSAGING, "Messaging.Request", payload)


async def test_request_times_out_when_nobody_replies(nursery, make_actor, make_link):
    async def silent(actor_id, operation, payload, timeout_s):
        return b""

    provider = MessagingProvider(silent)
    await nursery.start(provider.serve)
    d = Dispatcher(providers=[provider])
    await d.put_link(make_link(PUB, MESSAGING))
    await d.put_link(make_link(SUB_A, MESSAGING, SUBSCRIPTION="q"))
    pub = make_actor((MESSAGING,), actor_id=PUB, name="pub")
    payload = RequestMessage("q", b"", 50).encode()
    with pytest.raises(ProviderError, match="no reply on subject 'q' within 50 ms"):
        await trio.to_thread.run_sync(d.host_call, pub, "", MESSAGING, "Messaging.Request", payload)


async def test_unlink_ends_the_subscription(bus, make_actor):
    d, provider, _ = bus
    assert await d.del_link(SUB_A, MESSAGING, "")
    assert provider.subscribers("audit.x") == []
    assert provider.subscribers("orders.eu.created") == [SUB_B]


async def test_publishing_a_wildcard_subject_is_refused(bus, make_actor):
    d, _, _ = bus
    pub = make_actor((MESSAGING,), actor_id=PUB, name="pub")
    with pytest.raises(ProviderError, match="contains a wildcard"):
        d.host_call(
            pub, "", MESSAGING, "Messaging.Publish", msgpack.packb({"subject": "a.*", "body": b""})
        )


def test_subscription_config_is_validated(make_link):
    assert subscriptions_of(make_link(SUB_A, MESSAGING, subscription="a.b, c.>")) == (
        ("a", "b"),
        ("c", ">"),
    )
    for bad in ("a..b", "a.>.b", "a.b*", "has space"):
        with pytest.raises(LinkConfigError):
            subscriptions_of(make_link(SUB_A, MESSAGING, SUBSCRIPTION=bad))


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.b.c", False),
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("*.b.*", "x.b.y", True),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        (">", "anything.at.all", True),
    ],
)
def test_nats_subject_matching(pattern, subject, expected):
    validate_subject(subject)
    assert matches(parse_pattern(pattern), subject) is expected


async def test_shutdown_wakes_a_guest_blocked_in_request(make_actor, make_link):
    from meshhost.errors import ProviderNotAvailable

    async def silent(actor_id, operation, payload, timeout_s):
        return b""

    provider = MessagingProvider(silent)
    d = Dispatcher(providers=[provider])
    await d.put_link(make_link(PUB, MESSAGING))
    await d.put_link(make_link(SUB_A, MESSAGING, SUBSCRIPTION="q"))
    pub = make_actor((MESSAGING,), actor_id=PUB, name="pub")
    payload = RequestMessage("q", b"", 600_000).encode()
    outcome = []

    async def requester():
        try:
            await trio.to_thread.run_sync(
                d.host_call, pub, "", MESSAGING, "Messaging.Request", payload
            )
        except ProviderNotAvailable as exc:
            outcome.append(str(exc))

    with trio.fail_after(10):
        async with trio.open_nursery() as outer:
            async with trio.open_nursery() as service:
                await service.start(provider.serve)
                outer.start_soon(requester)
                while provider.delivered == 0:
                    await trio.sleep(0.001)
                service.cancel_scope.cancel()  # the host shuts down
    assert outcome == ["Messaging.Request: the host is shutting down"]


async def test_queue_group_members_take_turns(nursery, make_link):
    provider = MessagingProvider(Subscribers())
    d = Dispatcher(providers=[provider])
    await d.put_link(make_link(SUB_A, MESSAGING, SUBSCRIPTION="jobs.*", QUEUEGROUP_NAME="workers"))
    await d.put_link(make_link(SUB_B, MESSAGING, SUBSCRIPTION="jobs.>", QUEUEGROUP_NAME="workers"))
    await d.put_link(make_link(PUB, MESSAGING, SUBSCRIPTION="jobs.*"))  # not in the group
    picks = [provider.subscribers("jobs.x") for _ in range(4)]
    assert picks == [[PUB, SUB_A], [PUB, SUB_B], [PUB, SUB_A], [PUB, SUB_B]]


async def test_request_reply_across_two_hosts_through_the_forward_hook(
    nursery, make_actor, make_link
):
    """Host X's actor requests; the subscriber runs on host Y and replies there."""
    hosts: dict[str, MessagingProvider] = {}

    async def run_on_y(actor_id, operation, payload, timeout_s):  # X's router: actor lives on Y
        msg = SubMessage.decode(payload)
        await hosts["y"].publish(msg.reply_to, b"from y: " + msg.body)
        return b""

    async def not_here(actor_id, operation, payload, timeout_s):  # pragma: no cover
        raise AssertionError("nothing runs on host Y's own deliveries in this test")

    async def to_x(subject, reply_to, body):  # Y's router: the inbox names host X
        assert subject.startswith("_INBOX.hostx.")
        await hosts["x"].publish(subject, body, reply_to)

    hosts["x"] = MessagingProvider(run_on_y, inbox_tag="hostx")
    hosts["y"] = MessagingProvider(not_here, inbox_tag="hosty", forward_reply=to_x)
    dispatchers = {}
    for name, provider in hosts.items():
        await nursery.start(provider.serve)
        d = dispatchers[name] = Dispatcher(providers=[provider])
        await d.put_link(make_link(PUB, MESSAGING))
        await d.put_link(make_link(SUB_A, MESSAGING, SUBSCRIPTION="time.now"))
    pub = make_actor((MESSAGING,), actor_id=PUB, name="pub")
    payload = RequestMessage("time.now", b"?", 5000).encode()
    out = await trio.to_thread.run_sync(
        dispatchers["x"].host_call, pub, "", MESSAGING, "Messaging.Request", payload
    )
    reply = ReplyMessage.decode(out)
    assert reply.body == b"from y: ?" and reply.subject.startswith("_INBOX.hostx.")
