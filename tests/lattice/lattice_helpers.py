"""Real hosts in one process on 127.0.0.x, with the example actors signed once."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import msgpack
import trio

from meshhost import config as config_mod
from meshhost import examples
from meshhost.control.api import ControlClient
from meshhost.datadir import CONTROL_SOCKET
from meshhost.host import Host, HostOptions
from meshhost.identity import nkeys
from meshhost.identity.keyring import Keyring
from meshhost.membership import MemberState

SECRET = bytes(range(32))
DEADLINE_S = 20.0
ISSUER = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)


def signed_example(name: str) -> tuple[bytes, str]:
    """(signed module, actor id) of a shipped example, with a fresh actor key."""
    module = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    return examples.signed(name, ISSUER, module), module.public_key


def make_host(tmp: Path, i: int, *, seeds: tuple[str, ...] = (), secret: bytes = SECRET,
              lattice: str = "lab") -> Host:
    data = tmp / f"h{i}"
    data.mkdir(exist_ok=True)
    cfg = config_mod.load(
        overrides={
            "profile": "local",
            "lattice": lattice,
            "bind_host": f"127.0.0.{20 + i}",
            "mdns": False,
            "seeds": seeds,
            "data_dir": str(data),
            "labels": (("n", str(i)),),
        },
        environ={},
    )
    seed_file = data / "identity.seed"
    if seed_file.exists():  # a restarted host keeps its key, as the data dir does
        identity = nkeys.from_seed(seed_file.read_text(), nkeys.Prefix.SERVER)
    else:
        identity = nkeys.generate(nkeys.Prefix.SERVER, os.urandom)
        seed_file.write_text(identity.encoded_seed)
    return Host(cfg, identity=identity, keyring=Keyring.create(lattice, [secret]),
                data_dir=data, options=HostOptions(), rng=random.Random(i))


def client(host: Host) -> ControlClient:
    return ControlClient(host.data_dir / CONTROL_SOCKET)


async def wait_until(predicate: Callable[[], bool], what: str,
                     timeout_s: float = DEADLINE_S) -> None:
    with trio.move_on_after(timeout_s):
        while not predicate():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"timed out after {timeout_s} s waiting until {what}")


def alive(host: Host) -> set[str]:
    return {m.id for m in host.members() if m.state == MemberState.ALIVE}


def http_request(path: str = "/", host_header: str = "test") -> bytes:
    """A msgpack wasmcloud:httpserver HttpRequest, as the HTTP provider sends it."""
    return msgpack.packb({"method": "GET", "path": path, "queryString": "",
                          "header": {"host": [host_header]}, "body": b""}, use_bin_type=True)


def count_of(response: bytes) -> int:
    """The counter in a kvcounter HttpResponse."""
    import json

    answer = msgpack.unpackb(response, raw=False)
    assert answer["statusCode"] == 200, answer
    return int(json.loads(answer["body"])["count"])
