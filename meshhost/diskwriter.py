"""Durable writes off the event loop: one writer thread with group commit.

The trio thread must never wait for a disk: an ``fsync`` takes from a
fraction of a millisecond to seconds (a busy or failing disk), and while it
runs the host answers no ping, so its peers start to suspect it.  Every
durable write of a serving host therefore goes through one
:class:`DiskWriter`: the trio thread queues the write and goes on; the
writer thread performs it.

Group commit: an :meth:`DiskWriter.append` is written at once but synced
with every other append to the same log that queued up meanwhile, so appends
queued while one ``fsync`` runs share the next one.  A :meth:`DiskWriter.run`
job (a file replaced atomically, a log compacted) makes itself durable; it
runs in queue order, after the appends queued before it are synced.

Every job gets a ticket (a sequence number).  Jobs complete in ticket order,
so ``await writer.durable([t])`` returning means that job and every one
before it are on disk; it raises the error the job met (the job's own
typed error, e.g. ``DirectoryStoreFailed``).  Who waits decides the
durability promise: the control API waits for the tickets of the writes a
request made before it answers (:meth:`DiskWriter.track`), so a write
acknowledged to a user is on disk; gossip-learned entries are not waited
for (see ``meshhost/directory/store.py``).

After :meth:`DiskWriter.close` (and before :meth:`DiskWriter.start`) jobs run
at once on the calling thread: nothing submitted is ever dropped.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import trio

__all__ = ["AppendLog", "DiskWriter", "WriterStats"]

log = logging.getLogger(__name__)

MAX_KEPT_ERRORS = 4096
"""Failed tickets remembered for a late :meth:`DiskWriter.durable` (oldest forgotten)."""


class AppendLog(Protocol):
    """A file the writer appends to (e.g. the directory's log)."""

    def write(self, data: bytes) -> None:
        """Write ``data`` at the end (not yet synced).  Raises (a typed error) when
        the disk refuses; the log then removes what part of ``data`` it wrote."""
        ...

    def sync(self) -> None:
        """Make every write so far durable (``fsync``).  Raises when the disk refuses."""
        ...


@dataclass(slots=True)
class WriterStats:
    jobs: int = 0
    """Jobs done (appends and runs)."""
    batches: int = 0
    """Times the thread woke up and took the queue."""
    syncs: int = 0
    """Log syncs (``AppendLog.sync`` calls): fewer than appends under group commit."""
    failures: int = 0


@dataclass(slots=True)
class _Job:
    ticket: int
    log: AppendLog | None
    data: bytes
    run: Callable[[], object] | None


_TRACKED: ContextVar[list[int] | None] = ContextVar("meshhost_diskwriter_tracked", default=None)
"""Tickets of the jobs submitted by the task inside :meth:`DiskWriter.track`."""


class DiskWriter:
    """One thread that writes and syncs for the event loop; see the module docstring."""

    def __init__(self, name: str = "meshhost-writer") -> None:
        self.name = name
        self.stats = WriterStats()
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._submitted = 0
        self._done = 0
        self._errors: dict[int, BaseException] = {}
        self._waiters: list[tuple[int, trio.lowlevel.TrioToken, trio.Event]] = []
        self._thread: threading.Thread | None = None
        self._closing = False

    # -- life ----------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (jobs submitted before ran inline)."""
        with self._cond:
            if self._thread is not None:
                return
            self._closing = False
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Finish every queued job, stop the thread (blocking: call it from a thread
        or after the event loop).  Later jobs run inline."""
        with self._cond:
            thread = self._thread
            self._closing = True
            self._cond.notify_all()
        if thread is not None:
            thread.join()

    @property
    def running(self) -> bool:
        """True while the thread takes jobs (else they run inline)."""
        return self._thread is not None

    # -- submitting (any thread; never blocks on the disk) ---------------------

    def append(self, log_: AppendLog, data: bytes) -> int:
        """Queue ``data`` for ``log_``; returns its ticket."""
        return self._submit(log_, data, None)

    def run(self, job: Callable[[], object]) -> int:
        """Queue ``job`` (it makes its own write durable); returns its ticket."""
        return self._submit(None, b"", job)

    def _submit(self, log_: AppendLog | None, data: bytes, job: Callable[[], object] | None) -> int:
        with self._cond:
            self._submitted += 1
            ticket = self._submitted
            item = _Job(ticket, log_, data, job)
            inline = self._thread is None  # not started, or stopped after draining
            if not inline:
                self._queue.append(item)
                self._cond.notify()
        tracked = _TRACKED.get()
        if tracked is not None:
            tracked.append(ticket)
        if inline:
            self._process([item])
        return ticket

    @contextlib.contextmanager
    def track(self) -> Iterator[list[int]]:
        """Collect the tickets of jobs this task (and tasks it starts) submits meanwhile."""
        tickets: list[int] = []
        token = _TRACKED.set(tickets)
        try:
            yield tickets
        finally:
            _TRACKED.reset(token)

    # -- waiting -----------------------------------------------------------------

    async def durable(self, tickets: Iterable[int]) -> None:
        """Return once every job in ``tickets`` is on disk; raise the first error one met."""
        wanted = list(tickets)
        if not wanted:
            return
        last = max(wanted)
        with self._cond:
            done = self._done >= last
            if not done:
                event = trio.Event()
                self._waiters.append((last, trio.lowlevel.current_trio_token(), event))
        if not done:
            await event.wait()
        self._raise_first(wanted)

    def durable_sync(self, tickets: Iterable[int]) -> None:
        """:meth:`durable` for a thread outside trio (blocks)."""
        wanted = list(tickets)
        if not wanted:
            return
        last = max(wanted)
        with self._cond:
            self._cond.wait_for(lambda: self._done >= last)
        self._raise_first(wanted)

    def _raise_first(self, tickets: list[int]) -> None:
        with self._cond:
            failed = [self._errors[t] for t in sorted(tickets) if t in self._errors]
        if failed:
            raise failed[0]

    # -- the thread ----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._closing)
                if not self._queue:
                    self._thread = None  # closing and drained: later jobs run inline
                    return
                batch, self._queue = self._queue, []
            self._process(batch)

    def _process(self, batch: list[_Job]) -> None:
        """Run ``batch`` in order; sync each log once after its appends (group commit)."""
        errors: dict[int, BaseException] = {}
        dirty: dict[int, tuple[AppendLog, list[int]]] = {}

        def sync_dirty() -> None:
            for log_, tickets in dirty.values():
                try:
                    log_.sync()
                except Exception as exc:  # the log's typed error, for each waiter
                    errors.update(dict.fromkeys(tickets, exc))
                self.stats.syncs += 1
            dirty.clear()

        for job in batch:
            try:
                if job.log is not None:
                    job.log.write(job.data)
                    dirty.setdefault(id(job.log), (job.log, []))[1].append(job.ticket)
                elif job.run is not None:
                    sync_dirty()  # a run job (a compaction) comes after what was queued before
                    job.run()
            except Exception as exc:
                errors[job.ticket] = exc
        sync_dirty()
        for failure in {id(e): e for e in errors.values()}.values():
            log.error("disk write failed: %s", failure)
        with self._cond:
            self.stats.batches += 1
            self.stats.jobs += len(batch)
            self.stats.failures += len(errors)
            self._errors.update(errors)
            while len(self._errors) > MAX_KEPT_ERRORS:
                del self._errors[next(iter(self._errors))]
            self._done = max(self._done, batch[-1].ticket)
            ready = [w for w in self._waiters if w[0] <= self._done]
            self._waiters = [w for w in self._waiters if w[0] > self._done]
            self._cond.notify_all()
        for _, token, event in ready:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(event.set)
