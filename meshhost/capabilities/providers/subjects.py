"""NATS subject rules, as wasmCloud's messaging contract inherited them.  Pure functions.

A subject is dot-separated non-empty tokens without whitespace
(``orders.eu.created``).  A subscription pattern may use ``*`` for exactly
one token and ``>`` for one or more trailing tokens (only as the last
token): ``orders.*.created`` and ``orders.>`` both match the subject above;
``orders.>`` does not match ``orders``.
"""

from __future__ import annotations

__all__ = ["MAX_SUBJECT_BYTES", "matches", "parse_pattern", "validate_subject"]

MAX_SUBJECT_BYTES = 1024
"""Longer subjects are refused (NATS servers refuse far shorter control lines in practice)."""


def _tokens(text: str, what: str) -> list[str]:
    if not text:
        raise ValueError(f"{what} is empty")
    if len(text.encode("utf-8")) > MAX_SUBJECT_BYTES:
        raise ValueError(f"{what} is longer than {MAX_SUBJECT_BYTES} bytes")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"{what} {text!r} contains whitespace")
    tokens = text.split(".")
    if any(not token for token in tokens):
        raise ValueError(f"{what} {text!r} has an empty token")
    return tokens


def validate_subject(subject: str) -> None:
    """Raise ValueError unless ``subject`` is a publishable subject (no wildcards)."""
    for token in _tokens(subject, "subject"):
        if token in ("*", ">"):
            raise ValueError(f"subject {subject!r} contains a wildcard; only subscriptions may")


def parse_pattern(pattern: str) -> tuple[str, ...]:
    """Validate a subscription pattern and return its tokens; raises ValueError."""
    tokens = _tokens(pattern, "subscription")
    for i, token in enumerate(tokens):
        if token == ">" and i != len(tokens) - 1:
            raise ValueError(f"subscription {pattern!r}: '>' may only be the last token")
        if token not in ("*", ">") and ("*" in token or ">" in token):
            raise ValueError(f"subscription {pattern!r}: wildcards must be whole tokens")
    return tuple(tokens)


def matches(pattern: tuple[str, ...], subject: str) -> bool:
    """True if subject (already valid) matches the parsed pattern."""
    tokens = subject.split(".")
    for i, want in enumerate(pattern):
        if want == ">":
            return len(tokens) > i
        if i >= len(tokens):
            return False
        if want != "*" and want != tokens[i]:
            return False
    return len(tokens) == len(pattern)
