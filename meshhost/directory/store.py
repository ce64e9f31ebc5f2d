"""Durable storage of the lattice-wide LWW entries (links, config, manifests).

The format is a write-ahead log of JSON lines in ``<data dir>/directory/``,
file ``lww.jsonl`` (``proto/spec/directory.md``):

* line 1, a header: ``{"format": "meshhost-directory-lww", "version": 1}``;
* then one entry per line: ``{"ns", "key", "stamp", "writer", "value"}`` where
  ``stamp`` is the packed 64-bit HLC value, ``writer`` the host id in the
  stamp, and ``value`` the base64 of the msgpack-encoded value, or ``null``
  for a tombstone.

Loading replays the lines through the LWW merge, so their order does not
matter and a line written twice is harmless.  :meth:`FileStore.append`
returns only after ``fsync``, or, with a :class:`~meshhost.diskwriter.DiskWriter`
(a serving host), queues the write for the writer thread: whoever
acknowledges the write waits for it there first, so a write acknowledged to
a caller survives a power cut.  Entries learnt from peers are written by the
writer without anyone waiting: as before, they were never acknowledged to
anyone, and a host that loses them learns them again from its peers.  A
crash can tear only the last line; loading drops a torn last line (it was
never acknowledged) and cuts it off the file.  Compaction writes the live
set to a temporary file, fsyncs it and renames it over the log, so a crash
leaves either the old or the new file.

This module does file IO; the directory core only sees the small
:class:`EntryStore` protocol, so the simulator uses :class:`MemoryStore`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from meshhost.datadir import make_private_dir, replace_atomically
from meshhost.directory.codec import LwwEntry, decode_value, encode_value
from meshhost.directory.hlc import Stamp
from meshhost.errors import (
    DecodeError,
    DirectoryDecodeError,
    DirectoryStoreCorrupt,
    DirectoryStoreFailed,
)

if TYPE_CHECKING:  # the CLI reads this module without loading trio
    from meshhost.diskwriter import DiskWriter

__all__ = ["COMPACT_MIN_RECORDS", "LOG_NAME", "EntryStore", "FileStore", "MemoryStore"]

log = logging.getLogger(__name__)

LOG_NAME = "lww.jsonl"
FORMAT = "meshhost-directory-lww"
FORMAT_VERSION = 1
COMPACT_MIN_RECORDS = 1000
"""Never compact a log shorter than this: rewriting small files buys nothing."""


class EntryStore(Protocol):
    """Where the directory keeps LWW entries across restarts."""

    def load(self) -> list[LwwEntry]:
        """Every entry stored, in write order (duplicates possible)."""
        ...

    def append(self, entries: Sequence[LwwEntry]) -> None:
        """Store entries durably; returns only once they would survive a crash.

        Raises DirectoryStoreFailed (nothing stored) when the disk refuses.
        """
        ...

    def compact(self, entries: Iterable[LwwEntry]) -> None:
        """Replace the stored entries by ``entries`` atomically.

        Raises DirectoryStoreFailed (the old entries stay) when the disk refuses.
        """
        ...

    def needs_compaction(self, live_entries: int) -> bool:
        """True when the log holds many more records than ``live_entries``."""
        ...


class MemoryStore:
    """An EntryStore in memory: for the simulator and tests of "restart with disk"."""

    def __init__(self) -> None:
        self.records: list[LwwEntry] = []
        self.appends = 0

    def load(self) -> list[LwwEntry]:
        return list(self.records)

    def append(self, entries: Sequence[LwwEntry]) -> None:
        self.records.extend(entries)
        self.appends += 1

    def compact(self, entries: Iterable[LwwEntry]) -> None:
        self.records = list(entries)

    def needs_compaction(self, live_entries: int) -> bool:
        return len(self.records) > max(COMPACT_MIN_RECORDS, 2 * live_entries)


def entry_to_json(entry: LwwEntry) -> str:
    """One log line (without the newline)."""
    value = None if entry.value is None else base64.b64encode(encode_value(entry.value)).decode()
    record = {
        "ns": entry.ns,
        "key": entry.key,
        "stamp": entry.stamp.packed(),
        "writer": entry.stamp.node,
        "value": value,
    }
    if entry.auth is not None:  # only signed entries (a lattice with admins) have it
        record["auth"] = {"key": entry.auth[0], "sig": base64.b64encode(entry.auth[1]).decode()}
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _auth_from_json(raw: Any) -> tuple[str, bytes] | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("key"), str)
        or not isinstance(raw.get("sig"), str)
    ):
        raise ValueError("auth must be {key, sig} text")
    try:
        sig = base64.b64decode(raw["sig"], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"auth sig is not base64: {exc}") from None
    if len(sig) != 64:
        raise ValueError("auth sig must be 64 bytes")
    return raw["key"], sig


def entry_from_json(line: str) -> LwwEntry:
    """Parse one log line; raises ValueError (with a reason) when malformed."""
    record: Any = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    ns, key, writer, value = (
        record.get("ns"),
        record.get("key"),
        record.get("writer"),
        record.get("value"),
    )
    if not isinstance(ns, str) or not isinstance(key, str):
        raise ValueError("ns and key must be strings")
    try:
        stamp = Stamp.unpack(record.get("stamp"), writer)
    except DecodeError as exc:
        raise ValueError(str(exc)) from None
    auth = _auth_from_json(record.get("auth"))
    if value is None:
        return LwwEntry(ns, key, stamp, None, auth)
    if not isinstance(value, str):
        raise ValueError("value must be base64 text or null")
    try:
        decoded = decode_value(base64.b64decode(value, validate=True), "stored value")
    except (binascii.Error, DirectoryDecodeError) as exc:
        raise ValueError(f"value does not decode: {exc}") from None
    if decoded is None:
        raise ValueError("value encodes nil; tombstones are written as null")
    return LwwEntry(ns, key, stamp, decoded, auth)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """The JSON-lines log in ``directory`` (created if missing).

    Without ``writer`` :meth:`append` and :meth:`compact` write and fsync on
    the calling thread and return once durable.  With a
    :class:`~meshhost.diskwriter.DiskWriter` (a serving host) they queue the
    write and return at once; the writer thread writes, and syncs appends
    queued together with one ``fsync`` (group commit).  Whoever acknowledges
    a write waits for its ticket (the control API does, through
    ``DiskWriter.track``).  A failure is then the writer's: the waiter gets
    the DirectoryStoreFailed, and the log is cut back to its last synced
    end, so a later append never follows a partial line.
    """

    def __init__(self, directory: str | os.PathLike[str], writer: DiskWriter | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME
        self._records = 0
        self._handle: Any = None
        self._writer = writer
        self._synced_size: int | None = None
        """Size of the log at its last sync, while writes after it are not synced."""

    def load(self) -> list[LwwEntry]:
        """Read the log; raises DirectoryStoreCorrupt naming the file and line."""
        if self.directory.exists() and not self.directory.is_dir():
            raise DirectoryStoreCorrupt(
                f"{self.directory} is not a directory; move it aside so the host can keep "
                "its directory log there"
            )
        if not self.path.exists():
            self._records = 0
            return []
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise DirectoryStoreCorrupt(
                f"cannot read the directory log {self.path}: {exc.strerror}; repair it "
                "(permissions, disk) or move it aside to start with an empty directory"
            ) from None
        lines = raw.split(b"\n")
        complete = lines[:-1]  # whatever follows the last newline is a torn write
        torn = lines[-1]
        good_bytes = len(raw) - len(torn)
        entries: list[LwwEntry] = []
        for number, line in enumerate(complete, start=1):
            try:
                text = line.decode("utf-8")
                if number == 1:
                    self._check_header(text)
                    continue
                entries.append(entry_from_json(text))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                if number == len(complete) and number > 1:
                    # A whole last line that does not parse: most likely a write cut
                    # short by a crash (never acknowledged), but say so, it may not be.
                    log.warning(
                        "%s:%d: dropped the last line, which is damaged (%s)",
                        self.path,
                        number,
                        exc,
                    )
                    good_bytes -= len(line) + 1
                    break
                raise DirectoryStoreCorrupt(
                    f"{self.path}:{number}: {exc}; the directory log is damaged; move it "
                    "aside to start with an empty directory (peers will resend what they know)"
                ) from None
        if good_bytes != len(raw):
            try:
                with open(self.path, "r+b") as handle:
                    handle.truncate(good_bytes)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise DirectoryStoreCorrupt(
                    f"cannot cut the torn end off the directory log {self.path}: "
                    f"{exc.strerror or exc}; make the data dir writable"
                ) from None
        if not complete:  # empty or header torn: start afresh
            self.path.unlink()
            self._records = 0
            return []
        self._records = len(entries)
        return entries

    @staticmethod
    def _check_header(text: str) -> None:
        header = json.loads(text)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"not a meshhost directory log (no {FORMAT!r} header)")
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"directory log version {header.get('version')!r} is not supported "
                f"(this meshhost reads version {FORMAT_VERSION}); upgrade meshhost"
            )

    def _header(self) -> str:
        return json.dumps({"format": FORMAT, "version": FORMAT_VERSION}) + "\n"

    def _open(self) -> Any:
        if self._handle is None:
            make_private_dir(self.directory)
            new = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._handle = os.fdopen(fd, "ab")
            if new:
                self._handle.write(self._header().encode())
                self._handle.flush()
                os.fsync(self._handle.fileno())
                _fsync_dir(self.directory)
        return self._handle

    def append(self, entries: Sequence[LwwEntry]) -> None:
        """Store ``entries``: durable on return without a writer, queued with one.

        Raises DirectoryStoreFailed (without a writer) when the disk refuses;
        then nothing was stored.
        """
        if not entries:
            return
        data = "".join(entry_to_json(e) + "\n" for e in entries).encode()
        if self._writer is not None:
            self._records += len(entries)
            self._writer.append(self, data)
            return
        self.write(data)
        self.sync()
        self._records += len(entries)

    def write(self, data: bytes) -> None:
        """Append ``data`` to the log file, not synced yet (``AppendLog`` for the writer).

        Raises DirectoryStoreFailed, the partial write cut off, when the disk refuses.
        """
        size = None
        try:
            handle = self._open()
            size = os.fstat(handle.fileno()).st_size
            handle.write(data)
            handle.flush()
        except OSError as exc:
            self._cut_back(size)  # earlier writes not synced yet stay, for sync()
            raise DirectoryStoreFailed(
                f"cannot write the directory log {self.path}: {exc.strerror or exc}"
            ) from None
        if self._synced_size is None:
            self._synced_size = size

    def sync(self) -> None:
        """fsync what :meth:`write` wrote.  Raises DirectoryStoreFailed when the disk
        refuses; every write since the last sync is then cut off the log."""
        if self._synced_size is None:
            return
        try:
            os.fsync(self._open().fileno())
        except OSError as exc:
            self._cut_back(self._synced_size)
            self._synced_size = None
            raise DirectoryStoreFailed(
                f"cannot write the directory log {self.path}: {exc.strerror or exc}"
            ) from None
        self._synced_size = None

    def _cut_back(self, size: int | None) -> None:
        # Cut what part of the writes reached the disk: the next append must
        # not glue its first line to a partial one in the middle of the log.
        self._close_quietly()
        if size is not None:
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)

    def compact(self, entries: Iterable[LwwEntry]) -> None:
        """Replace the log by ``entries``: done on return without a writer, queued with one.

        Raises DirectoryStoreFailed (without a writer) when the disk refuses;
        the old log is then intact.
        """
        lines = [self._header(), *(entry_to_json(entry) + "\n" for entry in entries)]
        self._records = len(lines) - 1
        if self._writer is not None:
            self._writer.run(lambda: self._compact_now(lines))
        else:
            self._compact_now(lines)

    def _compact_now(self, lines: list[str]) -> None:
        self.close()
        try:
            make_private_dir(self.directory)
            replace_atomically(self.path, (line.encode() for line in lines))
            _fsync_dir(self.directory)
        except OSError as exc:
            raise DirectoryStoreFailed(
                f"cannot compact the directory log {self.path}: {exc.strerror or exc}"
            ) from None

    def needs_compaction(self, live_entries: int) -> bool:
        return self._records > max(COMPACT_MIN_RECORDS, 2 * live_entries)

    def close(self) -> None:
        """Close the log file (appends reopen it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._synced_size = None

    def _close_quietly(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()
