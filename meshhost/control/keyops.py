"""Keyring control ops: one host's step of a lattice secret rotation.

``meshhost lattice rotate`` drives these on every live host, one step at a
time, and goes on only when every host acknowledged (proto/spec/rpc.md,
"Keyring"; proto/spec/keyring.md, "Rotation without downtime").  Like
Consul's ``keyring -install / -use / -remove``, each op changes one host and
answers with that host's keyring afterwards:

``keyring_list``     ->  the keyring
``keyring_install``  ``secret`` (``SL...``): accept it (seal still with the primary)
``keyring_use``      ``key`` (key id): seal and dial with it; it must be installed
``keyring_remove``   ``key`` (key id): stop accepting it; never the primary

A key is named by its *key id*, the 16 hex characters of its mDNS tag
(``keyring.mdns_tag``): public already, and it reveals nothing of the
secret.  Only ``keyring_install`` carries a secret, over the local control
socket or a Noise session of the lattice.  Each change is written to the
host's secret file first (0600, atomically, primary first) and applied
second, so what a host acknowledged survives its restart; a host whose
secret came from ``MESHHOST_LATTICE_SECRET`` has no file and answers
``saved: false``.  Ops are idempotent: installing an installed key, using
the primary or removing an absent key changes nothing and succeeds, so a
rotation interrupted half-way is simply run again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from meshhost.errors import KeyringError
from meshhost.identity.keyring import decode_secret, mdns_tag
from meshhost.transport.session import MAX_PSKS

if TYPE_CHECKING:
    from meshhost.control.source import ControlledHost

__all__ = ["KEYRING_OPS", "key_id", "keyring_op"]

KEYRING_OPS = frozenset({"keyring_list", "keyring_install", "keyring_use", "keyring_remove"})
MAX_KEYS = MAX_PSKS
"""Secrets a keyring may hold: the transport tries each on every handshake."""


def key_id(secret: bytes, lattice: str) -> str:
    """The public name of a lattice secret: its mDNS tag (16 hex characters)."""
    return mdns_tag(secret, lattice)


def _view(host: ControlledHost, saved: bool | None = None) -> dict[str, Any]:
    lattice = host.keyring.lattice
    keys = [key_id(s, lattice) for s in host.keyring.secrets]
    out: dict[str, Any] = {
        "host": host.host_id,
        "lattice": lattice,
        "primary": keys[0],
        "keys": keys,
        "file": None if host.secret_path is None else str(host.secret_path),
    }
    if saved is not None:
        out["saved"] = saved
    return out


def _find(host: ControlledHost, args: Mapping[str, Any]) -> bytes | None:
    kid = args.get("key")
    if not isinstance(kid, str) or not kid:
        raise KeyringError("give the key id (16 hex characters, see `meshhost lattice keyring`)")
    for secret in host.keyring.secrets:
        if key_id(secret, host.keyring.lattice) == kid.lower():
            return secret
    return None


async def _save(host: ControlledHost, secrets: list[bytes]) -> bool:
    # A file write (with fsync) does not belong on the event loop.
    return await trio.to_thread.run_sync(host.save_secrets, secrets)


async def keyring_op(host: ControlledHost, op: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Run one keyring op on ``host``; its keyring afterwards (see the module doc).

    Raises ``KeyringError`` (a typed ``MeshError``) for a malformed secret or
    key id, a full keyring, a key to use that is not installed, removing the
    primary, or a secret file that cannot be written (nothing changed then).
    """
    ring = host.keyring
    current = list(ring.secrets)
    if op == "keyring_list":
        return _view(host)
    if op == "keyring_install":
        text = args.get("secret")
        if not isinstance(text, str):
            raise KeyringError("keyring_install needs the new secret (SL...)")
        secret = decode_secret(text)
        if secret in current:
            return _view(host, saved=host.secret_path is not None)
        if len(current) >= MAX_KEYS:
            raise KeyringError(
                f"this host already holds {len(current)} lattice secrets (the most it accepts); "
                "remove a retired one first"
            )
        saved = await _save(host, [*current, secret])
        host.add_secret(secret)
        return _view(host, saved)
    if op == "keyring_use":
        chosen = _find(host, args)
        if chosen is None:
            raise KeyringError(
                f"key {args.get('key')} is not installed on host {host.host_id}; install it first"
            )
        if chosen == ring.primary:
            return _view(host, saved=host.secret_path is not None)
        saved = await _save(host, [chosen, *(s for s in current if s != chosen)])
        host.make_primary(chosen)
        return _view(host, saved)
    if op == "keyring_remove":
        retired = _find(host, args)
        if retired is None:
            return _view(host, saved=host.secret_path is not None)
        if retired == ring.primary:
            raise KeyringError(
                f"key {args.get('key')} is the primary secret of host {host.host_id}; "
                "use another key first (keyring_use)"
            )
        saved = await _save(host, [s for s in current if s != retired])
        host.remove_secret(retired)
        return _view(host, saved)
    raise KeyringError(f"unknown keyring op {op!r}")
