"""Public surface of the transport and the sans-IO rule for its cores."""

from __future__ import annotations

import ast
from pathlib import Path

import meshhost.transport as transport

PACKAGE = Path(transport.__file__).parent
CORES = (
    "noise.py",
    "frames.py",
    "handshake.py",
    "records.py",
    "session.py",
    "backoff.py",
    "guard.py",
)
BANNED = {"trio", "socket", "time", "os", "random", "select", "asyncio", "threading"}
ALLOWED = {
    ("records.py", "threading"),  # a per-thread scratch buffer, no I/O
    ("backoff.py", "random"),  # the type of the injected rng; it draws from no global
}


def test_exports() -> None:
    assert sorted(transport.__all__) == [
        "LocalIdentity",
        "PROTOCOL_NAME",
        "PROTOCOL_VERSION",
        "RequestHandler",
        "Session",
        "Transport",
    ]
    for name in transport.__all__:
        assert getattr(transport, name) is not None
    assert transport.PROTOCOL_NAME == "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b"


def test_cores_do_no_io_and_draw_no_randomness() -> None:
    for name in CORES:
        tree = ast.parse((PACKAGE / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [(node.module or "").split(".")[0]]
            else:
                continue
            for module in modules:
                assert module not in BANNED or (name, module) in ALLOWED, f"{name} imports {module}"
