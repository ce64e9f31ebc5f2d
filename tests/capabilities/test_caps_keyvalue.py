"""wasmcloud:keyvalue through the dispatcher: every operation, persistence, namespaces."""

from __future__ import annotations

import msgpack
import pytest
import trio

from meshhost.capabilities import KEYVALUE, Dispatcher, KeyValueProvider, LoggingProvider
from meshhost.errors import PayloadDecodeError, ProviderError

ECHO = "M" + "E" * 55
OTHER = "M" + "O" * 55


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Kv:
    """Calls KeyValue operations as an actor would (msgpack in, msgpack out)."""

    def __init__(self, dispatcher: Dispatcher, actor, binding: str = "") -> None:
        self.d, self.actor, self.binding = dispatcher, actor, binding

    def raw(self, op: str, payload: bytes) -> bytes:
        return self.d.host_call(self.actor, self.binding, KEYVALUE, f"KeyValue.{op}", payload)

    def __call__(self, op: str, arg=None):
        out = self.raw(op, msgpack.packb(arg, use_bin_type=True))
        return msgpack.unpackb(out) if out else None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def kv(tmp_path, clock, make_actor, make_link):
    provider = KeyValueProvider(tmp_path / "kv", clock=clock)
    d = Dispatcher(providers=[provider])
    await d.put_link(make_link(ECHO, KEYVALUE))
    yield Kv(d, make_actor((KEYVALUE,)))
    provider.close()


async def test_get_set_del_contains(kv):
    assert kv("Get", "greeting") == {"value": "", "exists": False}
    assert kv("Set", {"key": "greeting", "value": "hello", "expires": 0}) is None
    assert kv.raw("Set", msgpack.packb({"key": "k", "value": "v", "expires": 0})) == b""
    assert kv("Get", "greeting") == {"value": "hello", "exists": True}
    assert kv("Contains", "greeting") is True
    assert kv("Del", "greeting") is True
    assert kv("Del", "greeting") is False
    assert kv("Contains", "greeting") is False


async def test_get_response_bytes_are_wasmcloud_shaped(kv):
    kv("Set", {"key": "a", "value": "b", "expires": 0})
    assert kv.raw("Get", msgpack.packb("a")) == bytes.fromhex("82a576616c7565a162a6657869737473c3")


async def test_increment_creates_adds_and_refuses_non_integers(kv):
    assert kv("Increment", {"key": "n", "value": 5}) == 5
    assert kv("Increment", {"key": "n", "value": -7}) == -2
    assert kv("Get", "n") == {"value": "-2", "exists": True}
    kv("Set", {"key": "s", "value": "abc", "expires": 0})
    with pytest.raises(ProviderError, match="not an integer"):
        kv("Increment", {"key": "s", "value": 1})
    kv("Set", {"key": "big", "value": str(2**31 - 1), "expires": 0})
    with pytest.raises(ProviderError, match="outside the I32 range"):
        kv("Increment", {"key": "big", "value": 1})


async def test_set_with_expiry_vanishes_after_its_seconds(kv, clock):
    kv("Set", {"key": "session", "value": "x", "expires": 10})
    clock.now += 9.5
    assert kv("Get", "session")["exists"] is True
    clock.now += 1
    assert kv("Get", "session") == {"value": "", "exists": False}
    assert kv("Contains", "session") is False


async def test_lists(kv):
    assert kv("ListAdd", {"listName": "l", "value": "a"}) == 1
    assert kv("ListAdd", {"listName": "l", "value": "b"}) == 2
    assert kv("ListAdd", {"listName": "l", "value": "a"}) == 3
    assert kv("ListRange", {"listName": "l", "start": 0, "stop": 10}) == ["a", "b", "a"]
    assert kv("ListRange", {"listName": "l", "start": 1, "stop": 1}) == ["b"]
    assert kv("ListRange", {"listName": "l", "start": -2, "stop": -1}) == ["b", "a"]
    assert kv("ListRange", {"listName": "l", "start": 2, "stop": 1}) == []
    assert kv("ListDel", {"listName": "l", "value": "a"}) is True  # first occurrence only
    assert kv("ListRange", {"listName": "l", "start": 0, "stop": -1}) == ["b", "a"]
    assert kv("ListDel", {"listName": "l", "value": "zzz"}) is False
    assert kv("ListClear", "l") is True
    assert kv("ListClear", "l") is False
    assert kv("ListRange", {"listName": "l", "start": 0, "stop": -1}) == []


