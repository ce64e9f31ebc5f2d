"""What the layers tell the monitor as it happens: a small Protocol handed down.

Most figures a host exposes are counters its layers keep anyway (the SWIM
core's ``stats``, the transport's ``stats``, the runtime's cache counters);
``meshhost.monitor`` reads them when someone asks.  A few figures only
exist at the moment something happens (how long a call took, how it ended):
for those, the layer that sees it calls an :class:`Observer` it was given.
The default :data:`NULL_OBSERVER` does nothing, so cores, tests and the
simulator never need the monitor (nor prometheus-client).

This module sits at the bottom of the import graph (beside ``errors``):
every layer may import it; it imports nothing of meshhost.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NULL_OBSERVER", "NullObserver", "Observer"]


class Observer(Protocol):
    """Receives events worth counting; every method must be cheap and never raise."""

    def invocation(
        self, actor: str, operation: str, where: str, outcome: str, seconds: float
    ) -> None:
        """A call this host made (to itself or a peer) ended.

        ``where``: ``local`` (answered here), ``remote`` (answered by a peer) or
        ``none`` (no host answered); ``outcome``: ``ok`` or the error code's
        name in lower case (``timeout``, ``denied``, ``actor_failed``, ...).
        """

    def ran(self, actor: str, operation: str, peer: str, outcome: str, seconds: float) -> None:
        """This host ran a call on one of its instances; ``peer`` is the calling host."""

    def failover(self, actor: str) -> None:
        """A candidate host could not take a call ("not here, not now"): the next is tried."""

    def retry(self, actor: str, reason: str) -> None:
        """A call is sent to one more host (``reason``: ``failover`` or ``hedge``)."""

    def actor_started(self, actor: str, seconds: float) -> None:
        """Instances of ``actor`` were (re)loaded; ``seconds`` includes compiling."""

    def http_request(self, actor: str, status: int, seconds: float) -> None:
        """The HTTP server provider answered a request with ``status``."""


class NullObserver:
    """An :class:`Observer` that counts nothing."""

    __slots__ = ()

    def invocation(
        self, actor: str, operation: str, where: str, outcome: str, seconds: float
    ) -> None:
        pass

    def ran(self, actor: str, operation: str, peer: str, outcome: str, seconds: float) -> None:
        pass

    def failover(self, actor: str) -> None:
        pass

    def retry(self, actor: str, reason: str) -> None:
        pass

    def actor_started(self, actor: str, seconds: float) -> None:
        pass

    def http_request(self, actor: str, status: int, seconds: float) -> None:
        pass


NULL_OBSERVER: Observer = NullObserver()
