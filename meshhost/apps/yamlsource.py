"""YAML (and JSON) text to a tree of nodes that remember their line and column.

Manifest errors must point at the exact place a person got wrong, which
``yaml.safe_load`` forgets. We therefore ``yaml.compose`` the document (the
safe loader's node graph, no Python objects built from tags) and convert it
to :class:`Node` values carrying 1-based line/column, with every limit checked
while walking so hostile input cannot blow up memory or recursion:

* the text is bounded in bytes before YAML sees it (:data:`MAX_MANIFEST_BYTES`);
* aliases are expanded, but the expanded tree is bounded in nodes and depth
  (the "billion laughs" document fails fast instead of exhausting memory);
* duplicate mapping keys, which PyYAML silently lets the last one win, are an
  error: a person who wrote ``name`` twice meant one of them;
* tabs used for indentation get their own message instead of PyYAML's cryptic
  "found character '\\t' that cannot start any token".

Only YAML core scalar types survive (str, int, float, bool, null); anything
else (timestamps, binary, custom ``!tags``) is kept as its raw text with its
tag name so the validator can refuse it with a type error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
import yaml.constructor

from meshhost.errors import ManifestError, ManifestTooLarge

__all__ = [
    "MAX_DEPTH",
    "MAX_MANIFEST_BYTES",
    "MAX_NODES",
    "Node",
    "compose_text",
    "from_python",
]

MAX_MANIFEST_BYTES = 64 * 1024
"""Largest manifest accepted. Manifests are stored lattice-wide in the directory and
spread by gossip and push-pull; real wadm manifests are 1-3 KiB."""
MAX_DEPTH = 24
"""Deepest nesting accepted. A manifest is 7 levels deep; more is a mistake or an attack."""
MAX_NODES = 20_000
"""Most nodes after expanding aliases (bounds the alias "billion laughs" blow-up)."""

_TAG_NAMES = {
    "tag:yaml.org,2002:str": "str",
    "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:null": "null",
}
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass(frozen=True, slots=True)
class Node:
    """One YAML node with its position.

    ``kind`` is ``"map"`` (``value`` is a tuple of ``(key Node, value Node)``
    pairs in file order), ``"seq"`` (tuple of Nodes) or ``"scalar"`` (``value``
    is the Python value for str/int/float/bool/null, else the raw text).
    ``tag`` is one of str, int, float, bool, null, or the YAML tag for others.
    ``raw`` is the scalar exactly as written (``8080`` for the int 8080), used
    where wadm accepted any scalar as a string. ``line``/``column`` are
    1-based; 0 when the node came from JSON without positions.
    """

    kind: str
    value: Any
    tag: str
    raw: str
    line: int
    column: int

    def type_name(self) -> str:
        """A person's word for this node's type ("a mapping", "a list", "an integer", ...)."""
        if self.kind == "map":
            return "a mapping"
        if self.kind == "seq":
            return "a list"
        return {
            "str": "a string",
            "int": "an integer",
            "float": "a number with a fraction",
            "bool": "a boolean",
            "null": "nothing (null)",
        }.get(self.tag, f"a {self.tag} value")


def _check_text(data: bytes | str, source: str) -> str:
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(
            f"the manifest is {size} bytes; the limit is {MAX_MANIFEST_BYTES} bytes "
            "(split it into several applications)",
            source=source,
        )
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise ManifestError(
                "the file is not UTF-8 text (save it as UTF-8)",
                source=source,
                line=line,
                column=column,
            ) from None
    else:
        text = data.removeprefix("\ufeff")
    for number, line_text in enumerate(text.splitlines(), start=1):
        stripped = line_text.lstrip(" ")
        if stripped.startswith("\t"):
            raise ManifestError(
                "a tab is used for indentation; YAML indents with spaces only",
                source=source,
                line=number,
                column=len(line_text) - len(stripped) + 1,
            )
    return text


def compose_text(data: bytes | str, source: str = "<manifest>") -> Node:
    """Parse one YAML document into a :class:`Node` tree.

    Raises :class:`ManifestError` (with the position) for syntax errors, tab
    indentation, non-UTF-8 bytes, an empty file, several documents, duplicate
    keys, and depth/node limits; :class:`ManifestTooLarge` over the size limit.
    """
    text = _check_text(data, source)
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}, {exc.problem}"
        raise ManifestError(
            f"invalid YAML: {problem}",
            source=source,
            line=mark.line + 1 if mark else 0,
            column=mark.column + 1 if mark else 0,
        ) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        raise ManifestError(f"invalid YAML: {exc}", source=source) from None
    except RecursionError:  # PyYAML recurses per level: "[[[[…" fails before our depth check
        raise ManifestError(
            f"values are nested more than {MAX_DEPTH} levels deep", source=source
        ) from None
    documents = [d for d in documents if d is not None]
    if not documents:
        raise ManifestError("the manifest is empty", source=source, line=1, column=1)
    if len(documents) > 1:
        second = documents[1].start_mark
        lines = text.splitlines()
        starts = [n for n in range(second.line, -1, -1) if n < len(lines)]
        separator = next((n for n in starts if lines[n].startswith("---")), second.line)
        raise ManifestError(
            f"found {len(documents)} YAML documents; a manifest file holds exactly one "
            "application (remove the extra '---' section)",
            source=source,
            line=separator + 1,
            column=1,
        )
    return _Converter(source).convert(documents[0], 1)


class _Converter:
    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = 0

    def convert(self, node: yaml.Node, depth: int) -> Node:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ManifestTooLarge(
                f"the manifest expands to more than {MAX_NODES} values (too many aliases?)",
                source=self.source,
                line=line,
                column=column,
            )
        if depth > MAX_DEPTH:
            raise ManifestError(
                f"values are nested more than {MAX_DEPTH} levels deep",
                source=self.source,
                line=line,
                column=column,
            )
        if isinstance(node, yaml.MappingNode):
            pairs = []
            seen: dict[tuple[str, str], int] = {}
            for key_node, value_node in node.value:
                key = self.convert(key_node, depth + 1)
                if key.kind == "scalar":
                    ident = (key.tag, key.raw)
                    if ident in seen:
                        raise ManifestError(
                            f"duplicate key {key.raw!r} (first given on line {seen[ident]}); "
                            "remove one of them",
                            source=self.source,
                            line=key.line,
                            column=key.column,
                        )
                    seen[ident] = key.line
                pairs.append((key, self.convert(value_node, depth + 1)))
            return Node("map", tuple(pairs), "map", "", line, column)
        if isinstance(node, yaml.SequenceNode):
            items = tuple(self.convert(item, depth + 1) for item in node.value)
            return Node("seq", items, "seq", "", line, column)
        tag = _TAG_NAMES.get(node.tag, node.tag.rsplit(":", 1)[-1])
        value: Any = node.value
        if tag in ("int", "float", "bool", "null"):
            try:
                value = _CONSTRUCTOR.construct_object(node)
            except (ValueError, yaml.YAMLError):  # e.g. absurd sexagesimal text
                tag, value = "str", node.value
        return Node("scalar", value, tag, str(node.value), line, column)


def from_python(value: Any, depth: int = 1) -> Node:
    """Wrap plain JSON-like data (from a stored manifest) as position-less Nodes.

    Raises :class:`ManifestError` for types JSON cannot hold or excessive depth.
    """
    if depth > MAX_DEPTH:
        raise ManifestError(f"values are nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        pairs = tuple(
            (from_python(k, depth + 1), from_python(v, depth + 1)) for k, v in value.items()
        )
        return Node("map", pairs, "map", "", 0, 0)
    if isinstance(value, list):
        return Node("seq", tuple(from_python(v, depth + 1) for v in value), "seq", "", 0, 0)
    if value is None:
        return Node("scalar", None, "null", "null", 0, 0)
    if isinstance(value, bool):
        return Node("scalar", value, "bool", "true" if value else "false", 0, 0)
    if isinstance(value, int):
        return Node("scalar", value, "int", str(value), 0, 0)
    if isinstance(value, float):
        return Node("scalar", value, "float", json.dumps(value), 0, 0)
    if isinstance(value, str):
        return Node("scalar", value, "str", value, 0, 0)
    raise ManifestError(f"unexpected value of type {type(value).__name__}")
