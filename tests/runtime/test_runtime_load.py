"""Loading: claims are checked before anything runs; compiled code is cached on disk."""

from __future__ import annotations

import os
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.errors import (
    ActorLoadError,
    ClaimsExpired,
    ClaimsHashMismatch,
    ClaimsMissing,
    ConfigError,
    IssuerNotAllowed,
    MeshError,
)
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.runtime import Runtime


def test_unsigned_module_never_starts(runtime, compile_wat):
    with pytest.raises(ClaimsMissing):
        runtime.load(compile_wat("test_actor", MODULE="wapc", START="wapc_init"))
    assert runtime.actors() == []
    assert runtime.engine.stats.compiles == 0


def _epoch_threads() -> int:
    return sum(t.name == "meshhost-epoch" for t in threading.enumerate())


def test_the_epoch_ticker_starts_with_the_first_actor_and_stops_on_close(
    tmp_path, handler, test_actor, compile_wat
):
    before = _epoch_threads()
    runtime = Runtime(tmp_path, handler)
    try:
        # an actor-less host (a caller) wakes no thread 200 times a second
        assert not runtime.engine.ticking and _epoch_threads() == before
        with pytest.raises(ClaimsMissing):  # a refused module runs nothing: no ticks needed
            runtime.load(compile_wat("test_actor", MODULE="wapc", START="wapc_init"))
        assert not runtime.engine.ticking
        actor = runtime.load(test_actor)
        assert runtime.engine.ticking and _epoch_threads() == before + 1
        runtime.load(test_actor)  # one ticker per engine, however many loads
        assert _epoch_threads() == before + 1
        runtime.unload(actor.actor_id)  # calls in flight may still need their limits
        assert runtime.engine.ticking
    finally:
        runtime.close()
    assert not runtime.engine.ticking and _epoch_threads() == before
    runtime.engine.start_ticking()  # a closed engine stays quiet
    assert not runtime.engine.ticking


def test_tampered_module_never_starts(runtime, test_actor):
    tampered = bytearray(test_actor)
    tampered[tampered.index(b"failed on purpose")] ^= 0x20
    with pytest.raises(ClaimsHashMismatch):
        runtime.load(bytes(tampered))


def test_expired_claims_never_start(runtime, sign, compile_wat):
    wasm = compile_wat("test_actor", MODULE="wapc", START="wapc_init")
    issuer = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)
    subject = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
    old = sign_module(
        wasm, issuer=issuer, subject=subject, name="old", expires_in_s=10, now=time.time() - 3600
    )
    with pytest.raises(ClaimsExpired):
        runtime.load(old)


def test_issuer_outside_allow_list_never_starts(tmp_path, handler, test_actor):
    other = nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom).public_key
    with Runtime(tmp_path, handler, allowed_issuers=[other]) as rt, pytest.raises(IssuerNotAllowed):
        rt.load(test_actor)


def test_claims_become_the_actor_ref(runtime, sign, compile_wat, issuer):
    wasm = compile_wat("test_actor", MODULE="wapc", START="wapc_init")
    actor = runtime.load(
        sign(wasm, name="kv-counter", caps=["wasmcloud:keyvalue"], call_alias="demo/counter")
    )
    assert actor.ref.actor_id.startswith("M")
    assert actor.ref.name == "kv-counter"
    assert actor.ref.caps == ("wasmcloud:keyvalue",)
    assert actor.ref.call_alias == "demo/counter"
    assert actor.ref.issuer == issuer.public_key


def test_invalid_wasm_is_a_load_error(runtime, sign):
    # well-formed sections (so it can be signed) with a meaningless type section
    garbage = b"\0asm\x01\0\0\0" + b"\x01\x01\xff"
    with pytest.raises(ActorLoadError, match="not valid WebAssembly"):
        runtime.load(sign(garbage))


def test_second_load_comes_from_the_disk_cache(tmp_path, handler, test_actor):
    with Runtime(tmp_path, handler) as first:
        actor = first.load(test_actor)
        assert not actor.from_cache
        assert first.engine.stats.compiles == 1
        assert actor.cache_path.exists()
        assert actor.cache_path.parent == tmp_path / "modules"
        assert actor.module_hash in actor.cache_path.name
    with Runtime(tmp_path, handler) as second:  # a host restart
        actor = second.load(test_actor)
        assert actor.from_cache
        assert second.engine.stats.compiles == 0
        assert second.engine.stats.cache_hits == 1
        assert second.call_sync(actor.actor_id, "echo", b"cached") == b"cached"


def test_corrupt_cache_file_is_recompiled(tmp_path, handler, test_actor):
    with Runtime(tmp_path, handler) as first:
        path = first.load(test_actor).cache_path
    path.write_bytes(b"not a compiled module")
    with Runtime(tmp_path, handler) as second:
        actor = second.load(test_actor)
        assert not actor.from_cache
        assert second.engine.stats.cache_errors == 1
        assert second.call_sync(actor.actor_id, "echo", b"x") == b"x"


