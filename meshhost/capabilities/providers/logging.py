"""``wasmcloud:builtin:logging``: an actor's ``Logging.WriteLog`` to Python logging.

Input ``LogEntry {level, text}``; no output (empty answer).  Levels are
wasmCloud's ``debug``, ``info``, ``warn``, ``error`` (``trace`` and
``warning`` are accepted too; anything else logs at INFO).  Records go to the
``meshhost.actor`` logger with the actor's name and key.  Like wasmCloud 0.x,
this contract needs the claim but no link definition (see policy.py).
"""

from __future__ import annotations

import logging
from typing import ClassVar

from meshhost.capabilities.contracts import LOGGING, LogEntry
from meshhost.capabilities.providers.base import CallContext, Provider

__all__ = ["MAX_LOG_TEXT_CHARS", "LoggingProvider"]

MAX_LOG_TEXT_CHARS = 16 * 1024
"""Longer texts are cut, so one actor cannot flood the host's log."""

_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class LoggingProvider(Provider):
    contract_id = LOGGING
    OPERATIONS: ClassVar[dict[str, str]] = {"Logging.WriteLog": "write_log"}

    def __init__(self, logger: logging.Logger | None = None) -> None:
        super().__init__()
        self.logger = logger or logging.getLogger("meshhost.actor")

    def write_log(self, ctx: CallContext, payload: bytes) -> bytes:
        entry = LogEntry.decode(payload)
        text = entry.text
        if len(text) > MAX_LOG_TEXT_CHARS:
            text = text[:MAX_LOG_TEXT_CHARS] + "… (truncated)"
        level = _LEVELS.get(entry.level.strip().lower(), logging.INFO)
        self.logger.log(
            level,
            "[%s %s] %s",
            ctx.actor.name,
            ctx.actor.actor_id[:8],
            text,
            extra={"actor_id": ctx.actor.actor_id, "actor_name": ctx.actor.name},
        )
        return b""
