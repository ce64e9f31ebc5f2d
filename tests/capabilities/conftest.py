"""Fixtures for the capabilities tests: actor identities, dispatchers, providers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from meshhost.capabilities import Dispatcher, KeyValueProvider, LinkDefinition, LoggingProvider

try:  # the runtime's ActorRef, once it exists; the same shape otherwise
    from meshhost.runtime import ActorRef  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on build order

    @dataclass(frozen=True, slots=True)
    class ActorRef:  # type: ignore[no-redef]
        actor_id: str
        name: str
        caps: tuple[str, ...]
        call_alias: str | None
        issuer: str


ISSUER = "A" + "B" * 55
ECHO_ID = "M" + "E" * 55
PINGER_ID = "M" + "P" * 55
PONGER_ID = "M" + "Q" * 55


def _make_actor(
    caps: tuple[str, ...] = (),
    *,
    actor_id: str = ECHO_ID,
    name: str = "echo",
    call_alias: str | None = None,
) -> ActorRef:
    return ActorRef(actor_id=actor_id, name=name, caps=caps, call_alias=call_alias, issuer=ISSUER)


@pytest.fixture
def kv_dir(tmp_path: Path) -> Path:
    return tmp_path / "kv"


@pytest.fixture
def kv_provider(kv_dir: Path):
    provider = KeyValueProvider(kv_dir)
    yield provider
    provider.close()


def _make_link(
    actor_id: str, contract_id: str, name: str = "default", **values: str
) -> LinkDefinition:
    return LinkDefinition(actor_id, contract_id, name, provider_id="builtin", values=values)


@pytest.fixture
def dispatcher(kv_provider: KeyValueProvider) -> Dispatcher:
    return Dispatcher(providers=[kv_provider, LoggingProvider()])


@pytest.fixture
def make_actor():
    """make_actor(caps, actor_id=..., name=..., call_alias=...) -> ActorRef."""
    return _make_actor


@pytest.fixture
def make_link():
    """make_link(actor_id, contract_id, name="default", **values) -> LinkDefinition."""
    return _make_link
