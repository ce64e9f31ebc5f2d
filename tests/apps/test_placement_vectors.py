"""proto/vectors/control.json, entry "placement": golden placements.

Each case gives the deployed manifests (their canonical record JSON) and the
member list (id, labels, state), and what every host must compute from them
(proto/spec/control.md, "Placement"): the count per host and component key,
the links to keep with the hosts that write them, the parts that cannot be
placed, and for some cases the rendezvous scores behind the answer, so an
independent implementation can check its hash.  Regenerate only when the spec
changes: ``python tests/apps/test_placement_vectors.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from meshhost.apps import HostView, compute_placement, decode_manifest
from meshhost.apps.manifest import parse_manifest
from meshhost.apps.placement import Placement, hrw_rank, link_writers
from meshhost.identity.nkeys import Prefix, generate

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "control.json"
DESCRIPTION = (
    "Placement (proto/spec/control.md): for each case, the deployed manifests (canonical "
    "record JSON, as in control.manifests) and the members (id, labels, state) give "
    "`candidates` (sorted ids of alive and suspect members), `placement` (host id -> "
    "component key -> count; hosts with nothing are absent), `links` (sorted by actor, "
    "contract id, link name; `writers` best first), and `unsatisfied` (in the order "
    "met). `scores`, where present, are score(key, host) for every candidate: `input_hex` "
    "is the hashed message (UTF-8 of key, 0x00, host id), `score_hex` the 16-byte "
    'BLAKE2b digest with person "meshhost-hrw".'
)


def _cases() -> list[dict[str, Any]]:
    """The cases (none before the first generation; the test below then fails)."""
    entries = [v for v in json.loads(VECTORS.read_text()) if v["name"] == "placement"]
    return entries[0]["cases"] if entries else []


def test_placement_vectors_present() -> None:
    names = [case["name"] for case in _cases()]
    assert len(names) >= 10
    assert len(set(names)) == len(names)


def _hosts(case: dict[str, Any]) -> list[HostView]:
    return [HostView.of(h["id"], h["labels"], h["state"]) for h in case["hosts"]]


def _outcome(placement: Placement) -> dict[str, Any]:
    """The parts of a placement the vectors pin, in their JSON shape."""
    return {
        "candidates": list(placement.candidates),
        "placement": {
            host: dict(sorted(share.items())) for host, share in sorted(placement.items())
        },
        "links": [
            {
                "actor": link.key[0],
                "contract_id": link.contract_id,
                "link_name": link.link_name,
                "app": link.app,
                "source": link.source,
                "provider_id": link.provider_id,
                "values": dict(link.values),
                "writers": link_writers(link.key, placement.candidates),
            }
            for link in placement.links
        ],
        "unsatisfied": [
            {"app": u.app, "component": u.component, "spread": u.spread, "wanted": u.wanted}
            for u in placement.unsatisfied
        ],
    }


def _score_hex(key: str, host: str) -> tuple[str, str]:
    """(message hex, score hex) exactly as proto/spec/control.md words the score."""
    message = f"{key}\x00{host}".encode()
    digest = hashlib.blake2b(message, digest_size=16, person=b"meshhost-hrw")
    return message.hex(), digest.hexdigest()


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_placement_vector(case: dict[str, Any]) -> None:
    manifests = [decode_manifest(text.encode()) for text in case["manifests"]]
    assert [m.canonical().decode() for m in manifests] == case["manifests"]
    placement = compute_placement(manifests, _hosts(case))
    expected = {k: case[k] for k in ("candidates", "placement", "links", "unsatisfied")}
    assert _outcome(placement) == expected


@pytest.mark.parametrize("case", [c for c in _cases() if "scores" in c], ids=lambda c: c["name"])
def test_placement_scores(case: dict[str, Any]) -> None:
    by_key: dict[str, list[tuple[str, str]]] = {}
    for row in case["scores"]:
        assert _score_hex(row["key"], row["host"]) == (row["input_hex"], row["score_hex"])
        by_key.setdefault(row["key"], []).append((row["score_hex"], row["host"]))
    for key, rows in by_key.items():
        # The code ranks hosts by these very scores, best first.
        best_first = [host for _, host in sorted(rows, reverse=True)]
        assert hrw_rank(key, case["candidates"]) == best_first


def test_joining_host_moves_only_its_own_share() -> None:
    cases = {c["name"]: c for c in _cases()}
    before = cases["host joins: before"]["placement"]
    after = cases["host joins: after"]["placement"]
    joined = set(after) - set(before)
    assert len(joined) == 1
    for host, share in before.items():
        for key, count in after.get(host, {}).items():
            assert count <= share.get(key, 0), (host, key)


# --- generation -------------------------------------------------------------------


def _id(prefix: Prefix, seed: int) -> str:
    return generate(prefix, lambda n: bytes([seed]) * n).public_key


H1, H2, H3, H4, H5 = (_id(Prefix.SERVER, seed) for seed in (1, 2, 3, 4, 5))
A1, A2 = (_id(Prefix.MODULE, seed) for seed in (101, 102))


def _actor(
    app: str,
    name: str,
    scaler: dict[str, Any] | None,
    links: tuple[dict[str, Any], ...] = (),
    *,
    actor_id: str | None = None,
    sha256: bool = True,
) -> dict[str, Any]:
    properties: dict[str, Any] = {"image": f"file:///srv/apps/{app}/{name}.wasm"}
    if sha256:
        properties["sha256"] = hashlib.sha256(f"{app}/{name}".encode()).hexdigest()
    if actor_id:
        properties["id"] = actor_id
    traits = ([scaler] if scaler else []) + [{"type": "linkdef", "properties": p} for p in links]
    return {"name": name, "type": "actor", "properties": properties, "traits": traits}


def _scaler(
    instances: int,
    spread: list[tuple[str, dict[str, str], int]] | None = None,
    daemon: bool = False,
) -> dict[str, Any]:
    properties: dict[str, Any] = {"instances": instances}
    if spread is not None:
        properties["spread"] = [{"name": n, "requirements": r, "weight": w} for n, r, w in spread]
    return {"type": "daemonscaler" if daemon else "spreadscaler", "properties": properties}


def _kv(name: str = "kv", link_name: str = "default") -> dict[str, Any]:
    return {
        "name": name,
        "type": "capability",
        "properties": {"contract": "wasmcloud:keyvalue", "link_name": link_name},
    }


def _manifest(app: str, *components: dict[str, Any]) -> str:
    document = {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": app, "annotations": {"version": "v1"}},
        "spec": {"components": list(components)},
    }
    return parse_manifest(json.dumps(document), check_images=False).canonical().decode()


def _host(host_id: str, state: str = "alive", **labels: str) -> dict[str, Any]:
    return {"id": host_id, "labels": labels, "state": state}


def _inputs() -> list[tuple[str, str, list[str], list[dict[str, Any]], bool]]:
    """(name, description, manifests, hosts, with scores) of every case."""
    plain3 = [_host(H1), _host(H2), _host(H3)]
    zones = [
        _host(H1, zone="east"),
        _host(H2, zone="west"),
        _host(H3, zone="east", gpu="yes"),
        _host(H4, zone="west"),
    ]
    web = _manifest("shop", _actor("shop", "web", _scaler(5), actor_id=A1))
    return [
        (
            "one instance, three hosts",
            "No spread written: one entry 'default' matching every host; the instance goes to "
            "the host with the highest score of 'shop/web' 0x00 'default'.",
            [_manifest("shop", _actor("shop", "web", _scaler(1), actor_id=A1))],
            plain3,
            True,
        ),
        (
            "four instances, three hosts",
            "4 over 3 eligible hosts: each gets 4 // 3 = 1, the 4 % 3 = 1 best-scored gets one "
            "more (2/1/1). The rank key has no digest, so the same host as above is first.",
            [_manifest("shop", _actor("shop", "web", _scaler(4), actor_id=A1))],
            plain3,
            True,
        ),
        (
            "spread 50/50 by zone",
            "6 instances split 3/3 between zone=east and zone=west; each entry fills its own "
            "hosts, ranked by 'shop/web' 0x00 <entry name> (a host's extra labels do not matter).",
            [
                _manifest(
                    "shop",
                    _actor(
                        "shop",
                        "web",
                        _scaler(
                            6, [("east", {"zone": "east"}, 50), ("west", {"zone": "west"}, 50)]
                        ),
                    ),
                )
            ],
            zones,
            True,
        ),
        (
            "requirement matching no host",
            "4 split 2/2/0; entry 'mars' matches no candidate, so its 2 are reported unsatisfied "
            "and not placed elsewhere; 'moon' (weight 0, count 0) is not reported.",
            [
                _manifest(
                    "shop",
                    _actor(
                        "shop",
                        "web",
                        _scaler(
                            4,
                            [
                                ("east", {"zone": "east"}, 50),
                                ("mars", {"zone": "mars"}, 50),
                                ("moon", {"zone": "moon"}, 0),
                            ],
                        ),
                    ),
                )
            ],
            zones,
            False,
        ),
        (
            "daemonscaler",
            "'agent': 2 on every candidate matching zone=east or role=edge, once per host even "
            "when it matches both; weights do not matter. 'probe': no host has zone=mars, so "
            'its 3 per host are reported with spread "".',
            [
                _manifest(
                    "ops",
                    _actor(
                        "ops",
                        "agent",
                        _scaler(
                            2,
                            [("east", {"zone": "east"}, 100), ("edge", {"role": "edge"}, 0)],
                            True,
                        ),
                    ),
                    _actor("ops", "probe", _scaler(3, [("mars", {"zone": "mars"}, 100)], True)),
                )
            ],
            [
                _host(H1, zone="east"),
                _host(H2, zone="west", role="edge"),
                _host(H3, zone="east", role="edge"),
                _host(H4, zone="west"),
            ],
            False,
        ),
        (
            "two components and their links",
            "'api' (3 instances) and 'worker' (2; no id, no sha256: key 'shop/worker', and links "
            "from it use actor 'shop/worker'). 'audit' has no scaler: nothing placed, but its "
            "link is kept. Each link is written by the 2 best-scored candidates.",
            [
                _manifest(
                    "shop",
                    _actor(
                        "shop",
                        "api",
                        _scaler(3),
                        (
                            {"target": "kv", "values": {"BUCKET": "orders"}},
                            {"target": "worker", "values": {}},
                        ),
                        actor_id=A1,
                    ),
                    _actor(
                        "shop",
                        "worker",
                        _scaler(2),
                        ({"target": "wasmcloud:httpclient", "values": {}},),
                        sha256=False,
                    ),
                    _actor(
                        "shop",
                        "audit",
                        None,
                        ({"target": "wasmcloud:builtin:logging", "values": {}},),
                        actor_id=A2,
                    ),
                    _kv(),
                )
            ],
            [_host(H1), _host(H2), _host(H3), _host(H4)],
            True,
        ),
        (
            "host joins: before",
            "5 over 3 hosts: 1 each, 2 best-scored get one more.",
            [web],
            plain3,
            False,
        ),
        (
            "host joins: after",
            "The same manifest after a fourth host joined: 5 over 4. Compared with the case "
            "before, no host that was there gains an instance: only the joining host's share "
            "moves (HRW scores do not depend on who else is present).",
            [web],
            [*plain3, _host(H4)],
            False,
        ),
        (
            "ties in the split",
            "Largest remainder ties. 'a' (3 at weights 1/2/3): remainders 3/0/3, the tie goes "
            "to the larger weight: 0/1/2. 'b' (3 at 50/50): the tie goes to the earlier entry: "
            "2/1. 'c' (5 at 1/1, entry 'any' matching all): 3/2; counts of one key on one host "
            "add up.",
            [
                _manifest(
                    "tie",
                    _actor(
                        "tie",
                        "a",
                        _scaler(
                            3,
                            [
                                ("x", {"zone": "x"}, 1),
                                ("y", {"zone": "y"}, 2),
                                ("z", {"zone": "z"}, 3),
                            ],
                        ),
                    ),
                    _actor(
                        "tie", "b", _scaler(3, [("x", {"zone": "x"}, 50), ("y", {"zone": "y"}, 50)])
                    ),
                    _actor("tie", "c", _scaler(5, [("any", {}, 1), ("x", {"zone": "x"}, 1)])),
                )
            ],
            [_host(H1, zone="x"), _host(H2, zone="y"), _host(H3, zone="z")],
            False,
        ),
        (
            "member states",
            "Members listed in any order; only alive and suspect ones are candidates (dead and "
            "left are ignored, also as link writers).",
            [
                _manifest(
                    "shop",
                    _actor("shop", "web", _scaler(4), ({"target": "kv"},), actor_id=A1),
                    _kv(),
                )
            ],
            [_host(H5, "left"), _host(H3, "suspect"), _host(H1, "dead"), _host(H4), _host(H2)],
            False,
        ),
        (
            "two applications, one link",
            "'alpha' and 'beta' deploy the same actor id and link it to wasmcloud:keyvalue "
            "'default': the application first by name (alpha) owns the link; beta's is reported "
            '(wanted 0, spread ""). Each keeps its own instances.',
            [
                _manifest(
                    "beta",
                    _actor(
                        "beta",
                        "web",
                        _scaler(1),
                        ({"target": "kv", "values": {"NS": "beta"}},),
                        actor_id=A1,
                    ),
                    _kv(),
                ),
                _manifest(
                    "alpha",
                    _actor(
                        "alpha",
                        "web",
                        _scaler(2),
                        ({"target": "kv", "values": {"NS": "alpha"}},),
                        actor_id=A1,
                    ),
                    _kv(),
                ),
            ],
            plain3,
            False,
        ),
        (
            "no live host",
            "Every member dead: nothing placed, every count reported, links kept without writers.",
            [
                _manifest(
                    "shop",
                    _actor("shop", "web", _scaler(2), ({"target": "kv"},), actor_id=A1),
                    _kv(),
                )
            ],
            [_host(H1, "dead"), _host(H2, "dead")],
            False,
        ),
    ]


def _scores(outcome: dict[str, Any], manifests: list[str]) -> list[dict[str, str]]:
    keys = []
    for text in manifests:
        manifest = decode_manifest(text.encode())
        for component in manifest.actors:
            if component.scaler is not None:
                for spread in component.scaler.spread:
                    keys.append(f"{manifest.name}/{component.name}\x00{spread.name}")
    for link in outcome["links"]:
        keys.append("\x00".join(("link", link["actor"], link["contract_id"], link["link_name"])))
    rows = []
    for key in keys:
        for host in outcome["candidates"]:
            message, score = _score_hex(key, host)
            rows.append({"key": key, "host": host, "input_hex": message, "score_hex": score})
    return rows


def _generate() -> None:
    cases = []
    for name, description, manifests, hosts, with_scores in _inputs():
        case = {"name": name, "description": description, "manifests": manifests, "hosts": hosts}
        placement = compute_placement(
            [decode_manifest(m.encode()) for m in manifests],
            [HostView.of(h["id"], h["labels"], h["state"]) for h in hosts],
        )
        outcome = _outcome(placement)
        case.update(outcome)
        if with_scores:
            case["scores"] = _scores(outcome, manifests)
        cases.append(case)
    entry = {"name": "placement", "description": DESCRIPTION, "cases": cases}
    data = [v for v in json.loads(VECTORS.read_text()) if v["name"] != "placement"]
    VECTORS.write_text(json.dumps([*data, entry], indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _generate()
