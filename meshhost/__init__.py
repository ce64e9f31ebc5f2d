"""meshhost: a peer-to-peer WebAssembly actor runtime with no broker."""

from meshhost.errors import LocalProtocolError, MeshError, RemoteProtocolError

__version__ = "0.1.0"

__all__ = ["LocalProtocolError", "MeshError", "RemoteProtocolError", "__version__"]
