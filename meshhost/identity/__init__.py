"""Keys and signed claims: who a host or an actor is."""

SHORT_ID_CHARS = 12
"""Characters of a key kept by :func:`short_id`: 11 after the prefix letter tell
thousands of hosts apart, and the result is a prefix the CLI accepts for a host."""


def short_id(key: str) -> str:
    """The one way a host (or actor) key is shortened for people: its first 12
    characters and ``…`` (``NBX4ABCD2EFG…``). Short keys are returned whole."""
    return key[:SHORT_ID_CHARS] + "…" if len(key) > SHORT_ID_CHARS + 1 else key
