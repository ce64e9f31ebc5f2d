"""Encrypted transport: Noise XXpsk0 sessions between hosts over TCP.

``Transport`` (``tcp.py``) is what other layers use; ``Session`` is the
sans-IO core it drives; ``noise`` is the Noise Protocol Framework itself.
See proto/spec/transport.md for the wire format.
"""

from meshhost.transport.handshake import PROTOCOL_VERSION
from meshhost.transport.session import PROTOCOL_NAME, LocalIdentity, Session
from meshhost.transport.tcp import RequestHandler, Transport

__all__ = [
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "LocalIdentity",
    "RequestHandler",
    "Session",
    "Transport",
]
