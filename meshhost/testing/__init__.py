"""Harnesses for tests of meshhost and of applications built on it.

Plain library code (no pytest import), usable from any test runner:

- :func:`wait_until` (trio) and :func:`poll_until` (blocking): wait for a
  condition with a deadline and a failure that says what was awaited.
- :func:`make_host`, :func:`start_lattice`, :class:`Member`, :func:`client`,
  :func:`alive`, :func:`signed_example`: a lattice of real hosts in one trio process on
  127.0.0.x, each with its own data directory.
"""

from meshhost.testing.hosts import (
    ISSUER,
    SECRET,
    Member,
    alive,
    client,
    host_address,
    make_host,
    signed_example,
    start_lattice,
)
from meshhost.testing.wait import poll_until, wait_until

__all__ = [
    "ISSUER",
    "SECRET",
    "Member",
    "alive",
    "client",
    "host_address",
    "make_host",
    "poll_until",
    "signed_example",
    "start_lattice",
    "wait_until",
]
