"""A `meshhost up` on a slow disk, for tests: every ``os.fsync`` takes 0.8 s longer.

Writes queue up behind a running fsync, so a host that answered before its
write reached the disk would be caught by a ``kill -9`` right after the
answer.  Run as ``python slow_disk_host.py up ARGS...``.
"""

from __future__ import annotations

import os
import sys
import time

from meshhost.cli import main

SLOW_FSYNC_S = 0.8
_fsync = os.fsync


def _slow_fsync(fd: int) -> None:
    time.sleep(SLOW_FSYNC_S)
    _fsync(fd)


os.fsync = _slow_fsync

if __name__ == "__main__":
    sys.exit(main())
