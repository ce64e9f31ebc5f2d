"""A host that sees peers plans nothing before its first directory pull (the lattice-wide
state: revocations, issuer policy, made while it was away), and every op is declared."""

from __future__ import annotations

from typing import Any

from meshhost.apps.ops import APP_OPS
from meshhost.apps.reconcile_loop import JOIN_GRACE_S, SYNC_WAIT_S, ReconcileDriver
from meshhost.control.authz import OP_ROLES
from meshhost.control.hostops import HostControl
from meshhost.control.keyops import KEYRING_OPS


class _Directory:
    def items(self, ns: str) -> list[tuple[str, Any]]:
        return []

    def host_labels(self) -> dict[str, dict[str, str]]:
        return {}


class _Actors:
    def managed_running(self) -> dict[str, int]:
        return {}


def _driver(live: set[str], synced: list[bool]) -> ReconcileDriver:
    async def send(*_: Any) -> bytes:
        raise AssertionError("nothing to send")

    return ReconcileDriver(
        "NA",
        _Directory(),
        _Actors(),  # type: ignore[arg-type]
        members=lambda: [],
        live_ids=lambda: live,
        send=send,
        emit=lambda _event: None,
        synced=lambda: synced[0],
    )


def test_a_host_with_peers_waits_for_its_first_pull_before_planning() -> None:
    synced = [False]
    driver = _driver({"NA", "NB"}, synced)
    driver._update(1.0)
    assert not driver.joined
    synced[0] = True
    driver._update(1.5)
    assert driver.joined


def test_without_a_pull_it_plans_after_the_wait_and_alone_after_the_grace() -> None:
    never = _driver({"NA", "NB"}, [False])
    never._update(SYNC_WAIT_S - 0.1)
    assert not never.joined
    never._update(SYNC_WAIT_S)
    assert never.joined
    alone = _driver({"NA"}, [False])
    alone._update(JOIN_GRACE_S)
    assert alone.joined


def test_every_control_op_declares_the_role_it_needs() -> None:
    ops = {name.removeprefix("op_") for name in dir(HostControl) if name.startswith("op_")}
    ops |= set(APP_OPS) | set(KEYRING_OPS) | {"events"}
    missing = sorted(ops - set(OP_ROLES))
    assert not missing, f"declare these ops in control/authz.py OP_ROLES: {missing}"
