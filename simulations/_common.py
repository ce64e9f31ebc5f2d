"""Shared helpers for the scenario scripts: argument parsing and Markdown tables.

Every script prints its figures (virtual seconds and counts) to stdout, which
is a pure function of its arguments: the same seeds give byte-identical
output.  Wall-clock time is noise, so it goes to stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def whole(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def whole_list(minimum: int) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated whole numbers, each >= ``minimum``."""
    one = whole(minimum)

    def parse(text: str) -> list[int]:
        return [one(part.strip()) for part in text.split(",")]

    return parse


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def percents(text: str) -> list[float]:
    """An argparse type: comma-separated percentages in [0, 100), as fractions."""
    values = []
    for part in text.split(","):
        try:
            value = float(part.strip().removesuffix("%"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a percentage, got {part!r}") from None
        if not 0 <= value < 100:
            raise argparse.ArgumentTypeError(f"a loss must be in [0, 100) %, got {part}")
        values.append(value / 100)
    return values


def parser(description: str, seeds: int | None = 3) -> argparse.ArgumentParser:
    """A parser showing ``description`` as written; with ``--seeds`` unless ``seeds`` is None."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if seeds is not None:
        p.add_argument(
            "--seeds",
            type=whole(1),
            default=seeds,
            help=f"runs per row, seeds BASE .. BASE+N-1 (default {seeds})",
        )
    p.add_argument(
        "--seed-base",
        type=whole(0),  # random.Random(-s) is random.Random(s): -s would repeat s
        default=1,
        help="first seed, >= 0 (default 1); the same seeds print the same figures",
    )
    return p


def seed_range(args: argparse.Namespace) -> range:
    return range(args.seed_base, args.seed_base + args.seeds)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return "inf" if v == float("inf") else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def report_wall(started: float) -> None:
    """Wall-clock time on stderr (it differs run to run; stdout does not)."""
    print(f"wall: {time.perf_counter() - started:.2f} s", file=sys.stderr)
