"""A host that cannot join says why on its own output (#12): wrong secret, dead seed,
no mDNS peer. Real `meshhost up` processes on loopback, plus the wording rules."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from meshhost.discovery.diagnose import join_trouble
from meshhost.errors import ConnectFailed, HandshakeRefused, RequestTimeout
from meshhost.identity.keyring import encode_secret

LINE_TIMEOUT_S = 60.0
SEED = ("127.0.0.1", 7946)


def test_each_failure_is_said_in_words_a_person_can_act_on() -> None:
    def say(error: BaseException | None, **kwargs: object) -> str:
        return join_trouble(
            [SEED], {SEED: [SEED]}, {SEED: error} if error else {}, mdns=False, **kwargs
        )  # type: ignore[arg-type]

    assert say(HandshakeRefused("x")) == (
        "seed 127.0.0.1:7946 closed our handshake without answering: different lattice secret?"
    )
    assert say(ConnectFailed("x", "connection refused")) == (
        "no answer from seed 127.0.0.1:7946: connection refused (is a host running there?)"
    )
    assert say(ConnectFailed("x", "timed out")) == "no answer from seed 127.0.0.1:7946: timed out"
    assert "did not reply in time" in say(RequestTimeout("x"))
    assert say(None) == "no answer from seed 127.0.0.1:7946 yet"
    unresolved = join_trouble(
        [("db.invalid", 7946)],
        {("db.invalid", 7946): "does not resolve to an IPv4 address (Name or service not known)"},
        {},
        mdns=False,
    )
    assert unresolved.startswith("seed db.invalid:7946 does not resolve")
    alone = join_trouble([], {}, {}, mdns=True, mdns_service_type="_mh-x._udp.local.")
    assert alone.startswith("no mDNS peer yet (_mh-x._udp.local.)")
    assert join_trouble([], {}, {}, mdns=False, addr=SEED) == (
        "no seeds to join and mDNS is off: waiting for hosts started with --seed 127.0.0.1:7946"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _up(tmp_path: Path, name: str, secret: bytes, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHHOST_")}
    env["MESHHOST_LATTICE_SECRET"] = encode_secret(secret)
    argv = [
        sys.executable,
        "-m",
        "meshhost",
        "up",
        "--json",
        "--no-mdns",
        "--bind",
        "127.0.0.1",
        "--profile",
        "local",
        "--data-dir",
        str(tmp_path / name),
        *args,
    ]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )


def _event(proc: subprocess.Popen[str], kind: str) -> dict[str, object]:
    assert proc.stdout is not None
    deadline = time.monotonic() + LINE_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        record = json.loads(line)
        if record["event"] == kind:
            return record  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind!r} event within {LINE_TIMEOUT_S} s")


def test_a_host_with_a_wrong_secret_or_a_dead_seed_says_why(tmp_path: Path) -> None:
    port, dead = _free_port(), _free_port()
    seed = _up(tmp_path, "seed", bytes(range(32)), "--port", str(port))
    procs = [seed]
    try:
        _event(seed, "started")
        stranger = _up(tmp_path, "stranger", bytes(range(1, 33)), "--seed", f"127.0.0.1:{port}")
        lonely = _up(tmp_path, "lonely", bytes(range(32)), "--seed", f"127.0.0.1:{dead}")
        procs += [stranger, lonely]
        assert _event(stranger, "join_trouble")["reason"] == (
            f"seed 127.0.0.1:{port} closed our handshake without answering: "
            "different lattice secret?"
        )
        assert _event(lonely, "join_trouble")["reason"] == (
            f"no answer from seed 127.0.0.1:{dead}: connection refused (is a host running there?)"
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
