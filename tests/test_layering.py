"""The import graph of meshhost/ follows the layers of docs/architecture.md.

Three rules, each read from the source with ``ast`` (module-level imports,
imports inside functions and ``TYPE_CHECKING`` imports alike: a type
annotation is a dependency too):

* no cycle between modules;
* imports go down :data:`LAYERS` only: a unit (a top-level package or module
  of ``meshhost``) may import units of lower rows, never a unit of its own
  row (siblings stay independent) or of a row above; every unit is in the
  table;
* a sans-IO core (:data:`CORES`) imports nothing from :data:`IO_MODULES` and
  draws no global randomness, so the simulator can drive it.

The tables mirror docs/architecture.md; change both together. The checks are
plain functions, and the last tests plant a cycle, an upward import and an IO
import in a scratch package to prove that each check fails when it should.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import meshhost

# Top row first. A unit may import units in rows below its own, nothing else.
# "__init__" is the `meshhost` package itself (its version string).
LAYERS: list[tuple[str, ...]] = [
    ("__main__",),
    ("cli",),
    ("lab", "testing"),
    ("sim", "host", "examples"),
    ("hostparts", "hostkeys"),
    ("control",),
    ("apps",),
    ("actorhost",),
    ("monitor",),
    ("rpc",),
    ("runtime",),
    ("capabilities",),
    ("directory",),
    ("membership", "discovery", "modstore"),
    ("transport",),
    ("config",),
    ("identity",),
    ("datadir", "diskwriter", "observe", "wire", "__init__"),
    ("errors",),
]

# Modules that may do no IO: relative to meshhost/, a file or a folder (every
# module in it). The second field lets one module use one IO module for a
# reason that is not IO; the reason is the third field. `random` itself may be
# imported (a core types its injected rng as random.Random); drawing from the
# module's global generator is what GLOBAL_RANDOMNESS forbids.
IO_MODULES = frozenset(
    {
        "trio",
        "socket",
        "select",
        "selectors",
        "time",
        "os",
        "secrets",
        "threading",
        "multiprocessing",
        "subprocess",
        "asyncio",
        "zeroconf",
        "wasmtime",
        "hypercorn",
        "sqlite3",
        "shutil",
    }
)
CORES: list[tuple[str, frozenset[str], str]] = [
    ("transport/noise.py", frozenset(), ""),
    ("transport/session.py", frozenset(), ""),
    ("transport/frames.py", frozenset(), ""),
    ("transport/handshake.py", frozenset(), ""),
    ("transport/records.py", frozenset({"threading"}), "a per-thread scratch buffer, no IO"),
    ("transport/guard.py", frozenset(), ""),
    ("transport/backoff.py", frozenset(), ""),
    ("transport/channels.py", frozenset(), ""),
    ("membership/__init__.py", frozenset(), ""),
    ("membership/swim.py", frozenset(), ""),
    ("membership/suspicion.py", frozenset(), ""),
    ("membership/awareness.py", frozenset(), ""),
    ("membership/broadcast.py", frozenset(), ""),
    ("membership/messages.py", frozenset(), ""),
    ("membership/state.py", frozenset(), ""),
    ("membership/events.py", frozenset(), ""),
    ("membership/signing.py", frozenset(), ""),
    ("directory/actorindex.py", frozenset(), ""),
    ("directory/broadcast.py", frozenset(), ""),
    ("directory/chunks.py", frozenset(), ""),
    ("directory/codec.py", frozenset(), ""),
    ("directory/events.py", frozenset(), ""),
    ("directory/hlc.py", frozenset(), ""),
    ("directory/hoststate.py", frozenset(), ""),
    ("directory/links.py", frozenset(), ""),
    ("directory/lww.py", frozenset(), ""),
    ("directory/records.py", frozenset(), ""),
    ("directory/staging.py", frozenset(), ""),
    ("directory/state.py", frozenset(), ""),
    ("rpc/router.py", frozenset(), ""),
    ("capabilities/policy.py", frozenset(), ""),
    (
        "capabilities/links.py",
        frozenset({"threading"}),
        "a lock: guests read the link table from worker threads; no IO",
    ),
    ("capabilities/contracts.py", frozenset(), ""),
    ("capabilities/providers/codec.py", frozenset(), ""),
    ("capabilities/providers/subjects.py", frozenset(), ""),
    (
        "identity/keyring.py",
        frozenset({"os", "secrets"}),
        "os.urandom is only the default of the injected random_bytes; no event loop",
    ),
    ("apps/placement.py", frozenset(), ""),
    ("apps/plan.py", frozenset(), ""),
    ("apps/reconciler.py", frozenset(), ""),
    ("apps/status.py", frozenset(), ""),
    ("apps/store.py", frozenset(), ""),
    ("apps/yamlsource.py", frozenset(), ""),
    ("apps/ops.py", frozenset(), ""),
    ("apps/manifest.py", frozenset(), ""),
    ("apps/model.py", frozenset(), ""),
    ("apps/validator.py", frozenset(), ""),
    ("apps/fieldreader.py", frozenset(), ""),
    (
        "apps/images.py",
        frozenset({"os"}),
        "os.path.normpath on the image path a manifest names",
    ),
    ("sim/", frozenset({"os"}), "sim/run.py reads a seed override from the environment"),
]
# Draws from a global random source (regex, and the module it needs): a core
# takes an rng instead.
GLOBAL_RANDOMNESS = {
    r"(?<![\w.])random\.(?!Random\b)\w+\(": "random",
    r"(?<![\w.])os\.urandom\b": "os",
    r"(?<![\w.])secrets\.\w+\(": "secrets",
}

ROOT = Path(meshhost.__file__).parent


@dataclass(frozen=True, slots=True)
class Import:
    """One import in one module: ``source`` imports ``target`` at ``line``."""

    source: str
    target: str
    line: int


def module_names(root: Path) -> dict[str, Path]:
    """Every module under ``root`` (a package folder) by dotted name."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> Iterable[Import]:
    """The modules of ``modules`` that ``name`` imports, wherever in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            # `from pkg import sub` imports the submodule when there is one
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for target in targets:
            found = known(target)
            if found is not None and found != name:
                yield Import(name, found, node.lineno)


def import_graph(root: Path) -> list[Import]:
    """Every import between modules of the package at ``root``."""
    modules = module_names(root)
    return [edge for name, path in modules.items() for edge in imports_of(name, path, modules)]


def cycles(edges: Iterable[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        # iterative would be longer; the graph is a few hundred modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def unit_of(module: str) -> str:
    """The layer unit of a dotted module name: its top-level package or module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(edges: Iterable[Import], layers: list[tuple[str, ...]]) -> list[str]:
    """Every import that does not go strictly down ``layers``, as readable lines."""
    row = {unit: i for i, units in enumerate(layers) for unit in units}
    problems = []
    for edge in edges:
        src, dst = unit_of(edge.source), unit_of(edge.target)
        if src == dst:
            continue
        for unit in (src, dst):
            if unit not in row:
                problems.append(f"{unit}: not in LAYERS (place it in the table and the doc)")
        if src in row and dst in row and row[dst] <= row[src]:
            how = "a sibling" if row[dst] == row[src] else "upward"
            problems.append(f"{edge.source}:{edge.line} imports {edge.target} ({how})")
    return sorted(set(problems))


