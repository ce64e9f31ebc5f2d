"""Built-in, in-process capability providers (wasmCloud 0.x contracts).

Import the providers from :mod:`meshhost.capabilities`; this package only
groups their modules (``keyvalue``, ``logging``, ``messaging``,
``httpserver``, ``httpclient``), their base class and the payload codec.
"""

__all__: list[str] = []
