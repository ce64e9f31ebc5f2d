"""``wasmcloud:builtin:logging``: an actor's ``Logging.WriteLog`` to Python logging.

Input ``LogEntry {level, text}``; no output (empty answer).  Levels are
wasmCloud's ``debug``, ``info``, ``warn``, ``error`` (``trace``,
``warning`` and ``critical`` are accepted too; anything else logs at INFO),
the same names as a guest's ``__console_log`` (:func:`log_actor_line`).  Records go to the
``meshhost.actor`` logger with the actor's name and key.  Like wasmCloud 0.x,
this contract needs the claim but no link definition (see policy.py).

The older generations' ``WriteLog`` is served too (``legacy.py``): waSCC's
``wascc:logging`` ``WriteLogRequest {level: u32, body}`` (0 = OFF, not
logged, 1 ERROR … 5 TRACE) and wasmCloud 0.1x's ``wasmcloud:logging``
``{target, level, text}``; those two contracts need a link, as in their
hosts, where logging was a provider like any other.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from meshhost.capabilities import legacy as lg
from meshhost.capabilities.contracts import LOGGING, LogEntry
from meshhost.capabilities.policy import ActorIdentity
from meshhost.capabilities.providers.base import CallContext, Provider

__all__ = ["GUEST_LOG_LEVELS", "MAX_LOG_TEXT_CHARS", "LoggingProvider", "log_actor_line"]

MAX_LOG_TEXT_CHARS = 16 * 1024
"""Longer texts are cut, so one actor cannot flood the host's log."""

GUEST_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
"""Python logging level of a guest's level name (lower case); any other name logs at INFO."""


def log_actor_line(
    logger: logging.Logger, actor: ActorIdentity, level_name: str, text: str
) -> None:
    """Log one line an actor wrote (``WriteLog`` or ``__console_log``) under its name
    and key, at the level its level name says, cut at ``MAX_LOG_TEXT_CHARS``."""
    if len(text) > MAX_LOG_TEXT_CHARS:
        text = text[:MAX_LOG_TEXT_CHARS] + "… (truncated)"
    logger.log(
        GUEST_LOG_LEVELS.get(level_name.strip().lower(), logging.INFO),
        "[%s %s] %s",
        actor.name,
        actor.actor_id[:8],
        text,
        extra={"actor_id": actor.actor_id, "actor_name": actor.name},
    )


class LoggingProvider(Provider):
    contract_id = LOGGING
    CONTRACT_ALIASES = (lg.WASCC_LOGGING, lg.WASMCLOUD_LOGGING)
    OPERATIONS: ClassVar[dict[str, str]] = {
        "Logging.WriteLog": "write_log",
        "WriteLog": "legacy_write_log",
    }

    def __init__(self, logger: logging.Logger | None = None) -> None:
        super().__init__()
        self.logger = logger or logging.getLogger("meshhost.actor")

    def write_log(self, ctx: CallContext, payload: bytes) -> bytes:
        entry = LogEntry.decode(payload)
        self._log(ctx, entry.level, entry.text)
        return b""

    def legacy_write_log(self, ctx: CallContext, payload: bytes) -> bytes:
        """``WriteLog`` of waSCC (numeric level, ``body``) or wasmCloud 0.1x (``text``)."""
        what = f"{ctx.link.contract_id} "
        if lg.generation_of(ctx.link.contract_id) == "wascc":
            req = lg.Shape(what + lg.WASCC_WRITE_LOG.name, lg.WASCC_WRITE_LOG.fields).decode(
                payload
            )
            level = lg.WASCC_LOG_LEVELS.get(req["level"], "info")
            if level is not None:
                self._log(ctx, level, req["body"])
        else:
            args = lg.Shape(
                what + lg.WASMCLOUD_WRITE_LOG.name, lg.WASMCLOUD_WRITE_LOG.fields
            ).decode(payload)
            self._log(ctx, args["level"], args["text"])
        return b""

    def _log(self, ctx: CallContext, level_name: str, text: str) -> None:
        log_actor_line(self.logger, ctx.actor, level_name, text)
