"""Encrypted transport: Noise XXpsk0 sessions between hosts over TCP.

``Transport`` (``tcp.py``) is what other layers use; ``Session`` is the
sans-IO core it drives; ``noise`` is the Noise Protocol Framework itself;
``channels`` numbers the layers that share a session. See
proto/spec/transport.md for the wire format.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at run time __getattr__ below loads them
    from meshhost.transport.handshake import PROTOCOL_VERSION
    from meshhost.transport.session import PROTOCOL_NAME, LocalIdentity, Session
    from meshhost.transport.tcp import RequestHandler, Transport

# Imported on first use (PEP 562): `meshhost.transport.channels` is read by the
# CLI's control client, which must not pull in trio and pynacl with it.
_EXPORTS = {
    "PROTOCOL_VERSION": "handshake",
    "PROTOCOL_NAME": "session",
    "LocalIdentity": "session",
    "Session": "session",
    "RequestHandler": "tcp",
    "Transport": "tcp",
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