def core_files(
    root: Path, cores: list[tuple[str, frozenset[str], str]]
) -> list[tuple[Path, frozenset[str]]]:
    """The files the core table names (a folder stands for every file in it)."""
    files = []
    for entry, allowed, _reason in cores:
        path = root / entry
        paths = sorted(path.rglob("*.py")) if entry.endswith("/") else [path]
        files.extend((p, allowed) for p in paths if p.exists())
    return files


def io_violations(root: Path, cores: list[tuple[str, frozenset[str], str]]) -> list[str]:
    """Every IO import or global random draw in a core, as readable lines."""
    problems = []
    for path, allowed in core_files(root, cores):
        text = path.read_text()
        rel = path.relative_to(root)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in IO_MODULES and top not in allowed:
                    problems.append(f"{rel}:{node.lineno} imports {name}")
        for pattern, module in GLOBAL_RANDOMNESS.items():
            if module not in allowed:
                problems.extend(f"{rel} draws {m.group()}" for m in re.finditer(pattern, text))
    return problems


# --- the rules on meshhost itself


def test_no_import_cycles() -> None:
    found = cycles(import_graph(ROOT))
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_imports_go_down_the_layers() -> None:
    problems = layer_violations(import_graph(ROOT), LAYERS)
    assert problems == [], "\n".join(problems)


