"""Transport channel numbers: which layer a request on a session is for.

Append-only. A number, once given, keeps its meaning forever (a host of an
older version may still send it); add a new layer at the end, never reuse
or renumber. Every layer takes its number from here, and proto/SPEC.md and
proto/spec/rpc.md list the same table.
"""

from __future__ import annotations

__all__ = ["CONTROL", "DIRECTORY_SYNC", "INVOCATION", "PEER", "PUSH_PULL"]

INVOCATION = 1
"""Actor invocations and their results (proto/spec/rpc.md, "Invocation")."""
PUSH_PULL = 2
"""Membership push-pull anti-entropy (proto/spec/membership.md)."""
CONTROL = 3
"""Control requests between hosts: what an operator may ask any host
(proto/spec/rpc.md, "Control")."""
DIRECTORY_SYNC = 4
"""The directory's digest-driven pull when a host joins (proto/spec/directory.md)."""
PEER = 5
"""Operations only a peer host asks for: fetch a module by digest, deliver a
messaging reply (proto/spec/rpc.md, "Peer operations"). Never reachable from
the local control socket."""
