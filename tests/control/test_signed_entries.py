"""Signed lattice-wide entries (proto/spec/operators.md, "Signed entries").

In a lattice with an admin, a host holds a link, config or manifest entry only when
an operator with the namespace's role signed it (or it is a link a deployed manifest
declares, as the reconciler writes it); open lattices keep taking everything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meshhost.apps.store import MANIFESTS_NS
from meshhost.control.security import SECURITY_NS, LatticeSecurity
from meshhost.directory import Directory, MemoryStore, PeerMisbehaved, Staging
from meshhost.directory.chunks import Reassembler, split
from meshhost.directory.codec import (
    FullState,
    LwwDelta,
    LwwEntry,
    decode_piggyback,
    encode,
    encode_value,
)
from meshhost.directory.hlc import Stamp
from meshhost.directory.state import LINK_NS
from meshhost.directory.store import entry_from_json, entry_to_json
from meshhost.identity import nkeys
from meshhost.identity.operators import (
    Role,
    StatementKind,
    entry_signing_bytes,
    sign_entry,
    sign_statement,
    verify_entry,
)

LATTICE = "default"
ADMIN = nkeys.KeyPair(nkeys.Prefix.OPERATOR, bytes(range(32)))
DEPLOYER = nkeys.KeyPair(nkeys.Prefix.USER, bytes(range(32, 64)))
NOW = 1_765_000_000_000
PEER = "NPEER"


def _signed(
    pair: nkeys.KeyPair, ns: str, key: str, value: object, stamp: Stamp, lattice: str = LATTICE
) -> LwwEntry:
    data = None if value is None else encode_value(value)
    sig = sign_entry(pair, lattice, ns, key, stamp.packed(), stamp.node, data)
    return LwwEntry(ns, key, stamp, value, (pair.public_key, sig))


def _host(
    admins: tuple[str, ...] = (ADMIN.public_key,), store: MemoryStore | None = None
) -> tuple[Directory, LatticeSecurity]:
    directory = Directory("NHOST", clock=lambda: NOW / 1000 + 1, store=store)
    security = LatticeSecurity(LATTICE, admins, directory)
    directory.admit = security.admit
    return directory, security


def _events(directory: Directory) -> list[object]:
    out = []
    while (event := directory.next_event()) is not None:
        out.append(event)
    return out


def test_open_lattices_take_unsigned_entries_as_before() -> None:
    directory, _ = _host(admins=())
    entry = LwwEntry(LINK_NS, "M/wasmcloud:keyvalue/default", Stamp(NOW, 0, PEER), {"a": "b"})
    directory.notify_message(PEER, encode(LwwDelta((entry,))))
    assert directory.entry(LINK_NS, entry.key) == entry and directory.refused_entries == 0


def test_only_a_valid_signature_by_the_namespaces_role_at_that_time_is_held() -> None:
    _, security = _host()
    stamp = Stamp(NOW, 0, PEER)
    good = _signed(ADMIN, "config", "db", "postgres://x", stamp)
    assert security.admit(good)
    assert not security.admit(LwwEntry("config", "db", stamp, "postgres://x"))  # unsigned
    assert not security.admit(LwwEntry("config", "db", stamp, "evil", good.auth))  # altered
    assert not security.admit(
        LwwEntry("config", "db", Stamp(NOW + 1, 0, PEER), "postgres://x", good.auth)
    )  # re-stamped: the stamp is signed
    assert not security.admit(
        LwwEntry("config", "db", Stamp(NOW, 0, "NOTHER"), "postgres://x", good.auth)
    )  # another writer
    assert not security.admit(_signed(ADMIN, "config", "db", "x", stamp, lattice="other"))
    assert not security.admit(LwwEntry("config", "db", stamp, None, good.auth))  # tombstone
    assert security.admit(_signed(ADMIN, "config", "db", None, stamp))  # a signed tombstone
    # a deployer signs manifests, not config or links; nobody else signs anything
    assert not security.admit(_signed(DEPLOYER, "config", "db", "x", stamp))
    assert not security.admit(_signed(DEPLOYER, MANIFESTS_NS, "app@1", b"{}", stamp))
    later = NOW + 60_000
    grant = sign_statement(
        ADMIN, LATTICE, StatementKind.ROLE, DEPLOYER.public_key, "deployer", later
    )
    security.add(grant)
    assert security.role_at(DEPLOYER.public_key, later) == Role.DEPLOYER
    after = Stamp(later + 5, 0, PEER)
    assert security.admit(_signed(DEPLOYER, MANIFESTS_NS, "app@1", b"{}", after))
    assert not security.admit(_signed(DEPLOYER, LINK_NS, "k", {"a": 1}, after))
    # the role counts from the grant on: entries stamped before it stay refused
    assert not security.admit(_signed(DEPLOYER, MANIFESTS_NS, "app@1", b"{}", stamp))
    # an admin removed later keeps the entries it signed while it was one
    security.add(
        sign_statement(ADMIN, LATTICE, StatementKind.ROLE, DEPLOYER.public_key, "none", later + 100)
    )
    assert security.admit(_signed(DEPLOYER, MANIFESTS_NS, "app@1", b"{}", after))
    assert not security.admit(
        _signed(DEPLOYER, MANIFESTS_NS, "app@1", b"{}", Stamp(later + 200, 0, PEER))
    )
    assert verify_entry(
        LATTICE,
        ADMIN.public_key,
        good.auth[1],
        "config",
        "db",
        stamp.packed(),
        PEER,
        encode_value("postgres://x"),
    )


def test_an_unsigned_entry_from_its_writer_is_dropped_counted_and_reported_once() -> None:
    directory, _ = _host()
    forged = [
        LwwEntry(LINK_NS, f"M/wasmcloud:keyvalue/n{i}", Stamp(NOW, i, PEER), {"v": i})
        for i in range(3)
    ]
    for entry in forged:
        directory.notify_message(PEER, encode(LwwDelta((entry,))))
    directory.merge_remote_state(PEER, encode(FullState((), tuple(forged))))
    assert directory.items(LINK_NS) == []
    assert directory.refused_entries == 6
    reports = [e for e in _events(directory) if isinstance(e, PeerMisbehaved)]
    assert len(reports) == 1 and "without a valid operator signature" in reports[0].reason


def test_an_entry_arriving_with_its_signers_grant_is_held_whatever_the_order() -> None:
    directory, _ = _host()
    grant = sign_statement(
        ADMIN, LATTICE, StatementKind.ROLE, DEPLOYER.public_key, "deployer", NOW - 1000
    )
    manifest = _signed(DEPLOYER, MANIFESTS_NS, "app@1", b"{}", Stamp(NOW, 0, PEER))
    directory.merge_remote_state(
        PEER,
        encode(
            FullState(
                (),
                (
                    manifest,
                    LwwEntry(SECURITY_NS, grant.digest, Stamp(NOW, 1, PEER), grant.encoded()),
                ),
            )
        ),
    )
    assert directory.get(MANIFESTS_NS, "app@1") == b"{}"
    assert directory.refused_entries == 0


def test_entries_loaded_from_disk_pass_the_same_check() -> None:
    store = MemoryStore()
    signed = _signed(ADMIN, "config", "kept", "yes", Stamp(NOW, 0, PEER))
    store.append(
        [
            signed,
            LwwEntry("config", "forged", Stamp(NOW, 1, PEER), "no"),
            LwwEntry(LINK_NS, "M/x:y/default", Stamp(NOW, 2, PEER), {"a": "b"}),
        ]
    )
    directory, security = _host(store=store)
    assert security.revalidate() == 2
    assert directory.items("config") == [("kept", "yes")] and directory.items(LINK_NS) == []


def test_a_staged_write_changes_nothing_until_signed_and_committed() -> None:
    directory, security = _host()
    staging = Staging(check=security.check_entry, provided={}, exempt=frozenset({SECURITY_NS}))
    with directory.staged(staging):
        directory.config_put("db", "x")
    assert directory.config_get("db") is None and directory.pending_broadcasts == 0
    [asked] = staging.missing
    sig = sign_entry(
        ADMIN, LATTICE, "config", "db", asked.stamp.packed(), asked.stamp.node, encode_value("x")
    )
    wrong = sign_entry(
        ADMIN, LATTICE, "config", "db", asked.stamp.packed(), asked.stamp.node, encode_value("y")
    )
    for signature, held in ((wrong, None), (sig, "x")):
        staging = Staging(
            check=security.check_entry,
            provided={("config", "db"): (asked.stamp.packed(), (ADMIN.public_key, signature))},
        )
        with directory.staged(staging):
            directory.config_put("db", "x")
        assert bool(staging.missing) == (held is None)
        directory.commit(staging)
        assert directory.config_get("db") == held
    entry = directory.entry("config", "db")
    assert entry is not None and entry.auth == (ADMIN.public_key, sig)


# -- vectors (proto/vectors/operators.json, "entries") ------------------------------------------

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "operators.json"
WRITER = "NAC2XUMQT7W6VA6F2RUP3JGGX3BLSOOIPSYMXKF5VZXR3TPPANMFXGD4"  # any host id


def _vector_entries() -> list[tuple[str, LwwEntry]]:
    link = {
        "actor_id": "MBCXXX",
        "contract_id": "wasmcloud:keyvalue",
        "link_name": "default",
        "provider_id": "",
        "values": {"NAMESPACE": "shop"},
    }
    return [
        (
            "link_put",
            _signed(
                ADMIN, LINK_NS, "MBCXXX/wasmcloud:keyvalue/default", link, Stamp(NOW, 0, WRITER)
            ),
        ),
        ("config_tombstone", _signed(ADMIN, "config", "db", None, Stamp(NOW, 1, WRITER))),
        (
            "manifest_by_deployer",
            _signed(
                DEPLOYER, MANIFESTS_NS, "shop@v1", b'{"name":"shop"}' * 40, Stamp(NOW, 2, WRITER)
            ),
        ),
    ]


def _vector_of(name: str, entry: LwwEntry) -> dict[str, Any]:
    assert entry.auth is not None
    value = None if entry.value is None else encode_value(entry.value)
    out: dict[str, Any] = {
        "name": name,
        "lattice": LATTICE,
        "ns": entry.ns,
        "key": entry.key,
        "stamp": entry.stamp.packed(),
        "writer": entry.stamp.node,
        "value_msgpack": None if value is None else value.hex(),
        "signer": entry.auth[0],
        "signing_bytes": entry_signing_bytes(
            LATTICE, entry.ns, entry.key, entry.stamp.packed(), entry.stamp.node, value
        ).hex(),
        "sig": entry.auth[1].hex(),
        "lww_delta": encode(LwwDelta((entry,))).hex(),
        "log_line": entry_to_json(entry),
    }
    if entry.ns == MANIFESTS_NS:  # large: gossiped in pieces
        out["lww_chunks"] = [encode(c).hex() for c in split(entry, 460)]
    return out


def test_signed_entries_match_the_vectors() -> None:
    vectors = json.loads(VECTORS.read_text())["entries"]
    assert [v["name"] for v in vectors] == [n for n, _ in _vector_entries()]
    seeds = {ADMIN.public_key: ADMIN, DEPLOYER.public_key: DEPLOYER}
    for vector, (name, entry) in zip(vectors, _vector_entries(), strict=True):
        assert _vector_of(name, entry) == vector
        assert vector["signer"] in seeds
        decoded = decode_piggyback(bytes.fromhex(vector["lww_delta"]))
        assert isinstance(decoded, LwwDelta) and decoded.entries == (entry,)
        assert entry_from_json(vector["log_line"]) == entry
        if "lww_chunks" in vector:
            assembler = Reassembler()
            pieces = [decode_piggyback(bytes.fromhex(c)) for c in vector["lww_chunks"]]
            assert len(pieces) > 1
            assert [assembler.add(p) for p in pieces][-1] == entry  # type: ignore[arg-type]


def _generate() -> None:  # pragma: no cover
    data = json.loads(VECTORS.read_text())
    data["entries"] = [_vector_of(name, entry) for name, entry in _vector_entries()]
    data["description"] = (
        "Signed control requests, security statements and signed directory entries "
        '(proto/spec/operators.md). Args use {"bin": hex} for msgpack bin values. '
        "entries: the bytes an operator signs for a lattice-wide entry, the signature "
        "(ADMIN and DEPLOYER seeds: bytes 0..31 and 32..63, kinds O and U), and the "
        "entry as an LWW_DELTA, as LWW_CHUNK pieces of at most 460 bytes, and as its "
        "lww.jsonl line."
    )
    VECTORS.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _generate()


DERIVED_APP = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  annotations:
    version: v1
spec:
  components:
    - name: cart
      type: actor
      properties:
        image: cart.wasm
        id: ACTOR_ID
      traits:
        - type: linkdef
          properties:
            target: wasmcloud:keyvalue
            values:
              NAMESPACE: shop
"""