def test_flipped_bits_in_a_cache_file_are_caught_before_the_code_runs(
    tmp_path, handler, test_actor
):
    # wasmtime checks only the artifact's headers: damaged code in a cached
    # artifact loaded fine and crashed the process (SIGILL) when called.
    with Runtime(tmp_path, handler) as first:
        path = first.load(test_actor).cache_path
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xA5 for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))
    with Runtime(tmp_path, handler) as second:
        actor = second.load(test_actor)
        assert not actor.from_cache
        assert second.engine.stats.cache_errors == 1
        assert second.call_sync(actor.actor_id, "echo", b"x") == b"x"


def test_a_cache_path_that_is_a_file_is_named(tmp_path, handler):
    (tmp_path / "modules").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"compiled-module cache .*modules: File exists"):
        Runtime(tmp_path, handler)


def test_reloading_replaces_the_actor(runtime, test_actor):
    first = runtime.load(test_actor)
    assert first.instances == 1  # the warm-up instance
    second = runtime.load(test_actor)
    assert runtime.get(first.actor_id) is second
    assert len(runtime.actors()) == 1


def test_provider_claims_are_not_an_actor(runtime, sign, compile_wat):
    wasm = compile_wat("test_actor", MODULE="wapc", START="wapc_init")
    with pytest.raises(ActorLoadError, match="capability provider"):
        runtime.load(sign(wasm, provider=True))


def test_unloaded_actor_refuses_new_calls(runtime, test_actor):
    from meshhost.errors import ActorNotFound

    actor = runtime.load(test_actor)
    runtime.unload(actor.actor_id)
    with pytest.raises(ActorNotFound):
        runtime.unload(actor.actor_id)
    with pytest.raises(ActorNotFound, match="unloaded"):
        runtime._call(actor, "echo", b"", None)  # a caller that looked it up just before


async def test_load_async_compiles_on_a_worker_thread(runtime, test_actor):
    actor = await runtime.load_async(test_actor)
    assert await runtime.invoke(actor.actor_id, "echo", b"a") == b"a"


# --- untrusted bytes: load raises only meshhost errors ---------------------------------


@pytest.fixture(scope="module")
def fuzz_runtime(tmp_path_factory):
    class Quiet:
        def host_call(self, *args):
            return b""

        def log(self, *args):
            pass

    with Runtime(tmp_path_factory.mktemp("fuzz"), Quiet()) as rt:
        yield rt


@pytest.fixture(scope="module")
def fuzz_keys():
    return (
        nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom),
        nkeys.generate(nkeys.Prefix.MODULE, os.urandom),
    )


@given(st.binary(max_size=300))
def test_random_bytes_never_load_and_raise_only_mesh_errors(fuzz_runtime, data):
    with pytest.raises(MeshError):
        fuzz_runtime.load(data)


def _section(section_id: int, content: bytes) -> bytes:
    size = len(content)
    leb = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        leb.append(byte | (0x80 if size else 0))
        if not size:
            return bytes([section_id]) + bytes(leb) + content


@given(st.lists(st.tuples(st.integers(1, 12), st.binary(max_size=40)), max_size=4))
def test_signed_garbage_modules_fail_to_load_with_actor_load_error(
    fuzz_runtime, fuzz_keys, sections
):
    wasm = b"\0asm\x01\0\0\0" + b"".join(_section(i, c) for i, c in sections)
    issuer, subject = fuzz_keys
    signed = sign_module(wasm, issuer=issuer, subject=subject, name="fuzz", now=time.time())
    with pytest.raises(ActorLoadError):
        fuzz_runtime.load(signed)


def test_not_yet_valid_claims_never_start(runtime, compile_wat):
    from meshhost.errors import ClaimsNotYetValid

    wasm = compile_wat("test_actor", MODULE="wapc", START="wapc_init")
    early = sign_module(
        wasm,
        issuer=nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom),
        subject=nkeys.generate(nkeys.Prefix.MODULE, os.urandom),
        name="early",
        not_before_s=3600,
        now=time.time(),
    )
    with pytest.raises(ClaimsNotYetValid):
        runtime.load(early)


def test_forged_signature_never_starts(runtime, test_actor):
    from meshhost.errors import ClaimsError

    # flip one character of the token's signature (the last base64url segment)
    head, sep, sig = test_actor.rpartition(b".")
    forged = head + sep + (b"A" if sig[:1] != b"A" else b"B") + sig[1:]
    with pytest.raises(ClaimsError):
        runtime.load(forged)
    assert runtime.engine.stats.compiles == 0
