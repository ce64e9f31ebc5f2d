"""Why a host has found no peer yet, in words a person can act on.

A host that cannot join used to print its banner and then nothing, while
only the other side logged the reason. :func:`join_trouble` turns what this
host knows (its seeds, what each resolved to, why the last exchange with
each address failed, whether mDNS browses) into one line such as::

    seed 127.0.0.1:7946 closed our handshake without answering: different lattice secret?

Pure: no trio, no sockets, no clock; the host calls it a few seconds after
start while it sees no peer (see ``Host._watch_join``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from meshhost.errors import ConnectFailed, HandshakeRefused, RequestTimeout

__all__ = ["describe_failure", "join_trouble"]

Addr = tuple[str, int]


def describe_failure(seed: str, error: BaseException | None) -> str:
    """One seed's problem: what the last attempt to reach it ended with."""
    if error is None:
        return f"no answer from seed {seed} yet"
    if isinstance(error, HandshakeRefused):
        return f"seed {seed} closed our handshake without answering: different lattice secret?"
    if isinstance(error, ConnectFailed):
        if error.reason == "connection refused":
            return f"no answer from seed {seed}: connection refused (is a host running there?)"
        return f"no answer from seed {seed}: {error.reason or error}"
    if isinstance(error, RequestTimeout):
        return f"no answer from seed {seed}: it took our connection but did not reply in time"
    return f"seed {seed}: {error}"


def join_trouble(
    seeds: Sequence[tuple[str, int]],
    resolved: Mapping[tuple[str, int], Sequence[Addr] | str],
    errors: Mapping[Addr, BaseException],
    *,
    mdns: bool,
    mdns_service_type: str = "",
    addr: Addr | None = None,
) -> str:
    """Why no peer answered: one clause per seed, then mDNS; ``; ``-separated.

    ``resolved`` maps a seed to its addresses or to why it did not resolve;
    ``errors`` maps an address to the error its last exchange ended with;
    ``addr`` is where others reach this host (for a host with neither seeds nor
    mDNS, which can only wait to be joined).
    """
    parts = []
    for host, port in seeds:
        seed = f"{host}:{port}"
        addrs = resolved.get((host, port))
        if isinstance(addrs, str):
            parts.append(f"seed {seed} {addrs}")
            continue
        found = [errors.get(addr) for addr in addrs or [(host, port)]]
        error = next((e for e in found if isinstance(e, HandshakeRefused)), None)
        parts.append(describe_failure(seed, error or next((e for e in found if e), None)))
    if mdns:
        where = f" ({mdns_service_type})" if mdns_service_type else ""
        parts.append(
            f"no mDNS peer yet{where}: hosts with this lattice's name and secret on "
            "this network appear by themselves; elsewhere give --seed HOST:PORT"
        )
    if not parts:
        here = f"{addr[0]}:{addr[1]}" if addr is not None else "this host's address"
        parts.append(
            f"no seeds to join and mDNS is off: waiting for hosts started with --seed {here}"
        )
    return "; ".join(parts)
