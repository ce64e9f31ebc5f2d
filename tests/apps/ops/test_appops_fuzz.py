"""Control args come from any lattice member: every op either answers or raises a MeshError."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meshhost.apps.manifest import Component, ComponentType, Manifest, Scaler, ScalerKind, Spread
from meshhost.apps.ops import APP_OPS, AppOps
from meshhost.errors import MeshError
from tests.apps.ops.apps_helpers import HOSTS, Lattice

A = HOSTS[0]
SHA = "ab" * 32
VALID = Manifest(
    "fuzz",
    "v1",
    (
        Component(
            "a",
            ComponentType.ACTOR,
            "file:///a.wasm",
            sha256=SHA,
            scaler=Scaler(ScalerKind.SPREAD, 2, (Spread("default", (), 100),)),
        ),
    ),
).canonical()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=64),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
arg_names = st.sampled_from(
    ["manifest", "source", "modules", "name", "version", "other", "fuzz", "v1"]
)
manifests = st.one_of(
    st.just(VALID),
    st.binary(max_size=200),
    st.text(max_size=200),
    st.binary(max_size=60).map(lambda tail: VALID[: len(VALID) // 2] + tail),
)
args_maps = st.dictionaries(arg_names, st.one_of(values, manifests), max_size=4) | st.builds(
    lambda m, extra: {"manifest": m, **extra},
    manifests,
    st.dictionaries(st.sampled_from(["source", "modules"]), values, max_size=2),
)


@given(op=st.sampled_from(APP_OPS), args=args_maps)
def test_every_op_answers_or_raises_a_mesh_error(op: str, args: dict[str, Any]) -> None:
    lattice = Lattice()
    ops = AppOps(
        lattice.dirs[A],
        members=lattice.members(A),
        has_module=lambda digest: digest == SHA,
    )
    try:
        ops.dispatch(op, args)
    except MeshError:
        pass
