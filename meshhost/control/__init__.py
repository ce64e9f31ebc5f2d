"""Control API: how a CLI or a peer asks a host to do something.

* :mod:`~meshhost.control.api` — the request/reply codec, the Unix socket
  server and client, and the lattice channel constant.
* :mod:`~meshhost.control.hostops` — the host operations behind the socket
  (inventory, start/stop/scale, links, config, labels, claims, events, and
  forwarding to other hosts).
* :mod:`~meshhost.control.authz` — operator roles and signed requests.
* :mod:`~meshhost.control.security` — lattice-wide trust state (operators,
  issuer policy, revocations) in the directory.
* :mod:`~meshhost.control.keyops` — lattice keyring rotation ops.

Declarative applications (manifests, placement, reconcile) live in
:mod:`meshhost.apps`; the application ops are answered there too.
"""
