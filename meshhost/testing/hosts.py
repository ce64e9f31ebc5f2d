"""A lattice of real hosts in one trio process, for tests.

Host ``i`` binds 127.0.0.{20+i} (a port the system picks), keeps its data in
``tmp/h{i}`` and joins through ``seeds``; no mDNS, the ``local`` membership
profile. Everything a test needs to start, stop, restart and ask such hosts::

    async with trio.open_nursery() as nursery:
        a = make_host(tmp_path, 0)
        addr = await nursery.start(a.serve)
        b = make_host(tmp_path, 1, seeds=(f"{addr[0]}:{addr[1]}",))
        await nursery.start(b.serve)
        await wait_until(lambda: alive(a) == alive(b) == {a.host_id, b.host_id}, "both see both")

or, the same in one call, ``a, b = await start_lattice(nursery, tmp_path, 2)`` (Members).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import trio

from meshhost import config as config_mod
from meshhost import examples
from meshhost.control.api import ControlClient
from meshhost.datadir import CONTROL_SOCKET, write_private
from meshhost.host import Host, HostOptions
from meshhost.identity import nkeys
from meshhost.identity.keyring import Keyring
from meshhost.membership import MemberState
from meshhost.testing.wait import wait_until

SECRET = bytes(range(32))
"""The lattice secret :func:`make_host` uses unless told otherwise."""

ISSUER = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)
"""The account that signs :func:`signed_example`'s actors (fresh per test run)."""


def host_address(i: int) -> str:
    """The loopback address host ``i`` of :func:`make_host` binds (127.0.0.{20+i})."""
    if not 0 <= i <= 234:
        raise ValueError(f"host number {i} is outside 0..234 (127.0.0.20 to 127.0.0.254)")
    return f"127.0.0.{20 + i}"


def signed_example(name: str) -> tuple[bytes, str]:
    """(signed module, actor id) of a shipped example actor, signed by :data:`ISSUER`
    with a fresh actor key (two calls give two different actors)."""
    module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    return examples.signed(name, ISSUER, module), module.public_key


def make_host(
    tmp: Path,
    i: int,
    *,
    seeds: tuple[str, ...] = (),
    secret: bytes = SECRET,
    lattice: str = "lab",
    options: HostOptions | None = None,
    **settings: object,
) -> Host:
    """Host number ``i`` of a test lattice, built but not serving.

    - Binds :func:`host_address` ``(i)``; label ``n=i``; data dir ``tmp/h{i}``
      (made private, as ``Host.open`` requires).
    - Its identity is derived from ``i`` the first time and then read back from
      the data dir, so calling again with the same ``tmp`` and ``i`` restarts
      the same host (same id, same stored state), as a real restart does.
    - Joins lattice ``lattice`` with the one key ``secret``, through ``seeds``
      (``"ip:port"``); ``settings`` are further config overrides (e.g.
      ``transport=...``), ``options`` the host options.
    - Its random generator is seeded with ``i``: runs are repeatable.

    Serve it with ``await nursery.start(host.serve)`` (returns its address),
    or wrap it in :class:`Member` to stop it alone.
    """
    data = tmp / f"h{i}"
    data.mkdir(mode=0o700, exist_ok=True)
    cfg = config_mod.load(
        overrides={
            "profile": "local",
            "lattice": lattice,
            "bind": host_address(i),
            "mdns": False,
            "seeds": seeds,
            "data_dir": str(data),
            "labels": (("n", str(i)),),
            **settings,
        },
        environ={},
    )
    seed_file = data / "identity.seed"
    if seed_file.exists():
        identity = nkeys.from_seed(seed_file.read_text(), nkeys.Prefix.SERVER)
    else:
        identity = nkeys.generate(nkeys.Prefix.SERVER, random.Random(i).randbytes)
        write_private(seed_file, identity.encoded_seed)
    return Host(
        cfg,
        identity=identity,
        keyring=Keyring.create(lattice, [secret]),
        data_dir=data,
        options=options or HostOptions(),
        rng=random.Random(i),
    )


class Member:
    """A host serving in its own cancel scope, so a test can stop just it.

    ``await nursery.start(member.run)`` starts it (returns its address);
    ``member.scope.cancel()`` stops it at once, as a crash would (no leave is
    announced); its data dir stays, so :func:`make_host` can restart it.
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self.scope = trio.CancelScope()

    async def run(self, task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            await self.host.serve(task_status=task_status)


async def start_lattice(
    nursery: trio.Nursery, tmp: Path, count: int, **settings: Any
) -> list[Member]:
    """Start hosts 0 to ``count - 1`` of :func:`make_host` as :class:`Member` s in
    ``nursery``, each joining through host 0, and return them once every one sees
    all of them alive (or raise ``AssertionError`` after :func:`wait_until`'s
    deadline). ``settings`` go to every :func:`make_host`.
    """
    first = Member(make_host(tmp, 0, **settings))
    addr = await nursery.start(first.run)
    members = [first]
    for i in range(1, count):
        member = Member(make_host(tmp, i, seeds=(f"{addr[0]}:{addr[1]}",), **settings))
        await nursery.start(member.run)
        members.append(member)
    ids = {m.host.host_id for m in members}
    await wait_until(lambda: all(alive(m.host) == ids for m in members), "all see all")
    return members


def client(host: Host) -> ControlClient:
    """A control client on ``host``'s Unix socket, as the CLI uses it."""
    return ControlClient(host.data_dir / CONTROL_SOCKET)


def alive(host: Host) -> set[str]:
    """The ids of the members ``host`` sees alive (itself included)."""
    return {m.id for m in host.members() if m.state == MemberState.ALIVE}
