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
from meshhost.datadir import CONTROL_SOCKET, write_private
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


def make_host(
    tmp: Path,
    i: int,
    *,
    seeds: tuple[str, ...] = (),
    secret: bytes = SECRET,
    lattice: str = "lab",
    **settings: object,
) -> Host:
    data = tmp / f"h{i}"
    data.mkdir(mode=0o700, exist_ok=True)  # as Host.open makes it (it refuses others)
    cfg = config_mod.load(
        overrides={
            "profile": "local",
            "lattice": lattice,
            "bind": f"127.0.0.{20 + i}",
            "mdns": False,
            "seeds": seeds,
            "data_dir": str(data),
            "labels": (("n", str(i)),),
            **settings,
        },
        environ={},
    )
    seed_file = data / "identity.seed"
    if seed_file.exists():  # a restarted host keeps its key, as the data dir does
        identity = nkeys.from_seed(seed_file.read_text(), nkeys.Prefix.SERVER)
    else:
        identity = nkeys.generate(nkeys.Prefix.SERVER, os.urandom)
        write_private(seed_file, identity.encoded_seed)
    return Host(
        cfg,
        identity=identity,
        keyring=Keyring.create(lattice, [secret]),
        data_dir=data,
        options=HostOptions(),
        rng=random.Random(i),
    )


COUNTER_MANIFEST = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: counter
  annotations:
    version: VERSION
spec:
  components:
    - name: counter
      type: actor
      properties:
        image: ./kvcounter.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: INSTANCES
        - type: linkdef
          properties:
            target: kv
HTTP_LINK    - name: kv
      type: capability
      properties:
        contract: wasmcloud:keyvalue
HTTP_COMPONENT"""
HTTP_LINK = """\
        - type: linkdef
          properties:
            target: http
            values:
              ADDRESS: 127.0.0.1:PORT
"""
HTTP_COMPONENT = """\
    - name: http
      type: capability
      properties:
        contract: wasmcloud:httpserver
"""


def counter_manifest(instances: int, *, version: str = "v1", http_port: int | None = None) -> str:
    """A manifest of kvcounter (``./kvcounter.wasm``) linked to key-value (and HTTP)."""
    text = COUNTER_MANIFEST.replace("INSTANCES", str(instances)).replace("VERSION", version)
    http = http_port is not None
    text = text.replace("HTTP_LINK", HTTP_LINK.replace("PORT", str(http_port)) if http else "")
    return text.replace("HTTP_COMPONENT", HTTP_COMPONENT if http else "")


class Member:
    """A host running in its own cancel scope, so a test can stop just it (like a crash)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.scope = trio.CancelScope()

    async def run(self, task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            await self.host.serve(task_status=task_status)


def client(host: Host) -> ControlClient:
    return ControlClient(host.data_dir / CONTROL_SOCKET)


async def wait_until(
    predicate: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S
) -> None:
    with trio.move_on_after(timeout_s):
        while not predicate():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"timed out after {timeout_s} s waiting until {what}")


def alive(host: Host) -> set[str]:
    return {m.id for m in host.members() if m.state == MemberState.ALIVE}


def http_request(path: str = "/", host_header: str = "test") -> bytes:
    """A msgpack wasmcloud:httpserver HttpRequest, as the HTTP provider sends it."""
    return msgpack.packb(
        {
            "method": "GET",
            "path": path,
            "queryString": "",
            "header": {"host": [host_header]},
            "body": b"",
        },
        use_bin_type=True,
    )


def count_of(response: bytes) -> int:
    """The counter in a kvcounter HttpResponse."""
    import json

    answer = msgpack.unpackb(response, raw=False)
    assert answer["statusCode"] == 200, answer
    return int(json.loads(answer["body"])["count"])
