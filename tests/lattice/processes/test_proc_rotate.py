"""`meshhost lattice rotate` replaces the lattice secret of running hosts, under load.

Three `meshhost up` processes, each with its own secret file; an echo actor
on a; b and c call it continuously (through the CLI, each call a fresh
process) for the whole rotation.  No call fails; every step is acknowledged
by all three hosts; every secret file ends up holding only the new secret;
a restarted host comes back with it; and a host that has only the old
secret, pointed straight at a, cannot join (a drops its UDP packets and
refuses its handshakes).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import trio

from meshhost.control.api import ControlClient
from meshhost.control.keyops import key_id
from meshhost.datadir import CONTROL_SOCKET
from meshhost.identity.keyring import decode_secret, read_secret_file
from tests.lattice.processes.proc_lattice import ProcLattice

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_rotating_the_secret_under_load_fails_no_call_and_locks_out_the_old_secret(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    old_secret = decode_secret(lattice.secret)
    files = {}
    for name in ("a", "b", "c"):
        files[name] = tmp_path / f"{name}.secret"
        files[name].write_text(lattice.secret + "\n")
    hosts = [lattice.add(n, extra_args=("--secret-file", str(files[n]))) for n in files]
    a, b, c = hosts
    lattice.wait_for(lambda: all(h.status() for h in hosts), "every host wrote its status")
    ids = {h.host_id for h in hosts}
    lattice.wait_for(lambda: all(h.alive_ids() == ids for h in hosts), "a, b, c see each other")
    echo_path, echo_id = modules["echo"]
    a.cli("start", str(echo_path)).ok()
    lattice.wait_for(
        lambda: all(h.call(echo_id, "Echo", "x").returncode == 0 for h in (b, c)),
        "b and c reach the echo on a",
    )

    stop = threading.Event()
    calls: list[tuple[str, int, str]] = []

    def keep_calling(host_name: str) -> None:
        """Calls back to back through the host's control socket (no CLI start-up
        between them), each checked for its answer, until told to stop."""
        host = b if host_name == "b" else c
        client = ControlClient(host.data_dir / CONTROL_SOCKET)

        async def loop() -> None:
            i = 0
            while not stop.is_set():
                payload = f"{host_name}{i}".encode()
                try:
                    with trio.fail_after(15):
                        answer = await client.request(
                            "call",
                            actor=echo_id,
                            operation="Echo",
                            payload=payload,
                            timeout_ms=10_000,
                        )
                    ok = payload in answer["payload"]
                    calls.append((host_name, 0 if ok else 1, repr(answer)[:300]))
                except Exception as exc:  # every failure is a finding: keep it
                    calls.append((host_name, 1, f"{type(exc).__name__}: {exc}"))
                i += 1

        trio.run(loop)

    callers = [threading.Thread(target=keep_calling, args=(n,)) for n in ("b", "c")]
    for t in callers:
        t.start()
    try:
        lattice.wait_for(lambda: len(calls) >= 20, "calls are flowing")
        during = len(calls)
        rotated = a.cli(
            "lattice", "rotate", "--json", "--out", str(tmp_path / "new.secret"), timeout_s=180
        ).json()
        settled = len(calls)
        lattice.wait_for(lambda: len(calls) >= settled + 20, "calls go on after the rotation")
    finally:
        stop.set()
        for t in callers:
            t.join(timeout=60)
    failed = [x for x in calls if x[1] != 0]
    assert not failed, f"{len(failed)} of {len(calls)} calls failed: {failed[:3]}"
    assert settled - during >= 10, "hardly any call ran while the rotation did"
    print(f"{len(calls)} calls, {settled - during} during the rotation; none failed")

    new_secret = decode_secret((tmp_path / "new.secret").read_text().strip())
    new_key = key_id(new_secret, lattice.lattice_name)
    assert rotated["ok"] and rotated["key"] == new_key
    assert [s["step"] for s in rotated["steps"]] == ["install", "use", "remove"]
    for step in rotated["steps"]:
        assert sorted(step["acknowledged"]) == sorted(ids) and not step["failed"], step
        assert not step["not_saved"]
    for path in files.values():
        assert read_secret_file(path) == [new_secret]
    lattice.wait_for(lambda: all(h.alive_ids() == ids for h in hosts), "all still alive")

    # A restart keeps the new secret: b comes back from its file and rejoins.
    b.terminate()
    b.start()
    lattice.wait_for(
        lambda: b.status() is not None and b.alive_ids() == ids,
        "b restarted from its secret file and sees a and c",
    )
    assert b.call(echo_id, "Echo", "after restart").returncode == 0

    # A host with only the old secret is a stranger now.
    addr = a.status()["addr"]
    bad_auth, refused = a.stat("seal.bad_auth"), a.stat("transport.handshake_failures")
    # (lattice.secret is still the secret the lattice had before the rotation)
    old = lattice.add("old", secret=lattice.secret, extra_args=("--seed", f"{addr[0]}:{addr[1]}"))
    assert decode_secret(old.secret) == old_secret != new_secret
    lattice.wait_for(lambda: old.status() is not None, "the old-secret host is up")
    lattice.wait_for(
        lambda: a.stat("seal.bad_auth") > bad_auth, "a drops the old-secret host's packets"
    )
    time.sleep(3)  # several probe and join rounds of the local profile
    assert old.alive_ids() == {old.host_id}
    assert old.host_id not in a.view() and all(old.host_id not in h.view() for h in (b, c))
    print(
        f"a refused {a.stat('transport.handshake_failures') - refused} handshakes and "
        f"{a.stat('seal.bad_auth') - bad_auth} packets from the old-secret host"
    )
