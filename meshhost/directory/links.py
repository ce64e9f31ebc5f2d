"""Link definitions: which provider serves an actor's capability, with what config.

A link definition binds (actor id, contract id, link name) to a provider and
its configuration values, as in wasmCloud 0.x (``wash ctl link put``).  The
link name is the *binding* a guest passes to ``__host_call``; the empty
binding some guests send means ``default``.

The record lives with the directory, which stores and gossips links
lattice-wide; the capabilities layer (above) enforces them through its
:class:`~meshhost.capabilities.links.LinkTable`.

:func:`link_key` and :func:`parse_link_key` are the key a link is stored
under in the directory's ``link`` namespace (``proto/spec/directory.md``,
"Link keys"); :func:`link_from_value` reads a stored value back.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from meshhost.errors import LinkConfigError

__all__ = [
    "DEFAULT_LINK_NAME",
    "MAX_LINK_VALUES",
    "LinkDefinition",
    "LinkKey",
    "link_from_value",
    "link_key",
    "normalize_link_name",
    "parse_link_key",
]

DEFAULT_LINK_NAME = "default"

MAX_LINK_VALUES = 256
"""Most config entries one link may carry (wasmCloud links carry a handful)."""

MAX_LINK_VALUE_BYTES = 64 * 1024
"""Largest single config value (a config_json blob fits easily)."""

LinkKey = tuple[str, str, str]
"""(actor id, contract id, link name)."""


def normalize_link_name(binding: str) -> str:
    """The link name a binding refers to: ``""`` (older guests, actor calls) means ``default``."""
    return binding or DEFAULT_LINK_NAME


@dataclass(frozen=True, slots=True)
class LinkDefinition:
    """One link: ``actor_id`` may use ``contract_id`` through ``provider_id`` under ``link_name``.

    ``values`` is the provider configuration (wasmCloud's link "values"); it is
    copied into a read-only mapping.  Keys are looked up case-insensitively
    with :meth:`value`, as wasmCloud's providers did.
    """

    actor_id: str
    contract_id: str
    link_name: str = DEFAULT_LINK_NAME
    provider_id: str = ""
    values: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "link_name", normalize_link_name(self.link_name))
        for name in ("actor_id", "contract_id", "link_name", "provider_id"):
            if not isinstance(getattr(self, name), str):
                raise LinkConfigError(f"link {name} must be a string")
        if not self.actor_id or not self.contract_id:
            raise LinkConfigError("a link needs an actor id and a contract id")
        if len(self.values) > MAX_LINK_VALUES:
            raise LinkConfigError(f"a link carries at most {MAX_LINK_VALUES} config values")
        copied: dict[str, str] = {}
        for key, value in self.values.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise LinkConfigError("link config keys and values must be strings")
            if len(value.encode("utf-8", "surrogatepass")) > MAX_LINK_VALUE_BYTES:
                raise LinkConfigError(
                    f"link config value {key!r} exceeds {MAX_LINK_VALUE_BYTES} bytes"
                )
            copied[key] = value
        object.__setattr__(self, "values", MappingProxyType(copied))

    @property
    def key(self) -> LinkKey:
        return (self.actor_id, self.contract_id, self.link_name)

    def value(self, name: str, default: str | None = None) -> str | None:
        """Config value ``name``, matched case-insensitively (``ADDRESS`` == ``address``)."""
        if name in self.values:
            return self.values[name]
        folded = name.casefold()
        for key, value in self.values.items():
            if key.casefold() == folded:
                return value
        return default

    def describe(self) -> str:
        return f"link {self.link_name!r} from actor {self.actor_id} to {self.contract_id}"

    def json_configs(self) -> Iterator[tuple[str, Any]]:
        """The JSON documents of ``config_b64`` (base64, padding optional) and then
        ``config_json``, as (key, parsed value) for each one the link has, as
        wasmCloud's providers read them.  Raises LinkConfigError naming the key when
        one is not valid base64 or JSON (nesting too deep included); what the
        document must hold is the provider's to check (lazily: the first bad one
        found is the one reported)."""
        for key in ("config_b64", "config_json"):
            raw = self.value(key)
            if raw is None:
                continue
            try:
                text = base64.b64decode(raw + "=" * (-len(raw) % 4)) if key == "config_b64" else raw
                parsed = json.loads(text)
            except (binascii.Error, ValueError, RecursionError) as exc:
                raise LinkConfigError(f"{self.describe()}: {key} is not valid: {exc}") from None
            yield key, parsed

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (msgpack/JSON friendly) with wasmCloud's field names."""
        return {
            "actor_id": self.actor_id,
            "contract_id": self.contract_id,
            "link_name": self.link_name,
            "provider_id": self.provider_id,
            "values": dict(self.values),
        }

    @classmethod
    def from_dict(cls, data: Any) -> LinkDefinition:
        """Inverse of to_dict; raises LinkConfigError on a malformed record."""
        if not isinstance(data, Mapping):
            raise LinkConfigError("a link definition must be a map")
        values = data.get("values", {})
        if not isinstance(values, Mapping):
            raise LinkConfigError("link values must be a map of strings")
        return cls(
            actor_id=data.get("actor_id", ""),
            contract_id=data.get("contract_id", ""),
            link_name=data.get("link_name", DEFAULT_LINK_NAME),
            provider_id=data.get("provider_id", ""),
            values=values,
        )


def link_key(actor_id: str, contract_id: str, link_name: str) -> str:
    """The LWW key of a link (``proto/spec/directory.md``, "Link keys").

    ``<actor id>/<contract id>/<link name>`` when the contract id has no
    ``/`` (every capability contract id, and every key written before links
    to call aliases existed, so those keys are unchanged).  A contract id
    holding ``/`` (a call alias such as ``wasmcloud/echo``) is written after
    an empty field, with ``%`` as ``%25`` and ``/`` as ``%2F``:
    ``<actor id>//<escaped contract id>/<link name>``.  A contract id is never
    empty, so no key of the first form has the empty field: the two forms
    never collide, and the link name (which may hold ``/``) stays last.
    The actor id must not contain ``/`` (``put_link`` refuses it).
    """
    name = normalize_link_name(link_name)
    if "/" not in contract_id:
        return f"{actor_id}/{contract_id}/{name}"
    escaped = contract_id.replace("%", "%25").replace("/", "%2F")
    return f"{actor_id}//{escaped}/{name}"


def parse_link_key(key: str) -> tuple[str, str, str] | None:
    """(actor id, contract id, link name) of a key :func:`link_key` wrote, or None.

    Only the canonical form is accepted: ``link_key(*parse_link_key(k)) == k``
    whenever the result is not None.
    """
    actor_id, sep, rest = key.partition("/")
    if not sep or not actor_id:
        return None
    if not rest.startswith("/"):
        contract_id, sep, name = rest.partition("/")
        return (actor_id, contract_id, name) if sep and contract_id and name else None
    escaped, sep, name = rest[1:].partition("/")
    if not sep or not name:
        return None
    parts = escaped.split("%")
    contract_id = parts[0]
    for part in parts[1:]:
        code, tail = part[:2], part[2:]
        if code not in ("25", "2F"):
            return None
        contract_id += ("%" if code == "25" else "/") + tail
    if "/" not in contract_id:
        return None  # not canonical: link_key writes such a contract id in the first form
    return actor_id, contract_id, name


def link_from_value(value: Any) -> LinkDefinition | None:
    """The link a directory value holds, or None (a tombstone, or not a link)."""
    if value is None:
        return None
    try:
        return LinkDefinition.from_dict(value)
    except LinkConfigError:
        return None
