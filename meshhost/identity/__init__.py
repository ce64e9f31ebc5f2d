"""Keys and signed claims: who a host or an actor is."""
