"""Public surface of the transport (the sans-IO rule for its cores is tests/test_layering.py's)."""

from __future__ import annotations

import meshhost.transport as transport


def test_exports() -> None:
    assert sorted(transport.__all__) == [
        "LocalIdentity",
        "PROTOCOL_NAME",
        "PROTOCOL_VERSION",
        "RequestHandler",
        "Session",
        "Transport",
    ]
    for name in transport.__all__:
        assert getattr(transport, name) is not None
    assert transport.PROTOCOL_NAME == "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b"
