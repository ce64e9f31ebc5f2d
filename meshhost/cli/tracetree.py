"""A ``trace`` op's answer drawn as one tree per trace (``meshhost trace`` and
``meshhost call --trace`` both print with it)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from meshhost.cli.output import stdout
from meshhost.identity import short_id
from meshhost.monitor.spans import span_from_dict
from meshhost.monitor.tracing import SpanNode, build_tree

__all__ = ["print_traces"]

MAX_PIPED_WIDTH = 1000
"""Columns a tree may take when written to a pipe or a file (no terminal to fit)."""
_KIND_STYLE = {"client": "cyan", "server": "green", "internal": "magenta"}


def _label(node: SpanNode, origin_ns: int) -> Text:
    span = node.span
    attrs = dict(span.attributes)
    text = Text()
    text.append(span.name, style="bold")
    actor = attrs.get("actor", "")
    if actor and span.kind != "internal":
        text.append(f" {actor[:12]}{'…' if len(actor) > 12 else ''}", style="dim")
    if span.status != "ok":  # before the figures: a narrow terminal cuts the line's end
        text.append(f"  {span.status}", style="bold red")
    text.append(f"  [{span.kind} on {short_id(span.host)}]", style=_KIND_STYLE.get(span.kind, ""))
    text.append(f"  {span.duration_ms:.2f} ms", style="yellow")
    text.append(f"  +{(span.start_ns - origin_ns) / 1e6:.2f} ms", style="dim")
    return text


def _add(tree: Tree, node: SpanNode, origin_ns: int) -> None:
    branch = tree.add(_label(node, origin_ns))
    for child in node.children:
        _add(branch, child, origin_ns)


def _print_tree(tree: Tree) -> None:
    """To a terminal as rich draws it (cut at its width); to a pipe or a file whole.

    rich crops a tree's lines at the console's width, 80 without a terminal, which
    cut each deep hop's host, time and offset from a saved or grepped trace.
    """
    if stdout.is_terminal:
        stdout.print(tree)
        return
    out = io.StringIO()
    Console(file=out, width=MAX_PIPED_WIDTH, color_system=None, soft_wrap=True).print(tree)
    text = "\n".join(line.rstrip() for line in out.getvalue().splitlines())
    stdout.print(text, markup=False, highlight=False)


def print_traces(result: dict[str, Any]) -> None:
    """Print the ``trace`` op's answer as one rich tree per trace."""
    for entry in result["traces"]:
        spans = [span_from_dict(s) for s in entry["spans"]]
        hosts = sorted({s.host for s in spans})
        tree = Tree(
            Text.assemble(
                ("trace ", "bold"),
                (entry["trace_id"], "bold blue"),
                (f"  {len(spans)} spans on {len(hosts)} hosts", "dim"),
            )
        )
        if not spans:
            tree.add(
                Text(
                    "no host has spans of this trace (they keep the most recent only)", style="dim"
                )
            )
        origin = min((s.start_ns for s in spans), default=0)
        for root in build_tree(spans):
            _add(tree, root, origin)
        _print_tree(tree)
        # A hop whose host has died since: its client span names it, its own spans are gone.
        gone = sorted(
            {dict(s.attributes).get("answered_by", "") for s in spans}
            - set(hosts)
            - set(result.get("hosts") or [])
            - {""}
        )
        if gone:
            names = ", ".join(short_id(h) for h in gone)
            stdout.print(
                f"[yellow]{names} answered calls of this trace but is no longer a "
                "live member: its spans are missing[/]"
            )
    if result.get("unanswered"):
        names = ", ".join(short_id(h) for h in result["unanswered"])
        stdout.print(f"[yellow]no answer from {names}: their spans are missing[/]")
