"""Text from peers and users is printed as text, never read as terminal markup.

Regression for a crash: a host printing for a person (no `--json`) died with
a rich MarkupError when a peer joined with the label `zone=[/oops]`; CLI
lines quoting a user's key like `[/k]` crashed or lost the brackets; so did
`meshhost hosts` and `link list` tables showing such a label or link value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lattice.processes.proc_lattice import ProcLattice, parallel

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_a_peer_label_and_user_keys_with_brackets_are_printed_verbatim(
    lattice: ProcLattice, modules: dict[str, tuple[Path, str]]
) -> None:
    person = lattice.add("person", json_output=False)
    peer = lattice.add("peer", extra_args=("--label", "zone=[/oops]", "--label", "x=[bold]y"))
    lattice.wait_for(
        lambda: person.status() is not None and peer.status() is not None,
        "both hosts wrote their status",
    )
    lattice.wait_for(
        lambda: person.alive_ids() == {person.host_id, peer.host_id},
        "the person's host sees the labelled peer alive",
    )
    lattice.wait_for(
        lambda: "zone=[/oops]" in person.log.read_text(errors="replace"),
        "the person's host printed the peer's label as it is",
        timeout_s=5,
    )
    assert person.running, person.log_tail()

    put = person.cli("config", "put", "[/k]", "[red]v").ok()
    assert "[/k]" in put.stdout, put.describe()
    echo_id = modules["echo"][1]
    person.cli(
        "link", "put", echo_id, "wasmcloud:messaging", "--value", "SUBSCRIPTION=[/topic]"
    ).ok()
    got, missing, hosts, links = parallel(
        lambda: person.cli("config", "get", "[/k]").ok(),
        lambda: person.cli("config", "get", "[red]x"),
        lambda: person.cli("hosts").ok(),
        lambda: person.cli("link", "list").ok(),
    )
    assert got.stdout.strip() == "[red]v", got.describe()
    assert "'[red]x'" in missing.failed_cleanly()
    assert "zone=[/oops]" in hosts.stdout and "x=[bold]y" in hosts.stdout, hosts.describe()
    assert "SUBSCRIPTION=[/topic]" in links.stdout, links.describe()
    assert person.running and peer.running