def test_every_unit_is_in_the_table_once() -> None:
    units = [unit for row in LAYERS for unit in row]
    assert len(units) == len(set(units))
    present = {unit_of(name) for name in module_names(ROOT)}
    assert present <= set(units), present - set(units)


def test_cores_do_no_io() -> None:
    assert io_violations(ROOT, CORES) == []


@pytest.mark.parametrize("entry", [entry for entry, _, _ in CORES if not entry.endswith("/")])
def test_every_named_core_exists(entry: str) -> None:
    assert (ROOT / entry).exists(), f"{entry} is in CORES but not in meshhost/"


def test_every_exemption_has_a_reason() -> None:
    for entry, allowed, reason in CORES:
        assert bool(allowed) == bool(reason), entry


# --- the checks fail when they should (a scratch package with planted faults)


def _package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / "meshhost"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


PLANTED_LAYERS = [("high",), ("low",), ("__init__",)]


def test_a_planted_cycle_is_found_even_through_a_function_import(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/a.py": "from meshhost.low import b\n",
            "low/b.py": "def f():\n    from . import c\n",
            "low/c.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import meshhost.low.a\n"
            ),
        },
    )
    assert cycles(import_graph(root)) == [["meshhost.low.a", "meshhost.low.b", "meshhost.low.c"]]


def test_a_planted_upward_or_sibling_import_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "high.py": "from meshhost import low\n",
            "low.py": "def f():\n    import meshhost.high\n",
            "stray.py": "",
        },
    )
    assert layer_violations(import_graph(root), PLANTED_LAYERS) == [
        "meshhost.low:2 imports meshhost.high (upward)"
    ]
    root = _package(tmp_path / "2", {"low.py": "from meshhost import stray\n", "stray.py": ""})
    assert layer_violations(import_graph(root), PLANTED_LAYERS) == [
        "stray: not in LAYERS (place it in the table and the doc)"
    ]
    assert layer_violations(import_graph(root), [("low", "stray"), ("__init__",)]) == [
        "meshhost.low:1 imports meshhost.stray (a sibling)"
    ]


def test_a_planted_io_import_in_a_core_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "core.py": "def f():\n    import trio.lowlevel\n",
            "drawn.py": "import random\nx = random.random()\ny = random.Random(4)\n",
            "seeded.py": "import os\nx = os.urandom(4)\n",
            "allowed.py": "import threading\n",
        },
    )
    cores = [
        ("core.py", frozenset(), ""),
        ("drawn.py", frozenset(), ""),
        ("seeded.py", frozenset(), ""),
        ("allowed.py", frozenset({"threading"}), "planted"),
    ]
    assert io_violations(root, cores) == [
        "core.py:2 imports trio.lowlevel",
        "drawn.py draws random.random(",
        "seeded.py:1 imports os",
        "seeded.py draws os.urandom",
    ]


def test_channel_numbers_are_defined_only_in_the_registry() -> None:
    # transport/channels.py is the one append-only registry; a module that needs
    # a channel's number takes it from there (an alias is fine, a literal is not)
    found = []
    for name, path in module_names(ROOT).items():
        if name == "meshhost.transport.channels":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                node.value, ast.Constant
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id.endswith("CHANNEL"):
                        found.append(f"{name}:{node.lineno} {target.id} = {node.value.value!r}")
    assert found == [], "\n".join(found)
