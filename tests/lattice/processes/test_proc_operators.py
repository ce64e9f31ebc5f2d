"""Operator keys and roles, revocation and issuer policy on real `meshhost up` processes.

The lattice secret carries a bootstrap admin (``# admin O…``, as `meshhost
lattice new` writes it); the CLI signs with ``--operator-key``.  A host that
holds only the secret joins and serves calls, but every control op it is
asked for is refused with the role it lacks.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from meshhost.apps.manifest import load_manifest
from meshhost.identity import nkeys
from tests.lattice.processes.proc_lattice import HostProc, ProcLattice


def operator_file(root: Path, name: str) -> tuple[str, str]:
    """A new operator key: (public key, path of its 0600 seed file)."""
    pair = nkeys.generate(nkeys.Prefix.OPERATOR, os.urandom)
    path = root / f"{name}.nk"
    path.write_text(pair.encoded_seed + "\n")
    path.chmod(0o600)
    return pair.public_key, str(path)


def with_admin(lattice: ProcLattice) -> tuple[str, str]:
    """Give the lattice's secret a bootstrap admin; (admin key, seed file)."""
    admin, admin_file = operator_file(lattice.root, "admin")
    lattice.secret = f"{lattice.secret}\n# admin {admin}\n"
    return admin, admin_file


def actors_on(host: HostProc, actor_id: str) -> int:
    inventory = host.cli("inventory", host.host_id, "--json").json()
    return sum(a["instances"] for a in inventory["actors"] if a["id"] == actor_id)