async def test_sets(kv):
    assert kv("SetAdd", {"setName": "s1", "value": "a"}) == 1
    assert kv("SetAdd", {"setName": "s1", "value": "a"}) == 0
    kv("SetAdd", {"setName": "s1", "value": "b"})
    kv("SetAdd", {"setName": "s2", "value": "b"})
    kv("SetAdd", {"setName": "s2", "value": "c"})
    assert kv("SetQuery", "s1") == ["a", "b"]
    assert kv("SetUnion", ["s1", "s2"]) == ["a", "b", "c"]
    assert kv("SetIntersection", ["s1", "s2"]) == ["b"]
    assert kv("SetDel", {"setName": "s1", "value": "a"}) == 1
    assert kv("SetDel", {"setName": "s1", "value": "a"}) == 0
    assert kv("SetClear", "s2") is True
    assert kv("SetQuery", "s2") == []
    assert kv("SetClear", "s2") is False


async def test_keys_with_glob(kv):
    for key in ("user:1", "user:2", "order:1"):
        kv("Set", {"key": key, "value": "x", "expires": 0})
    kv("ListAdd", {"listName": "user:list", "value": "x"})
    assert kv("Keys", {"globExpression": "user:*"}) == ["user:1", "user:2", "user:list"]
    assert kv("Keys", {}) == ["order:1", "user:1", "user:2", "user:list"]


async def test_one_key_space_with_kinds_like_redis(kv):
    kv("ListAdd", {"listName": "thing", "value": "a"})
    with pytest.raises(ProviderError, match="key 'thing' holds a list, not a string"):
        kv("Get", "thing")
    with pytest.raises(ProviderError, match="holds a list, not a set"):
        kv("SetAdd", {"setName": "thing", "value": "a"})
    assert kv("Contains", "thing") is True
    kv("Set", {"key": "thing", "value": "now a string", "expires": 0})  # Set replaces any kind
    assert kv("Get", "thing")["value"] == "now a string"
    assert kv("ListRange", {"listName": "x", "start": 0, "stop": -1}) == []


async def test_positional_array_form_and_0xc1_prefix_are_accepted(kv):
    assert kv.raw("Set", msgpack.packb(["k", "v", 0])) == b""
    assert msgpack.unpackb(kv.raw("Get", b"\xc1" + msgpack.packb("k"))) == {
        "value": "v",
        "exists": True,
    }


async def test_bad_payloads_raise_payload_decode_errors(kv):
    with pytest.raises(
        PayloadDecodeError, match=r"KeyValue\.Get key: expected String, got integer"
    ):
        kv.raw("Get", msgpack.packb(5))
    with pytest.raises(
        PayloadDecodeError, match=r"KeyValue IncrementRequest\.value: 4294967296 is out of range"
    ):
        kv.raw("Increment", msgpack.packb({"key": "n", "value": 2**32}))
    with pytest.raises(PayloadDecodeError, match="CBOR"):
        kv.raw("Get", b"\x7f\x61k")


async def test_value_survives_a_restart(tmp_path, make_actor, make_link):
    for _ in range(2):
        provider = KeyValueProvider(tmp_path / "kv")
        d = Dispatcher(providers=[provider])
        await d.put_link(make_link(ECHO, KEYVALUE))
        kv = Kv(d, make_actor((KEYVALUE,)))
        count = kv("Increment", {"key": "visits", "value": 1})
        kv("SetAdd", {"setName": "seen", "value": str(count)})
        provider.close()
    assert count == 2
    provider = KeyValueProvider(tmp_path / "kv")
    d = Dispatcher(providers=[provider])
    await d.put_link(make_link(ECHO, KEYVALUE))
    assert Kv(d, make_actor((KEYVALUE,)))("SetQuery", "seen") == ["1", "2"]
    provider.close()


async def test_each_link_has_its_namespace_unless_config_shares_one(
    tmp_path, make_actor, make_link
):
    provider = KeyValueProvider(tmp_path / "kv")
    d = Dispatcher(providers=[provider])
    await d.put_link(make_link(ECHO, KEYVALUE))
    await d.put_link(make_link(OTHER, KEYVALUE))
    await d.put_link(make_link(ECHO, KEYVALUE, "shared", NAMESPACE="team"))
    await d.put_link(make_link(OTHER, KEYVALUE, "shared", namespace="team"))
    echo = Kv(d, make_actor((KEYVALUE,)))
    other = Kv(d, make_actor((KEYVALUE,), actor_id=OTHER, name="other"))
    echo("Set", {"key": "k", "value": "echo's", "expires": 0})
    assert other("Get", "k")["exists"] is False
    Kv(d, echo.actor, "shared")("Set", {"key": "k", "value": "team's", "expires": 0})
    assert Kv(d, other.actor, "shared")("Get", "k")["value"] == "team's"
    assert len(provider.namespaces_open()) == 3
    assert await d.del_link(ECHO, KEYVALUE, "shared")
    assert "team" in provider.namespaces_open()  # still used by OTHER's link
    assert await d.del_link(OTHER, KEYVALUE, "shared")
    assert "team" not in provider.namespaces_open()  # released at the last unlink
    provider.close()


