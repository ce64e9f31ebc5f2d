"""hypercorn's per-connection HTTP server: the one place meshhost uses hypercorn internals.

``httplisten`` accepts connections itself (to cap them per listener and per
source, and to drop clients that stop reading; see its docstring) and needs
hypercorn to serve a connection it already holds.  hypercorn 0.18 has no
public API for that: ``hypercorn.trio.serve`` only serves sockets it
accepts.  So this module wraps the internals ``serve`` uses inside, and
nothing else in meshhost imports them:

- ``hypercorn.trio.tcp_server.TCPServer(app, config, context, state, stream)``:
  awaiting it serves one connection until it closes;
- ``hypercorn.trio.worker_context.WorkerContext(max_requests)`` and its
  ``terminated`` event: setting it closes idle keep-alive connections;
- ``hypercorn.utils.wrap_app(app, wsgi_max_body_size, mode)``: the ASGI
  wrapper ``TCPServer`` expects;
- ``hypercorn.typing.ConnectionState``: the per-connection ASGI state.

pyproject.toml pins hypercorn to one version, and
``tests/capabilities/test_caps_private_api.py`` fails on an upgrade that changes any of
these names, signatures or behaviours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

__all__ = ["CHECKED_HYPERCORN", "App", "ConnectionServer"]

CHECKED_HYPERCORN = "0.18.0"
"""The hypercorn whose internals this module was checked against."""

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
"""An ASGI application."""


class ConnectionServer:
    """Serves, with hypercorn, HTTP connections that were accepted elsewhere."""

    def __init__(self, app: App, config: HypercornConfig) -> None:
        self._config = config
        self._context = WorkerContext(None)
        self._app = wrap_app(app, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]

    async def serve(self, stream: trio.abc.Stream) -> None:
        """Serve HTTP on ``stream`` until the client or hypercorn closes it.

        ``stream`` must have a ``socket`` attribute (hypercorn reads the peer
        address from it) and no ``do_handshake`` (hypercorn takes that for TLS).
        """
        await TCPServer(self._app, self._config, self._context, ConnectionState({}), stream)  # type: ignore[arg-type]

    async def close_idle(self) -> None:
        """Close every keep-alive connection that waits for its next request."""
        await self._context.terminated.set()
