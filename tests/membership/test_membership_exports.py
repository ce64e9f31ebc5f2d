"""Public surface of the membership core, and that the core stays sans-IO."""

import ast
from pathlib import Path

import meshhost.membership as membership
import meshhost.sim as sim

CORE_FILES = [
    "swim.py",
    "suspicion.py",
    "awareness.py",
    "broadcast.py",
    "messages.py",
    "state.py",
    "events.py",
    "signing.py",
]
BANNED_MODULES = {"trio", "socket", "time", "os", "asyncio", "threading", "zeroconf", "secrets"}


def test_exports_are_explicit_and_resolve():
    for pkg in (membership, sim):
        assert sorted(pkg.__all__) == sorted(set(pkg.__all__))
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0]


def test_core_modules_do_no_io_and_read_no_clock_or_global_randomness():
    root = Path(membership.__file__).parent
    for name in [*CORE_FILES, "__init__.py"]:
        path = root / name
        assert not BANNED_MODULES & set(_imports(path)), name
        text = path.read_text()
        for banned in ("random.random(", "random.choice(", "random.shuffle(", "urandom"):
            assert banned not in text, (name, banned)


def test_simulator_never_touches_the_real_clock_or_network():
    root = Path(sim.__file__).parent
    for path in root.glob("*.py"):
        assert not BANNED_MODULES & set(_imports(path)) - {"os"}, path.name
