"""Hypothesis: every provider payload decoder raises only meshhost.errors types on any input."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.capabilities import (
    HTTPCLIENT,
    KEYVALUE,
    LOGGING,
    MESSAGING,
    NUMBERGEN,
    Dispatcher,
    HttpClientProvider,
    KeyValueProvider,
    LinkDefinition,
    LinkTable,
    LoggingProvider,
    MessagingProvider,
    NumberGenProvider,
    contracts,
)
from meshhost.capabilities.providers import httpserver
from meshhost.capabilities.providers.codec import Kind, decode_value
from meshhost.capabilities.providers.httpclient import parse_settings as client_settings
from meshhost.capabilities.providers.messaging import subscriptions_of
from meshhost.errors import LinkConfigError, MeshError, PayloadDecodeError

ACTOR = "M" + "F" * 55
MESSAGES = [
    getattr(contracts, name)
    for name in contracts.__all__
    if isinstance(getattr(contracts, name), type) and hasattr(getattr(contracts, name), "FIELDS")
]

# msgpack-shaped values, so the fuzzer reaches the field checks, not only the parser
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(st.text(max_size=12), st.integers(-(2**63), 2**63 - 1)), inner, max_size=5
        ),
    ),
    max_leaves=10,
)
field_names = st.sampled_from(
    [*sorted({f.wire for m in MESSAGES for f in m.FIELDS}), "junk", "", "KEY"]
)
structs = st.dictionaries(field_names, values, max_size=6)
payloads = st.one_of(
    st.binary(max_size=200),
    values.map(lambda v: msgpack.packb(v, use_bin_type=True)),
    structs.map(lambda v: msgpack.packb(v, use_bin_type=True)),
    structs.map(lambda v: b"\xc1" + msgpack.packb(v, use_bin_type=True)),
)


@given(payload=payloads)
def test_message_decoders_raise_only_payload_decode_errors(payload: bytes) -> None:
    for cls in MESSAGES:
        try:
            message = cls.decode(payload)
        except PayloadDecodeError:
            continue
        assert cls.decode(message.encode()) == message  # whatever decodes, round-trips


@given(payload=payloads)
def test_bare_decoders_raise_only_payload_decode_errors(payload: bytes) -> None:
    for kind in Kind:
        try:
            decode_value(payload, kind, "fuzz")
        except PayloadDecodeError:
            pass


_TMP = tempfile.TemporaryDirectory()
_KV = KeyValueProvider(Path(_TMP.name) / "kv")


async def _no_invoke(actor_id, operation, payload, timeout_s):  # pragma: no cover - never runs
    return b""


_LINKS = LinkTable(
    [
        LinkDefinition(ACTOR, KEYVALUE, "default"),
        LinkDefinition(ACTOR, MESSAGING, "default", values={"SUBSCRIPTION": "a.>"}),
        LinkDefinition(ACTOR, HTTPCLIENT, "default"),
        # the older generations' contract ids (capabilities/legacy.py)
        LinkDefinition(ACTOR, "wascc:keyvalue", "default"),
        LinkDefinition(ACTOR, "wascc:messaging", "default", values={"SUBSCRIPTION": "a.>"}),
        LinkDefinition(ACTOR, "wascc:http_client", "default"),
        LinkDefinition(ACTOR, "wascc:logging", "default"),
        LinkDefinition(ACTOR, "wasmcloud:logging", "default"),
    ]
)
_DISPATCHER = Dispatcher(
    links=_LINKS,
    providers=[
        _KV,
        LoggingProvider(),
        MessagingProvider(_no_invoke),
        HttpClientProvider(),
        NumberGenProvider(),
    ],
)
_OPERATIONS = [
    (contract, op)
    for provider in _DISPATCHER.providers
    for contract in (provider.contract_id, *provider.CONTRACT_ALIASES)
    for op in provider.OPERATIONS
]


class _Actor:
    actor_id = ACTOR
    name = "fuzz"
    caps = (
        KEYVALUE,
        LOGGING,
        MESSAGING,
        HTTPCLIENT,
        NUMBERGEN,
        "wascc:keyvalue",
        "wascc:messaging",
        "wascc:http_client",
        "wascc:logging",
        "wasmcloud:logging",
        "wascc:extras",
        "wasmcloud:extras",
    )
    call_alias = None
    issuer = "A" + "A" * 55


@given(op=st.sampled_from(_OPERATIONS), payload=payloads)
def test_every_provider_operation_raises_only_mesh_errors(op, payload: bytes) -> None:
    contract, operation = op
    try:
        answer = _DISPATCHER.host_call(_Actor(), "", contract, operation, payload)
    except MeshError:
        return
    assert isinstance(answer, bytes)


config_values = st.dictionaries(
    st.sampled_from(
        [
            "ADDRESS",
            "port",
            "config_json",
            "config_b64",
            "timeout_ms",
            "MAX_CONTENT_LEN",
            "SUBSCRIPTION",
            "ALLOWED_HOSTS",
            "TIMEOUT_MS",
            "MAX_RESPONSE_BYTES",
            "NAMESPACE",
        ]
    ),
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(['{"address": 5}', "[]", "{", "1k", "0", "*", "[" * 3000]),
    ),
    max_size=4,
)


@given(config=config_values)
def test_link_config_parsers_raise_only_link_config_errors(config: dict[str, str]) -> None:
    link = LinkDefinition(ACTOR, "wasmcloud:any", "default", values=config)
    for parse in (httpserver.parse_settings, client_settings, subscriptions_of):
        try:
            parse(link)
        except LinkConfigError:
            pass


def test_both_providers_read_config_b64_then_config_json_through_one_decoder() -> None:
    b64 = base64.b64encode(b'{"address": "127.0.0.1:9", "subscriptions": ["a"]}').decode()
    link = LinkDefinition(
        ACTOR,
        "wasmcloud:any",
        "default",
        values={"CONFIG_JSON": '{"subscriptions": ["b"]}', "config_b64": b64.rstrip("=")},
    )
    assert [key for key, _ in link.json_configs()] == ["config_b64", "config_json"]
    assert subscriptions_of(link) == (("a",), ("b",))
    assert httpserver.parse_settings(link).bind == "127.0.0.1:9"
    bad = LinkDefinition(ACTOR, "wasmcloud:any", "default", values={"config_b64": "!!"})
    for parse in (httpserver.parse_settings, subscriptions_of):
        with pytest.raises(LinkConfigError, match="config_b64 is not valid"):
            parse(bad)


@pytest.mark.parametrize("key", ["config_json", "config_b64"])
def test_deeply_nested_config_json_is_a_link_config_error(key: str) -> None:
    text = "[" * 3000 + "]" * 3000  # json.loads raises RecursionError, not ValueError
    raw = base64.b64encode(text.encode()).decode() if key == "config_b64" else text
    link = LinkDefinition(ACTOR, "wasmcloud:any", "default", values={key: raw})
    for parse in (httpserver.parse_settings, subscriptions_of):
        with pytest.raises(LinkConfigError, match=f"{key} is not valid"):
            parse(link)


@given(
    data=st.one_of(
        scalars,
        st.dictionaries(
            st.sampled_from(["actor_id", "contract_id", "link_name", "provider_id", "values"]),
            values,
            max_size=5,
        ),
    )
)
def test_link_definition_from_dict_raises_only_link_config_errors(data) -> None:
    try:
        link = LinkDefinition.from_dict(data)
    except LinkConfigError:
        return
    assert LinkDefinition.from_dict(link.to_dict()) == link
