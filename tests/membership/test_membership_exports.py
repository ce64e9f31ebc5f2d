"""Public surface of the membership core and the simulator (their sans-IO rule is
tests/test_layering.py's)."""

import meshhost.membership as membership
import meshhost.sim as sim


def test_exports_are_explicit_and_resolve():
    for pkg in (membership, sim):
        assert sorted(pkg.__all__) == sorted(set(pkg.__all__))
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None
