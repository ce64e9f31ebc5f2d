"""mDNS discovery: records, lattice tags, and real zeroconf in a private namespace."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zeroconf import ServiceInfo

from meshhost.discovery import DEFAULT_SERVICE_TYPE, MdnsDiscovery
from meshhost.discovery.mdns import (
    MAX_PEER_ADDRESSES,
    MAX_PEERS,
    check_service_type,
    local_ipv4_addresses,
)
from meshhost.errors import DiscoveryError
from meshhost.identity.keyring import Keyring, mdns_tag

PROBE = str(Path(__file__).with_name("netns_mdns_probe.py"))
SECRET = bytes(range(32))
TYPE = "_mh-unit._udp.local."


def service(props: dict[str, str], port: int = 7000, addrs: tuple[str, ...] = ("10.0.0.5",)):
    return ServiceInfo(
        TYPE,
        f"NPEER.{TYPE}",
        port=port,
        properties=props,
        parsed_addresses=list(addrs),
        server="peer.local.",
    )


def discovery(secret: bytes = SECRET) -> MdnsDiscovery:
    return MdnsDiscovery(
        host_id="NSELF",
        addr=("127.0.0.1", 7001),
        keyring=Keyring.create("lat", [secret]),
        service_type=TYPE,
    )


def test_default_and_per_test_service_types_are_valid() -> None:
    assert check_service_type(DEFAULT_SERVICE_TYPE) == "_meshhost._udp.local."
    assert check_service_type("_mh-3f9a2c._udp.local.")


@pytest.mark.parametrize(
    "bad",
    [
        "_this-label-is-too-long._udp.local.",
        "meshhost._udp.local.",
        "_mh._xyz.local.",
        "_._udp.local.",  # zeroconf's own check raised IndexError here, not a clear error
        "_inst._mh._udp.local.",  # an instance name, not a service type
    ],
)
def test_bad_service_type_is_a_discovery_error(bad: str) -> None:
    with pytest.raises(DiscoveryError, match="service type"):
        check_service_type(bad)


def test_own_record_carries_id_version_and_tag_but_not_the_lattice_name() -> None:
    disc = discovery()
    info = disc._service_info(["127.0.0.1"])
    props = {k.decode(): v.decode() for k, v in info.properties.items() if v is not None}
    assert props == {"id": "NSELF", "v": "1", "lt": mdns_tag(SECRET, "lat")}
    assert b"lat" not in info.text.replace(b"lt=", b"")
    assert info.port == 7001 and info.parsed_addresses() == ["127.0.0.1"]


def test_service_of_our_lattice_is_accepted() -> None:
    disc = discovery()
    peer = disc._accept(service({"id": "NPEER", "v": "1", "lt": mdns_tag(SECRET, "lat")}))
    assert peer == ("NPEER", [("10.0.0.5", 7000)])


def test_service_of_another_lattice_or_secret_is_ignored_and_counted() -> None:
    disc = discovery()
    for tag in (mdns_tag(bytes(32), "lat"), mdns_tag(SECRET, "other"), "", "zz"):
        assert disc._accept(service({"id": "NPEER", "v": "1", "lt": tag})) is None
    assert disc.stats.other_lattice == 4


def test_peer_mid_rotation_is_accepted_by_either_tag() -> None:
    new = secrets.token_bytes(32)
    disc = discovery()
    disc.keyring.add(new)
    assert disc._accept(service({"id": "NPEER", "v": "1", "lt": mdns_tag(new, "lat")}))


def test_a_strangers_flood_of_services_with_our_public_tag_stays_bounded() -> None:
    # The tag is public: anyone on the LAN can advertise "hosts" of our lattice.
    disc = discovery()
    tag = mdns_tag(SECRET, "lat")
    many = tuple(f"10.1.{i // 250}.{i % 250 + 1}" for i in range(500))
    peer = disc._accept(service({"id": "NPEER", "v": "1", "lt": tag}, addrs=many))
    assert peer is not None and len(peer[1]) == MAX_PEER_ADDRESSES
    for i in range(MAX_PEERS + 10):
        disc._remember(f"N{i}.{TYPE}", (f"N{i}", [("10.0.0.1", 7000)]))
    assert len(disc.peers) == MAX_PEERS and disc.stats.peers_forgotten == 10
    assert f"N{MAX_PEERS + 9}.{TYPE}" in disc.peers and f"N0.{TYPE}" not in disc.peers


def test_malformed_services_are_ignored_and_counted() -> None:
    disc = discovery()
    tag = mdns_tag(SECRET, "lat")
    assert disc._accept(service({"v": "1", "lt": tag})) is None
    assert disc._accept(service({"id": "NPEER", "v": "9", "lt": tag})) is None
    assert disc._accept(service({"id": "NPEER", "v": "1", "lt": tag}, addrs=())) is None
    assert disc.stats.malformed == 3
    assert disc._accept(service({"id": "NSELF", "v": "1", "lt": tag})) is None


def test_hosts_find_each_other_and_other_lattices_stay_invisible(run_in_netns) -> None:
    service_type = f"_mh-{secrets.token_hex(3)}._udp.local."
    report = run_in_netns(PROBE, service_type, timeout_s=60)
    print("mDNS: everyone proposed everyone after", report["found_after_s"], "s")
    seen = report["seen"]
    for i in range(3):
        others = {("127.0.0.1", 40000 + j) for j in range(3) if j != i}
        assert {tuple(a) for a in seen[f"NHOST{i}"]} == others
        assert report["stats"][f"NHOST{i}"]["other_lattice"] >= 1
    assert seen["NOTHER"] == []
    assert report["stats"]["NOTHER"]["other_lattice"] >= 3
    assert report["stats"]["NOTHER"]["proposed"] == 0


READDRESS = str(Path(__file__).with_name("netns_mdns_readdress.py"))


def test_a_host_whose_address_changes_reannounces_and_is_proposed_again(run_in_netns) -> None:
    service_type = f"_mh-{secrets.token_hex(3)}._udp.local."
    report = run_in_netns(READDRESS, service_type, timeout_s=60)
    print("new address proposed", report["reproposed_after_s"], "s after the change")
    assert report["first"] == [["127.0.0.1", 41000]]
    assert ["127.0.0.9", 41000] in report["after_change"]


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(alphabet="aZ09-_.", max_size=18), proto=st.sampled_from(["_udp", "_tcp", "_UDP"])
)
def test_service_type_check_agrees_with_zeroconfs_own(name: str, proto: str) -> None:
    # Our check (RFC 6763/6335) replaced zeroconf's private _utils.name.service_type_name;
    # for every name of the service-type form both accept and refuse the same.
    from zeroconf import BadTypeInNameException, service_type_name

    service_type = f"_{name}.{proto}.local."
    try:
        service_type_name(service_type, strict=True)
        theirs = "." not in name  # zeroconf also takes instance names; a type has one label
    except (BadTypeInNameException, IndexError):  # 0.154 raises IndexError for "_._udp.local."
        theirs = False
    try:
        check_service_type(service_type)
        ours = True
    except DiscoveryError:
        ours = False
    assert ours == theirs, service_type


def test_local_addresses_are_ipv4_and_loopback_only_when_nothing_else() -> None:
    addrs = local_ipv4_addresses()
    loopback = [ipaddress.IPv4Address(a).is_loopback for a in addrs]
    assert all(loopback) or not any(loopback)
