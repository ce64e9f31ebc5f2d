"""meshhost: a peer-to-peer WebAssembly actor runtime with no broker."""

TYPE_CHECKING = False  # not typing's: importing typing would cost ~10 ms (see __getattr__)
if TYPE_CHECKING:
    from meshhost.errors import LocalProtocolError, MeshError, RemoteProtocolError

__version__ = "0.1.0"

__all__ = ["LocalProtocolError", "MeshError", "RemoteProtocolError", "__version__"]


def __getattr__(name: str) -> object:
    # Imported on first use (PEP 562): `import meshhost` must cost nothing, since
    # the `meshhost` command can only catch a Ctrl-C once this package is loaded.
    if name in ("LocalProtocolError", "MeshError", "RemoteProtocolError"):
        from meshhost import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'meshhost' has no attribute {name!r}")
