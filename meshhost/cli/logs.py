"""What ``meshhost up`` shows: log lines (stdlib logging, on stderr) and event lines.

Levels: the host's own loggers (``meshhost.*``) log at WARNING by default,
actors (``meshhost.actor``: console and ``wasmcloud:logging`` lines) at INFO,
since an actor's log is its author's output. ``-v`` shows the host's INFO
lines and its internal events (directory entries changing), ``-vv`` DEBUG;
``-q`` only warnings and errors, and only the events that need a person
(started, stopped, failures, dead members). ``--log-level LEVEL`` sets one
level for the host and its actors. Other libraries log at WARNING unless the
level asked is DEBUG.

Every text line starts with the host's short id (:func:`meshhost.identity.short_id`)
so the lines of several hosts in one terminal can be told apart;
``--log-format json`` writes one JSON object per line instead: ``time`` (UTC,
ISO 8601), ``level``, ``host`` (the full id), ``logger``, ``message`` and
``fields`` (what the code passed as ``extra``, e.g. ``actor_id``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from meshhost.identity import short_id

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
ACTOR_LOGGER = "meshhost.actor"

INTERNAL_EVENTS = frozenset({"entry_changed", "actors_changed", "host_state_removed"})
"""Directory bookkeeping: shown with -v (or a level of info or below)."""
QUIET_EVENTS = frozenset(
    {
        "started",
        "worker",
        "stopped",
        "leaving",
        "dead",
        "misbehaved",
        "reload_failed",
        "status_failed",
        "reconcile_failed",
        "join_trouble",
    }
)
"""The events -q still shows: they need a person."""

# Attributes every LogRecord has; anything else came from ``extra=`` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "host",
    "host_id",
    "taskName",
}


@dataclass(frozen=True, slots=True)
class Verbosity:
    """What to show: levels of the host's and the actors' loggers, and which events."""

    host_level: int = logging.WARNING
    actor_level: int = logging.INFO
    quiet: bool = False

    @classmethod
    def from_flags(cls, quiet: bool, verbose: int, log_level: str | None) -> Verbosity:
        """From ``-q``, ``-v`` (counted) and ``--log-level``; the caller refuses combinations."""
        if log_level is not None:
            level = LEVELS[log_level]
            return cls(level, level, quiet=level >= logging.ERROR)
        if quiet:
            return cls(logging.WARNING, logging.WARNING, quiet=True)
        if verbose >= 2:
            return cls(logging.DEBUG, logging.DEBUG)
        if verbose == 1:
            return cls(logging.INFO, logging.INFO)
        return cls()

    def shows_event(self, kind: str) -> bool:
        """True when an event line of ``kind`` is printed at this verbosity."""
        if kind in INTERNAL_EVENTS:
            return self.host_level <= logging.INFO
        return not self.quiet or kind in QUIET_EVENTS


class HostTag(logging.Filter):
    """Adds ``host`` (short id) and ``host_id`` (full) to every record it passes.

    The id is known only once the host's key is loaded; until then it is ``-``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.host_id = ""

    @property
    def short(self) -> str:
        return short_id(self.host_id) if self.host_id else "-"

    def filter(self, record: logging.LogRecord) -> bool:
        record.host = self.short
        record.host_id = self.host_id or None
        return True


class TextFormatter(logging.Formatter):
    """``NBX4ABCD2EFG… 12:00:01 WARNING meshhost.host: message`` (UTC time); before the
    host's key is loaded (a config warning) the line has no host part."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        # Set on the instance: as a class attribute a plain function would be a method.
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        host = getattr(record, "host", "-")
        return text if host == "-" else f"{host} {text}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, host, logger, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: _plain(v) for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return json.dumps(
            {
                "time": f"{stamp}.{int(record.msecs):03d}Z",
                "level": record.levelname.lower(),
                "host": getattr(record, "host_id", None),
                "logger": record.name,
                "message": record.getMessage(),
                "fields": fields,
            },
            sort_keys=True,
        )


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that goes quiet when its reader is gone (``up 2>&1 | head``)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            return
        super().handleError(record)


@contextlib.contextmanager
def logging_to(
    verbosity: Verbosity, log_format: str, stream: IO[str] | None = None
) -> Iterator[HostTag]:
    """Send log records to ``stream`` (default stderr) at ``verbosity`` while the
    block runs; yields the filter whose ``host_id`` the caller sets once the host's
    key is loaded. Handlers and levels are put back afterwards."""
    tag = HostTag()
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.addFilter(tag)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    loggers = [logging.getLogger(), logging.getLogger("meshhost"), logging.getLogger(ACTOR_LOGGER)]
    saved = [logger.level for logger in loggers]
    root, host, actor = loggers
    root.addHandler(handler)
    # Other libraries (zeroconf, hypercorn, trio) are noisy below WARNING: only for debug.
    root.setLevel(logging.DEBUG if verbosity.host_level <= logging.DEBUG else logging.WARNING)
    host.setLevel(verbosity.host_level)
    actor.setLevel(verbosity.actor_level)
    try:
        yield tag
    finally:
        root.removeHandler(handler)
        for logger, level in zip(loggers, saved, strict=True):
            logger.setLevel(level)
