"""A waPC call crosses between Python and wasmtime a fixed number of times,
whatever the payload's size: ``__guest_call`` once, each host import once,
memory copied in bulk (issue 17: once per call, not per byte or field)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from meshhost.runtime import Runtime, _raw, wapc

COUNTED = ("call_unchecked", "caller_context", "memory_data", "memory_data_size")


@pytest.mark.parametrize("size", [0, 100, 64 * 1024])
def test_an_echo_call_makes_the_same_few_crossings_at_any_size(
    runtime: Runtime, test_actor: bytes, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    actor = runtime.load(test_actor)
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert runtime.call_sync(actor.actor_id, "echo", payload) == payload  # warm: grows memory
    seen: Counter[str] = Counter()
    for name in COUNTED:
        real = getattr(_raw, name)

        def counting(*args: Any, _real: Any = real, _name: str = name) -> Any:
            seen[_name] += 1
            return _real(*args)

        monkeypatch.setattr(_raw, name, counting)
    dispatch = wapc._HOST_FUNCS.copy()
    for env, fn in dispatch.items():

        def host_fn(caller: int, args: Any, _fn: Any = fn) -> int:
            seen["host import"] += 1
            return int(_fn(caller, args))

        wapc._HOST_FUNCS[env] = host_fn
    try:
        assert runtime.call_sync(actor.actor_id, "echo", payload) == payload
    finally:
        wapc._HOST_FUNCS.update(dispatch)
    # __guest_call once; __guest_request and __guest_response once each (an empty
    # answer is handed over too); guest memory located once per host import that
    # copies bytes (an empty answer copies none), through the store's context.
    copies = 2 if size else 1
    assert seen == Counter(
        {"call_unchecked": 1, "host import": 2, "memory_data": copies, "memory_data_size": copies}
    )
