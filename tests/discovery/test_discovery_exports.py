"""Public surface of discovery and the keyring (its no-IO rule: tests/test_layering.py)."""

import meshhost.discovery as discovery
import meshhost.identity.keyring as keyring


def test_exports_are_explicit_and_resolve() -> None:
    for module in (discovery, keyring):
        assert sorted(module.__all__) == sorted(set(module.__all__))
        for name in module.__all__:
            assert getattr(module, name) is not None