CRASHER = """
import os, sys
from dataclasses import dataclass
from pathlib import Path
from meshhost.capabilities import KEYVALUE, Dispatcher, KeyValueProvider, LinkDefinition, LinkTable

@dataclass(frozen=True)
class Actor:
    actor_id: str
    name: str = "crasher"
    caps: tuple = (KEYVALUE,)
    call_alias: None = None
    issuer: str = ""

actor = Actor(sys.argv[2])
d = Dispatcher(
    providers=[KeyValueProvider(Path(sys.argv[1]))],
    links=LinkTable([LinkDefinition(actor.actor_id, KEYVALUE)]),
)
d.host_call(actor, "", KEYVALUE, "KeyValue.Set", bytes.fromhex(sys.argv[3]))
print("acked", flush=True)
os._exit(0)  # die without closing anything: no checkpoint, no clean shutdown
"""


async def test_an_acknowledged_write_survives_a_process_crash(tmp_path, make_actor, make_link):
    import subprocess
    import sys

    set_req = msgpack.packb({"key": "durable", "value": "yes", "expires": 0})
    out = await trio.run_process(
        [sys.executable, "-c", CRASHER, str(tmp_path / "kv"), ECHO, set_req.hex()],
        capture_stdout=True,
        stderr=subprocess.STDOUT,
    )
    assert out.stdout.strip() == b"acked"
    provider = KeyValueProvider(tmp_path / "kv")
    d = Dispatcher(providers=[provider])
    await d.put_link(make_link(ECHO, KEYVALUE))
    assert Kv(d, make_actor((KEYVALUE,)))("Get", "durable") == {"value": "yes", "exists": True}
    provider.close()


async def test_concurrent_increments_from_many_guest_threads_are_not_lost(kv):
    async def bump() -> None:
        for _ in range(10):
            await trio.to_thread.run_sync(kv, "Increment", {"key": "n", "value": 1})

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(bump)
    assert kv("Get", "n") == {"value": "40", "exists": True}


@pytest.mark.parametrize("damage", ["kv dir is a file", "database is garbage"])
async def test_an_unusable_kv_directory_refuses_the_link_and_names_it(
    tmp_path, make_link, damage: str
):
    kv_dir = tmp_path / "kv"
    link = make_link(ECHO, KEYVALUE)
    if damage == "kv dir is a file":
        kv_dir.write_text("not a directory")  # OSError from mkdir used to escape
    else:
        provider = KeyValueProvider(kv_dir)
        await provider.put_link(link)
        provider.close()
        for db in kv_dir.glob("*.sqlite3"):
            db.write_bytes(b"garbage" * 1000)
    provider = KeyValueProvider(kv_dir)
    with pytest.raises(ProviderError, match=r"cannot open key-value namespace .* in .*kv"):
        await provider.put_link(link)
    assert "cannot open" in (provider.link_error(link) or "")
    provider.close()


async def test_an_unexpected_exception_in_a_provider_is_a_refused_link(make_link):
    class Broken(LoggingProvider):
        async def on_put_link(self, link):
            raise FileExistsError(17, "File exists")

    provider, link = Broken(), make_link(ECHO, "wasmcloud:builtin:logging")
    with pytest.raises(ProviderError, match="failed: FileExistsError"):
        await provider.put_link(link)
    assert provider.link_error(link) is not None


async def test_made_up_operation_names_cannot_grow_the_provider_metric_without_bound(kv):
    # The operation is the guest's string: an actor that makes names up (a bug, a scan)
    # must not grow the host's memory and every /metrics scrape with them.
    kv("Set", {"key": "k", "value": "v", "expires": 0})
    for i in range(3000):
        with pytest.raises(ProviderError):
            kv.raw(f"Nope{i}", b"")
    kv("Get", "k")
    ops = kv.d.provider_ops
    assert len(ops) < 2000
    assert ops[KEYVALUE, "KeyValue.Get", "ok"] == 1  # known names still counted by name
    assert sum(n for (_, _, outcome), n in ops.items() if outcome != "ok") == 3000