def test_secret_holder_deployer_and_admin_and_a_revoked_actor_stops_everywhere(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    _, admin_file = with_admin(lattice)
    deployer, deployer_file = operator_file(lattice.root, "deployer")
    echo_path, echo_id = modules["echo"]
    (a, b), _ = lattice.start_hosts("a", "b")

    # Only the secret: every change is refused naming the role to get.
    refused = a.cli("start", str(echo_path), "--host", b.host_id).failed_cleanly()
    assert "needs role deployer" in refused and "meshhost operator add" in refused, refused
    refused = a.cli("link", "put", echo_id, "wasmcloud:keyvalue").failed_cleanly()
    assert "needs role admin" in refused, refused

    a.cli("operator", "add", deployer, "--role", "deployer", "--operator-key", admin_file).ok()
    lattice.wait_for(
        lambda: any(o["key"] == deployer for o in b.cli("operator", "list", "--json").json()),
        "b learns the deployer",
    )
    # a forwards the signed op to b, which checks it itself
    a.cli("start", str(echo_path), "--host", b.host_id, "--operator-key", deployer_file).ok()
    a.cli("start", str(echo_path), "--host", a.host_id, "--operator-key", deployer_file).ok()
    refused = a.cli(
        "link", "put", echo_id, "wasmcloud:keyvalue", "--operator-key", deployer_file
    ).failed_cleanly()
    assert "needs role admin" in refused and "has role deployer" in refused, refused
    # the secret-only CLI is still served: calls need no role
    assert a.call(echo_id, "Echo", "hi", as_json=False).ok().stdout == "hi"

    revoked_at = time.monotonic()
    a.cli("revoke", "add", echo_id, "--operator-key", admin_file).ok()
    lattice.wait_for(
        lambda: actors_on(a, echo_id) == 0 and actors_on(b, echo_id) == 0,
        "every host stops the revoked actor",
    )
    print(f"revoked actor stopped on both hosts after {time.monotonic() - revoked_at:.2f} s")

    # the revocation survives a restart, and the restarted host refuses the actor
    assert b.terminate() == 0
    b.start()
    lattice.wait_for(lambda: b.status() is not None, "b restarted")
    assert echo_id in json.loads(b.cli("revoke", "list", "--json").ok().stdout)
    refused = b.cli(
        "start", str(echo_path), "--host", b.host_id, "--operator-key", deployer_file
    ).failed_cleanly()
    assert "revoked" in refused, refused


def test_issuer_allow_list_per_host_flag_and_lattice_wide(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    _, admin_file = with_admin(lattice)
    echo_path, echo_id = modules["echo"]
    examples_issuer = nkeys.from_seed(
        (echo_path.parent / "issuer.seed").read_text().strip()
    ).public_key
    other_issuer = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom).public_key
    a = lattice.add("a")
    b = lattice.add("b", extra_args=("--allowed-issuer", other_issuer))
    lattice.wait_for(lambda: bool(a.status() and b.status()), "both hosts started")
    ids = {a.host_id, b.host_id}
    lattice.wait_for(lambda: a.alive_ids() == ids == b.alive_ids(), "a and b see each other")
    key = ("--operator-key", admin_file)
    # `up` warns while no allow-list applies to it, and only then
    assert "issuer allow-list is empty" in a.log.read_text()
    assert "issuer allow-list is empty" not in b.log.read_text()

    refused = a.cli("start", str(echo_path), "--host", b.host_id, *key).failed_cleanly()
    assert "not on this host's allowed-issuers list" in refused, refused
    a.cli("start", str(echo_path), "--host", a.host_id, *key).ok()

    # a lattice-wide list without the examples' issuer: a stops echo and refuses it
    a.cli("issuer", "add", other_issuer, *key).ok()
    lattice.wait_for(lambda: actors_on(a, echo_id) == 0, "a stops echo (issuer not allowed)")
    refused = a.cli("start", str(echo_path), "--host", a.host_id, *key).failed_cleanly()
    assert "allow-list" in refused, refused
    a.cli("issuer", "add", examples_issuer, *key).ok()
    lattice.wait_for(
        lambda: examples_issuer in b.cli("issuer", "list", "--json").json()["lattice"],
        "b learns the lattice-wide allow-list",
    )
    a.cli("start", str(echo_path), "--host", a.host_id, *key).ok()


ECHO_DAEMON = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: echoes
  annotations:
    version: v1
spec:
  components:
    - name: echo
      type: actor
      properties:
        image: IMAGE
      traits:
        - type: daemonscaler
          properties:
            instances: 1
"""


def test_a_host_away_during_a_revocation_learns_it_before_running_the_actor_again(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    _, admin_file = with_admin(lattice)
    key = ("--operator-key", admin_file)
    echo_path, echo_id = modules["echo"]
    manifest = lattice.root / "echoes.yaml"
    manifest.write_text(ECHO_DAEMON.replace("IMAGE", str(echo_path)))
    (a, b), _ = lattice.start_hosts("a", "b")
    a.cli("apply", str(manifest), *key).ok()
    lattice.wait_for(
        lambda: actors_on(a, echo_id) == 1 == actors_on(b, echo_id),
        "the daemon runs echo on both hosts",
    )

    assert b.terminate() == 0  # b is away while echo is revoked
    a.cli("revoke", "add", echo_id, *key).ok()
    lattice.wait_for(lambda: actors_on(a, echo_id) == 0, "a stops the revoked echo")
    restarted_at = b.log.stat().st_size
    b.start()
    lattice.wait_for(
        lambda: b.status() is not None and a.host_id in b.alive_ids(), "b is back and sees a"
    )
    lattice.wait_for(
        lambda: echo_id in b.cli("revoke", "list", "--json").json(), "b learned the revocation"
    )
    time.sleep(2.0)  # a reconcile round of b's after joining
    since_restart = b.log.read_bytes()[restarted_at:].decode(errors="replace")
    started = [
        line for line in since_restart.splitlines() if "actor_started" in line and echo_id in line
    ]
    assert not started, since_restart[-3000:]
    assert actors_on(b, echo_id) == 0


def test_a_secret_holders_forged_entries_are_refused_and_the_admins_spread_everywhere(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]], monkeypatch: Any
) -> None:
    """A host with the secret and no operator key, modified to put unsigned entries
    into its directory (a link, a config value, a deployed manifest), gossips them to
    honest hosts, which refuse and report them; what the admin's CLI writes (a link, a
    manifest and the link the manifest declares, written unsigned by the reconciler)
    still spreads everywhere."""
    _, admin_file = with_admin(lattice)
    key = ("--operator-key", admin_file)
    echo_path, echo_id = modules["echo"]
    (a, b), _ = lattice.start_hosts("a", "b")
    admins = lattice.root / "echoes.yaml"
    admins.write_text(ECHO_DAEMON.replace("IMAGE", str(echo_path)) + LINKDEF)
    a.cli("link", "put", echo_id, "wasmcloud:keyvalue", *key).ok()
    a.cli("apply", str(admins), *key).ok()
    messaging = (echo_id, "wasmcloud:messaging", "default")  # the manifest's linkdef
    lattice.wait_for(
        lambda: (
            {(echo_id, "wasmcloud:keyvalue", "default"), messaging} <= set(b.links())
            and actors_on(b, echo_id) == 1
        ),
        "the admin's link, manifest and its link reach b, which runs echo",
    )

    rogues = lattice.root / "rogue.yaml"
    rogues.write_text(ECHO_DAEMON.replace("IMAGE", str(echo_path)).replace("echoes", "rogue"))
    forged_link = {
        "actor_id": echo_id,
        "contract_id": "wasmcloud:httpserver",
        "link_name": "default",
        "provider_id": "",
        "values": {"ADDRESS": "0.0.0.0:8099"},
    }
    monkeypatch.setenv(
        "ROGUE_ENTRIES",
        json.dumps(
            [
                ["link", f"{echo_id}/wasmcloud:httpserver/default", forged_link],
                ["config", "rogue", "1"],
                [
                    "control.manifests",
                    "rogue@v1",
                    {"text": load_manifest(rogues).canonical().decode()},
                ],
                ["control.deployments", "rogue", {"text": "v1"}],
            ]
        ),
    )
    rogue = lattice.add("rogue", start=False)
    rogue.program = (str(Path(__file__).with_name("rogue_host.py")),)
    rogue.start()
    forged = (echo_id, "wasmcloud:httpserver", "default")
    lattice.wait_for(
        lambda: (
            rogue.status() is not None
            and forged in rogue.links()
            and {a.host_id, b.host_id} <= rogue.alive_ids()
        ),
        "the rogue host joined holding its forged link",
    )
    report = "without a valid operator signature"
    lattice.wait_for(
        lambda: report in a.log.read_text() and report in b.log.read_text(),
        "a and b refuse the rogue's entries and report it",
    )
    time.sleep(3.0)  # another anti-entropy pull (every 2 s) each, to be sure
    for host in (a, b):
        assert forged not in host.links(), host.name
        assert "no config entry" in host.cli("config", "get", "rogue").failed_cleanly()
        apps = [row["name"] for row in host.cli("app", "list", "--json").json()]
        assert apps == ["echoes"], (host.name, apps)
        assert actors_on(host, echo_id) == 1, host.name  # not a second daemon's

    # the admin's next change still reaches every host, the rogue one included
    a.cli("link", "put", echo_id, "wasmcloud:httpclient", *key).ok()
    new = (echo_id, "wasmcloud:httpclient", "default")
    lattice.wait_for(
        lambda: all(new in h.links() for h in (a, b, rogue)),
        "the admin's new link reaches every host",
    )


LINKDEF = """\
        - type: linkdef
          properties:
            target: wasmcloud:messaging
"""
