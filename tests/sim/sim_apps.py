"""The applications both placement simulations deploy (shared so they test the same thing)."""

from __future__ import annotations

from meshhost.apps import Component, ComponentType, Manifest, Scaler, ScalerKind, Spread


def actor(name: str, scaler: Scaler) -> Component:
    return Component(
        name, ComponentType.ACTOR, f"file:///{name}.wasm", sha256=name * 32, scaler=scaler
    )


APPS = [
    Manifest(
        "web",
        "v1",
        (
            actor(
                "front",
                Scaler(
                    ScalerKind.SPREAD,
                    40,
                    (
                        Spread("a", (("zone", "a"),), 50),
                        Spread("b", (("zone", "b"),), 30),
                        Spread("c", (("zone", "c"),), 20),
                    ),
                ),
            ),
        ),
    ),
    Manifest(
        "cache",
        "v1",
        (actor("redis", Scaler(ScalerKind.SPREAD, 7, (Spread("default", (), 100),))),),
    ),
    Manifest(
        "agent",
        "v2",
        (
            actor(
                "probe", Scaler(ScalerKind.DAEMON, 1, (Spread("edge", (("role", "edge"),), 100),))
            ),
        ),
    ),
]
