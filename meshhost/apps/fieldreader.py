"""Typed reading of a YAML node tree, failing at the line and column.

:class:`FieldReader` is what the manifest validator builds on: it reads a
:class:`~meshhost.apps.yamlsource.Node` as a mapping with known keys, text,
a bounded whole number, a string map or a list, and on the first problem
raises :class:`~meshhost.errors.ManifestError` naming ``file:line:column``,
the field path and what to do (with "did you mean" for a near-miss key).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import NoReturn

from meshhost.apps.model import MAX_LABEL_CHARS, MAX_MAP_ITEMS, MAX_TEXT_CHARS, Pairs
from meshhost.apps.yamlsource import Node
from meshhost.errors import ManifestError

__all__ = ["FieldReader", "suggest"]

PLAIN_SCALARS = frozenset({"int", "float", "bool", "timestamp"})
"""Unquoted scalars taken as written where text is expected (``PORT: 8080``,
``version: 1.10``, ``version: 2024-05-01``), as wadm 0.x (serde_yaml 0.8) did."""


def suggest(word: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class FieldReader:
    """Reads typed fields off a node tree of ``source``; the first problem raises."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.key_of: dict[int, Node] = {}
        """The key node that introduced each value node read by :meth:`fields`."""

    def fail(self, node: Node | None, path: str, problem: str) -> NoReturn:
        # A problem with a whole mapping or list is reported at the key that
        # introduces it ("spread:"), which is where a person looks, not at
        # its first item.
        if node is not None and node.kind != "scalar" and id(node) in self.key_of:
            node = self.key_of[id(node)]
        raise ManifestError(
            problem,
            source=self.source,
            line=node.line if node else 0,
            column=node.column if node else 0,
            field=path,
        )

    def fields(
        self,
        node: Node,
        path: str,
        *,
        required: tuple[str, ...] = (),
        optional: tuple[str, ...] = (),
        hints: Mapping[str, str] | None = None,
        what: str = "",
    ) -> dict[str, Node]:
        """Check ``node`` is a mapping with exactly known string keys; return values by key.

        A key with nothing after it (``properties:`` then no fields) counts as
        an empty mapping, so the message names the missing field.
        """
        if node.kind == "scalar" and node.tag == "null" and id(node) in self.key_of:
            for name in required:
                self.fail(
                    self.key_of[id(node)],
                    f"{path}.{name}" if path else name,
                    f"required field {name!r} is missing",
                )
            return {}
        if node.kind != "map":
            self.fail(node, path, f"expected a mapping{what}, got {node.type_name()}")
        known = list(required + optional)
        result: dict[str, Node] = {}
        for key, value in node.value:
            if key.kind != "scalar" or key.tag != "str":
                if key.tag == "merge":
                    self.fail(
                        key, path, "YAML merge keys ('<<') are not supported; write the fields out"
                    )
                self.fail(key, path, f"keys must be text, got {key.type_name()}")
            name = key.value
            child = f"{path}.{name}" if path else name
            if hints and name in hints:
                self.fail(key, child, hints[name])
            if name not in known:
                allowed = ", ".join(known)
                self.fail(
                    key,
                    child,
                    f"unknown field {name!r}{suggest(name, known)}"
                    + ("" if suggest(name, known) else f" (allowed here: {allowed})"),
                )
            result[name] = value
            self.key_of[id(value)] = key
        for name in required:
            if name not in result:
                self.fail(
                    node, f"{path}.{name}" if path else name, f"required field {name!r} is missing"
                )
        return result

    def text(
        self,
        node: Node,
        path: str,
        *,
        scalar_ok: bool = False,
        limit: int = MAX_TEXT_CHARS,
        what: str = "text",
    ) -> str:
        """A string. ``scalar_ok`` also takes numbers/booleans as written (wadm 0.x did)."""
        if node.kind == "scalar" and node.tag == "str":
            value = str(node.value)
        elif scalar_ok and node.kind == "scalar" and node.tag in PLAIN_SCALARS:
            value = node.raw
        else:
            self.fail(node, path, f"expected {what}, got {node.type_name()}")
        if len(value) > limit:
            self.fail(node, path, f"is {len(value)} characters long; the limit is {limit}")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                # A JSON or YAML escape such as "\ud800" decodes to a lone surrogate, which
                # no UTF-8 text holds: canonical bytes and placement hashes could not be made.
                self.fail(
                    node,
                    path,
                    "holds a lone surrogate escape (like \\ud800), which is not Unicode "
                    "text; write the character itself or remove the escape",
                )
        return value

    def integer(self, node: Node, path: str, low: int, high: int, what: str) -> int:
        if node.kind != "scalar" or node.tag != "int" or isinstance(node.value, bool):
            extra = ""
            if node.kind == "scalar" and node.tag == "str" and node.value.strip().isdigit():
                extra = f" (write {node.value.strip()} without quotes)"
            self.fail(node, path, f"{what} must be a whole number, got {node.type_name()}{extra}")
        value = int(node.value)
        if value < low:
            self.fail(node, path, f"{what} must be at least {low}, got {value}")
        if value > high:
            self.fail(node, path, f"{what} must be at most {high}, got {value}")
        return value

    def string_map(
        self,
        node: Node,
        path: str,
        what: str,
        *,
        key_limit: int = MAX_LABEL_CHARS,
        value_limit: int = MAX_TEXT_CHARS,
    ) -> Pairs:
        """A mapping of text to text (numbers/booleans taken as written), sorted by key."""
        if node.kind == "scalar" and node.tag == "null":
            return ()
        if node.kind != "map":
            self.fail(
                node, path, f"{what} must be a mapping of names to values, got {node.type_name()}"
            )
        if len(node.value) > MAX_MAP_ITEMS:
            self.fail(
                node, path, f"{what} has {len(node.value)} entries; the limit is {MAX_MAP_ITEMS}"
            )
        pairs = []
        for key, value in node.value:
            key_text = self.text(key, path, scalar_ok=True, limit=key_limit, what="a text key")
            if not key_text:
                self.fail(key, path, "keys must not be empty")
            child = f"{path}.{key_text}"
            if value.kind != "scalar" or value.tag == "null":
                self.fail(
                    value,
                    child,
                    f"{what} values must be text, got {value.type_name()}"
                    + (' (quote it: "...")' if value.tag == "null" else ""),
                )
            pairs.append((key_text, self.text(value, child, scalar_ok=True, limit=value_limit)))
        return tuple(sorted(pairs))

    def sequence(self, node: Node, path: str, what: str, limit: int) -> tuple[Node, ...]:
        if node.kind == "scalar" and node.tag == "null":
            return ()
        if node.kind != "seq":
            self.fail(
                node, path, f"{what} must be a list (items start with '- '), got {node.type_name()}"
            )
        if len(node.value) > limit:
            self.fail(node, path, f"{what} has {len(node.value)} items; the limit is {limit}")
        return tuple(node.value)
