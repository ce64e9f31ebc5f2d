"""Encrypted transport: Noise XXpsk0 sessions between hosts over TCP.

``Transport`` (``pool.py``: one session per peer, dialing, requests) is what
other layers use; ``listener.py`` admits inbound connections and
``connection.py`` drives one connection; ``Session`` is the sans-IO core they
drive (every protocol rule, timers included); ``noise`` is the Noise Protocol
Framework itself; ``channels`` numbers the layers that share a session. See
proto/spec/transport.md for the wire format.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at run time __getattr__ below loads them
    from meshhost.transport.handshake import PROTOCOL_VERSION
    from meshhost.transport.pool import RequestHandler, Transport
    from meshhost.transport.session import PROTOCOL_NAME, LocalIdentity, Session

# Imported on first use (PEP 562): `meshhost.transport.channels` is read by the
# CLI's control client, which must not pull in trio and pynacl with it.
_EXPORTS = {
    "PROTOCOL_VERSION": "handshake",
    "PROTOCOL_NAME": "session",
    "LocalIdentity": "session",
    "Session": "session",
    "RequestHandler": "pool",
    "Transport": "pool",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "LocalIdentity",
    "RequestHandler",
    "Session",
    "Transport",
]
