"""Integration: five `meshhost up` processes form a lattice by mDNS in a private namespace.

Needs root (``unshare -n``); the scenario itself is ``netns_lattice.py``.
Five hosts started with only the lattice secret find each other, a
``kill -9``'d host is declared dead and taken back after its restart, a host
stopped with SIGTERM is seen to leave, and a sixth host with another secret
is never seen and never sees them.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

SCENARIO = str(Path(__file__).with_name("netns_lattice.py"))


@pytest.mark.netns
@pytest.mark.slow
def test_five_processes_form_a_lattice_detect_a_kill_and_take_it_back(run_in_netns) -> None:
    service_type = f"_mh-{secrets.token_hex(3)}._udp.local."
    report = run_in_netns(SCENARIO, service_type, timeout_s=240)
    assert report["ok"], report
    print(
        f"hosts up in {report['started_s']} s, lattice formed in {report['formed_s']} s, "
        f"kill -9 detected by all in "
        f"{report['dead_s']} s, restarted host back in {report['rejoined_s']} s"
    )
    assert report["leaver_exit_code"] == 0
    print(f"graceful stop seen as left by the others in {report['left_s']} s")
    assert report["stranger_seen_by"] == []
    assert report["stranger_sees"] == []
    # The stranger's mDNS records were seen and ignored by the hosts that ran
    # throughout (the restarted h4 may not have browsed it yet).
    ignored = report["mdns_other_lattice"]
    assert all(ignored[f"h{i}"] >= 1 for i in range(4)), ignored
    # Every process left gracefully on SIGTERM.
    assert set(report["exit_codes"].values()) == {0}, report["exit_codes"]