def test_unsigned_links_are_held_exactly_while_a_deployed_manifest_declares_them() -> None:
    """The reconciler writes a manifest's links unsigned; a peer holds such a link only
    when a deployed (signed) manifest declares it, value and all, and deletes it only
    once none does and what it replaces was unsigned too."""
    from meshhost.apps.manifest import parse_manifest
    from meshhost.apps.placement import LinkSpec
    from meshhost.apps.store import DEPLOYMENTS_NS, LINKS_NS, encode_link, link_record_key
    from meshhost.capabilities.links import LinkDefinition
    from meshhost.directory.links import link_key

    directory, security = _host()
    actor = nkeys.KeyPair(nkeys.Prefix.MODULE, bytes([7] * 32)).public_key
    manifest = parse_manifest(DERIVED_APP.replace("ACTOR_ID", actor), check_images=False)
    declared = LinkDefinition(actor, "wasmcloud:keyvalue", "default", "", {"NAMESPACE": "shop"})
    key = link_key(actor, "wasmcloud:keyvalue", "default")
    spec = LinkSpec(
        "shop", "cart", actor, "wasmcloud:keyvalue", "default", (("NAMESPACE", "shop"),)
    )
    record_key, record = link_record_key(spec), encode_link(spec)

    def unsigned(ns: str, k: str, value: object, n: int) -> LwwEntry:
        return LwwEntry(ns, k, Stamp(NOW + 100, n, PEER), value)

    assert not security.admit(unsigned(LINK_NS, key, declared.to_dict(), 0))  # not deployed
    stamp = Stamp(NOW, 0, PEER)
    for entry in (
        _signed(ADMIN, MANIFESTS_NS, "shop@v1", manifest.canonical(), stamp),
        _signed(ADMIN, DEPLOYMENTS_NS, "shop", b"v1", stamp),
    ):
        directory.merge_remote_state(PEER, encode(FullState((), (entry,))))
    assert directory.get(DEPLOYMENTS_NS, "shop") == b"v1"
    assert security.admit(unsigned(LINK_NS, key, declared.to_dict(), 1))
    assert security.admit(unsigned(LINKS_NS, record_key, record, 1))
    altered = dict(declared.to_dict(), values={"NAMESPACE": "other"})
    assert not security.admit(unsigned(LINK_NS, key, altered, 2))
    assert not security.admit(unsigned(LINK_NS, key, None, 2))  # declared: no unsigned delete
    directory.merge_remote_state(
        PEER, encode(FullState((), (unsigned(LINK_NS, key, declared.to_dict(), 1),)))
    )
    assert directory.link(actor, "wasmcloud:keyvalue") == declared
    # undeployed (signed tombstone): the reconciler's unsigned delete is now held
    directory.merge_remote_state(
        PEER,
        encode(
            FullState(
                (), (_signed(ADMIN, DEPLOYMENTS_NS, "shop", None, Stamp(NOW + 200, 0, PEER)),)
            )
        ),
    )
    assert not security.admit(unsigned(LINK_NS, key, declared.to_dict(), 300))
    directory.merge_remote_state(
        PEER, encode(FullState((), (LwwEntry(LINK_NS, key, Stamp(NOW + 300, 0, PEER), None),)))
    )
    assert directory.link(actor, "wasmcloud:keyvalue") is None
    # an admin's (signed) link is never deleted without a signature
    directory.merge_remote_state(
        PEER,
        encode(
            FullState(
                (), (_signed(ADMIN, LINK_NS, key, declared.to_dict(), Stamp(NOW + 400, 0, PEER)),)
            )
        ),
    )
    assert not security.admit(LwwEntry(LINK_NS, key, Stamp(NOW + 500, 0, PEER), None))
