"""Manifests applied on one host are reconciled by every host, with no leader."""

from __future__ import annotations

from pathlib import Path

import trio

from meshhost.apps.manifest import actor_id_from_claims, load_manifest
from meshhost.testing import Member, client, make_host, signed_example, wait_until
from tests.lattice.inprocess.lattice_helpers import (
    count_of,
    counter_manifest,
    http_request,
    manifest_args,
)


def running(hosts) -> dict[str, int]:
    """Managed instances per host id, from each host's own actor host."""
    return {h.host_id: sum(h.actors.managed_running().values()) for h in hosts}


async def test_apply_spreads_instances_and_a_lost_host_share_moves(tmp_path: Path) -> None:
    kvcounter, actor_id = signed_example("kvcounter")
    async with trio.open_nursery() as nursery:
        first = Member(make_host(tmp_path, 0))
        addr = await nursery.start(first.run)
        members = [first]
        for i in (1, 2):
            member = Member(make_host(tmp_path, i, seeds=(f"{addr[0]}:{addr[1]}",)))
            await nursery.start(member.run)
            members.append(member)
        hosts = [m.host for m in members]
        result = await client(hosts[1]).request("apply", **manifest_args(tmp_path, 4, kvcounter))
        assert result["app"] == "counter" and result["version"] == "v1"
        await wait_until(lambda: sum(running(hosts).values()) == 4, "4 instances run")
        assert sorted(running(hosts).values()) == [1, 1, 2]  # spread over all three
        # the manifest's link works everywhere: call from each host
        await wait_until(
            lambda: all(
                h.actors.dispatcher.links.get(actor_id, "wasmcloud:keyvalue", "default")
                for h in hosts
            ),
            "link everywhere",
        )
        await wait_until(
            lambda: all(len(h.directory.hosts_running(actor_id)) == 3 for h in hosts),
            "every host knows every placement",
        )
        for h in hosts:
            answer = await client(h).request(
                "call",
                actor=actor_id,
                operation="HttpServer.HandleRequest",
                payload=http_request(),
                timeout_ms=5000,
            )
            assert count_of(answer["payload"]) >= 1
        states = []
        with trio.move_on_after(10):
            while not states or states[-1]["state"] != "deployed":
                states.append(await client(hosts[0]).request("app_status", name="counter"))
                await trio.sleep(0.1)
        assert states[-1]["state"] == "deployed", states[-1]

        # lose the host with two instances: its share moves to the others
        victim = next(m for m in members if running([m.host])[m.host.host_id] == 2)
        victim.scope.cancel()
        survivors = [m.host for m in members if m is not victim]
        await wait_until(
            lambda: sum(running(survivors).values()) == 4,
            "4 instances run on the survivors",
            timeout_s=30,
        )

        # scale down by applying a new version: extras stop, nothing else moves
        await client(survivors[0]).request(
            "apply",
            **{
                **manifest_args(tmp_path, 2, kvcounter),
                "manifest": load_manifest(
                    _versioned(tmp_path, 2, "v2"), inspect_image=actor_id_from_claims
                ).canonical(),
            },
        )
        await wait_until(lambda: sum(running(survivors).values()) == 2, "scaled to 2")
        await client(survivors[1]).request("app_delete", name="counter")
        await wait_until(lambda: sum(running(survivors).values()) == 0, "deleted: none run")
        await wait_until(
            lambda: (
                not any(
                    h.actors.dispatcher.links.get(actor_id, "wasmcloud:keyvalue", "default")
                    for h in survivors
                )
            ),
            "link removed",
        )
        nursery.cancel_scope.cancel()


def _versioned(tmp_path: Path, instances: int, version: str) -> Path:
    path = tmp_path / f"app-{version}.yaml"
    path.write_text(counter_manifest(instances, version=version))
    return path


async def _lone_host(nursery: trio.Nursery, tmp_path: Path):
    """One running host."""
    member = Member(make_host(tmp_path, 0))
    await nursery.start(member.run)
    return member.host


async def test_an_unexpected_failure_to_start_is_retried_and_the_host_keeps_reconciling(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        host = await _lone_host(nursery, tmp_path)
        start = host.actors.start
        failures = []

        async def start_with_a_bug_once(*args, **kwargs):
            if not failures:
                failures.append(1)
                raise RuntimeError("a bug in starting actors")
            return await start(*args, **kwargs)

        host.actors.start = start_with_a_bug_once
        await client(host).request(
            "apply", **manifest_args(tmp_path, 2, signed_example("kvcounter")[0])
        )
        await wait_until(
            lambda: sum(running([host]).values()) == 2,
            "2 instances run after the retry",
            timeout_s=15,
        )
        assert failures and host.reconcile_driver.actions_failed >= 1
        nursery.cancel_scope.cancel()


async def test_a_reconcile_round_that_raises_is_retried_and_the_host_lives(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        host = await _lone_host(nursery, tmp_path)
        driver = host.reconcile_driver
        update = driver._update
        failures = []

        def update_with_a_bug_twice(now):
            if len(failures) < 2:
                failures.append(now)
                raise RuntimeError("a bug in computing the placement")
            return update(now)

        driver._update = update_with_a_bug_twice
        await client(host).request(
            "apply", **manifest_args(tmp_path, 1, signed_example("kvcounter")[0])
        )
        await wait_until(
            lambda: sum(running([host]).values()) == 1,
            "the instance runs once the rounds stop failing",
            timeout_s=15,
        )
        assert len(failures) == 2 and driver.rounds_failed == 2
        assert failures[1] - failures[0] >= 0.9  # retried after a pause, not in a spin
        nursery.cancel_scope.cancel()
