"""Keys and signed claims: who a host or an actor is."""

# short_id is defined with the errors (the bottom layer), whose messages name
# keys with it; it is exported here, where people look for it.
from meshhost.errors import SHORT_ID_CHARS, short_id

__all__ = ["SHORT_ID_CHARS", "short_id"]
