"""Real hosts (SWIM core + UDP driver + Noise transport) in one process on 127.0.0.x."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest
import trio

from meshhost import config as config_mod
from meshhost.errors import ConfigError, HostBusy, KeyringError
from meshhost.host import Host, load_keyring
from meshhost.identity import nkeys
from meshhost.identity.keyring import Keyring, encode_secret
from meshhost.membership import MemberDead, MemberJoined, MemberState
from meshhost.membership.messages import Alive, encode
from meshhost.membership.signing import sign_alive
from meshhost.testing import SECRET, alive, make_host, wait_until

OTHER = bytes(range(1, 33))


async def test_two_hosts_join_over_a_seed_and_see_each_other(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        a_addr = await nursery.start(a.serve)
        b = make_host(tmp_path, 1, seeds=(f"{a_addr[0]}:{a_addr[1]}",))
        events = b.subscribe()
        await nursery.start(b.serve)
        ids = {a.host_id, b.host_id}
        await wait_until(lambda: alive(a) == ids and alive(b) == ids, "both see both")
        with trio.fail_after(5):
            first = await events.receive()
        assert isinstance(first, MemberJoined) and first.member.id == a.host_id
        status = b.status()
        assert status["alive"] == 2
        labels = {m["id"]: m["labels"] for m in status["members"]}
        assert labels[a.host_id] == {"n": "0"}
        assert status["stats"]["udp.delivered"] > 0
        assert status["stats"]["seal.bad_auth"] == 0
        nursery.cancel_scope.cancel()


async def test_five_hosts_converge_detect_a_crash_and_ignore_another_lattice(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        first = make_host(tmp_path, 0)
        seed_addr = await nursery.start(first.serve)
        seed = (f"{seed_addr[0]}:{seed_addr[1]}",)
        hosts = [first]
        crash_scope = trio.CancelScope()
        for i in range(1, 5):
            host = make_host(tmp_path, i, seeds=seed)
            if i == 4:

                async def run_crashable(host: Host = host, *, task_status=trio.TASK_STATUS_IGNORED):
                    with crash_scope:
                        await host.serve(task_status=task_status)

                await nursery.start(run_crashable)
            else:
                await nursery.start(host.serve)
            hosts.append(host)
        stranger = make_host(tmp_path, 9, secret=OTHER, seeds=seed)
        await nursery.start(stranger.serve)
        ids = {h.host_id for h in hosts}
        await wait_until(lambda: all(alive(h) == ids for h in hosts), "five see five")

        # Crash host 4 without a leave: others must declare it dead.
        crash_scope.cancel()
        victim = hosts[4].host_id
        survivors = hosts[:4]

        def dead_everywhere() -> bool:
            for h in survivors:
                m = next((m for m in h.members() if m.id == victim), None)
                if m is None or m.state != MemberState.DEAD:
                    return False
            return True

        await wait_until(dead_everywhere, "the crashed host is dead everywhere")
        # The stranger (other secret) was never seen and saw no one.
        assert all(stranger.host_id not in {m.id for m in h.members()} for h in survivors)
        assert {m.id for m in stranger.members()} == {stranger.host_id}
        assert first.keyring.stats.bad_auth > 0  # its pings were refused and counted
        nursery.cancel_scope.cancel()


async def test_graceful_shutdown_is_seen_as_left(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        a_addr = await nursery.start(a.serve)
        b = make_host(tmp_path, 1, seeds=(f"{a_addr[0]}:{a_addr[1]}",))
        events = a.subscribe()
        await nursery.start(b.serve)
        await wait_until(lambda: len(alive(a)) == 2, "a sees b")
        await b.shutdown(leave_timeout_s=0.5)
        left = None
        with trio.fail_after(10):
            async for event in events:
                if not isinstance(event, MemberJoined):
                    left = event
                    break
        assert left is not None and not isinstance(left, MemberDead)
        assert a.core.member(b.host_id).state == MemberState.LEFT
        nursery.cancel_scope.cancel()


async def test_second_process_on_one_data_dir_is_refused(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        await nursery.start(a.serve)
        twin = make_host(tmp_path, 0)
        with pytest.raises(HostBusy, match="data dir"):
            await twin.serve()
        nursery.cancel_scope.cancel()
    # After the first stops (or crashes) the lock is free again.
    async with trio.open_nursery() as nursery:
        await nursery.start(make_host(tmp_path, 0).serve)
        nursery.cancel_scope.cancel()


async def test_a_lock_file_in_the_way_is_named(tmp_path: Path) -> None:
    host = make_host(tmp_path, 0)
    (host.data_dir / "host.lock").mkdir()
    with pytest.raises(ConfigError, match=r"cannot open the lock file .*host\.lock: Is a dir"):
        await host.serve()


def test_open_creates_a_private_host_key_and_needs_a_secret(tmp_path: Path) -> None:
    cfg = config_mod.load(overrides={"data_dir": str(tmp_path / "d")}, environ={})
    with pytest.raises(KeyringError, match="lattice new"):
        Host.open(cfg)
    key_file = tmp_path / "d" / "host.seed"
    assert key_file.stat().st_mode & 0o777 == 0o600
    (tmp_path / "s").write_text(encode_secret(SECRET) + "\n")
    host = Host.open(cfg, secret_file=tmp_path / "s")
    again = Host.open(cfg, secret_file=tmp_path / "s")
    assert host.host_id == again.host_id and host.host_id.startswith("N")
    assert host.keyring.primary == SECRET
    ring = load_keyring("default", tmp_path, secret_text=encode_secret(OTHER))
    assert ring.primary == OTHER


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00garbage", b"SUgarbage\n", b""],
    ids=["not-text", "not-a-seed", "empty"],
)
def test_a_damaged_host_key_is_named_with_what_to_do(tmp_path: Path, content: bytes) -> None:
    cfg = config_mod.load(overrides={"data_dir": str(tmp_path)}, environ={})
    (tmp_path / "host.seed").write_bytes(content)
    with pytest.raises(ConfigError, match=r"host key .*host\.seed is damaged .*move it aside"):
        Host.open(cfg, secret_text=encode_secret(SECRET))


@pytest.mark.parametrize("content", [b"\xff\xfe\x00", b"SLgarbage\n"], ids=["not-text", "cut"])
def test_a_damaged_lattice_secret_file_is_named_with_what_to_do(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "lattice.secret").write_bytes(content)
    with pytest.raises(KeyringError, match=r"lattice\.secret(, line 1: | is not text: .*copy)"):
        load_keyring("lab", tmp_path)


def snapshot(host) -> set[tuple[str, MemberState, int, tuple[str, int], bytes]]:
    return {(m.id, m.state, m.incarnation, m.addr, m.meta) for m in host.members()}


async def test_wrong_key_truncated_garbage_oversized_stale_and_forged_change_nothing(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        a_addr = await nursery.start(a.serve)
        b = make_host(tmp_path, 1, seeds=(f"{a_addr[0]}:{a_addr[1]}",))
        await nursery.start(b.serve)
        ids = {a.host_id, b.host_id}
        await wait_until(lambda: alive(a) == ids and alive(b) == ids, "both see both")
        before = snapshot(a)
        b_now = a.core.member(b.host_id)
        assert b_now is not None

        ring = Keyring.create("lab", [SECRET])
        stale = sign_alive(b.identity, b.host_id, b.addr, b_now.incarnation - 1, b_now.meta)
        impostor = nkeys.generate(nkeys.Prefix.SERVER, random.Random(99).randbytes)
        forged_sig = impostor.sign(b"anything")
        forged = Alive(b.host_id, ("127.0.0.66", 1), b_now.incarnation + 1000, b"", forged_sig)
        valid_ping_like = encode(stale)
        packets = {
            "wrong key": Keyring.create("lab", [OTHER]).seal(valid_ping_like),
            "wrong lattice": Keyring.create("other", [SECRET]).seal(valid_ping_like),
            "truncated": ring.seal(valid_ping_like)[:20],
            "truncated tag": ring.seal(valid_ping_like)[:-3],
            "garbage": bytes(random.Random(1).randbytes(300)),
            "oversized": b"\x01" * 1500,
            "sealed garbage": ring.seal(b"\xc1\xff\x00garbage"),
            "old incarnation": ring.seal(encode(stale)),
            "forged alive": ring.seal(encode(forged)),
        }
        seal_before = a.keyring.stats.rejected
        sender = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await sender.bind(("127.0.0.77", 0))
        for packet in packets.values():
            await sender.sendto(packet, a_addr)

        def counted() -> bool:
            stats = a.stats()
            return (
                stats["udp.oversized"] >= 1
                and a.keyring.stats.rejected - seal_before >= 5
                and stats.get("swim.malformed", 0) >= 1
                and stats.get("swim.stale", 0) >= 1
                and stats.get("swim.forged_alive", 0) >= 1
            )

        await wait_until(counted, "every bad packet was counted", timeout_s=5)
        assert snapshot(a) == before
        stats = a.stats()
        print({k: v for k, v in stats.items() if v and k.split(".")[0] in ("udp", "seal")})
        assert stats["seal.too_short"] >= 1 and stats["seal.bad_auth"] >= 3
        sender.close()
        nursery.cancel_scope.cancel()


async def test_two_live_hosts_rotate_the_secret_without_a_false_suspicion(tmp_path: Path) -> None:
    new = bytes(range(100, 132))
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        a_addr = await nursery.start(a.serve)
        b = make_host(tmp_path, 1, seeds=(f"{a_addr[0]}:{a_addr[1]}",))
        await nursery.start(b.serve)
        ids = {a.host_id, b.host_id}
        await wait_until(lambda: alive(a) == ids and alive(b) == ids, "both see both")
        events = [a.subscribe(), b.subscribe()]
        steps = [
            lambda: a.add_secret(new),
            lambda: b.add_secret(new),
            lambda: a.make_primary(new),  # a seals with new, b still with old
            lambda: b.make_primary(new),
            lambda: a.remove_secret(SECRET),
            lambda: b.remove_secret(SECRET),
        ]
        for step in steps:
            step()
            # Both keep opening each other's probes after every step.
            marks = [h.keyring.stats.opened for h in (a, b)]
            await wait_until(
                lambda marks=marks: all(
                    h.keyring.stats.opened >= m + 2 for h, m in zip((a, b), marks, strict=True)
                ),
                "both hosts opened fresh packets",
                timeout_s=10,
            )
        assert a.keyring.secrets == (new,) and b.keyring.secrets == (new,)
        assert a.keyring.stats.rejected == 0 and b.keyring.stats.rejected == 0
        assert a.keyring.stats.opened_with_old_key + b.keyring.stats.opened_with_old_key > 0
        for channel in events:
            try:
                event = channel.receive_nowait()
            except trio.WouldBlock:
                continue  # no membership change at all: what we want
            raise AssertionError(f"membership changed during rotation: {event}")
        nursery.cancel_scope.cancel()


async def test_new_labels_reach_the_other_host(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        a_addr = await nursery.start(a.serve)
        b = make_host(tmp_path, 1, seeds=(f"{a_addr[0]}:{a_addr[1]}",))
        await nursery.start(b.serve)
        await wait_until(lambda: len(alive(b)) == 2, "b sees a")
        a.set_labels({"zone": "eu", "gpu": "yes"})

        def b_sees_labels() -> bool:
            row = next(m for m in b.status()["members"] if m["id"] == a.host_id)
            return row["labels"] == {"zone": "eu", "gpu": "yes"}

        await wait_until(b_sees_labels, "b sees a's new labels", timeout_s=10)
        assert a.labels == {"zone": "eu", "gpu": "yes"}
        nursery.cancel_scope.cancel()
