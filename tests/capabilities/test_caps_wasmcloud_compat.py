"""Actors shaped like real wasmCloud 0.x actors, signed the way ``wash claims
sign`` signs them (tokens built here by hand, not by meshhost's encoder), run
end to end: claims verification, the waPC variants real toolchains produce,
and the HttpServer.HandleRequest payloads of wasmCloud's interface definitions."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
import wasmtime

from meshhost.capabilities import HTTPSERVER, Dispatcher, HttpServerProvider, LinkDefinition
from meshhost.capabilities.local import local_actor_resolver, local_invoker
from meshhost.errors import ActorError, ClaimsExpired, ClaimsHashMismatch, ClaimsNotYetValid
from meshhost.identity import claims, nkeys, wasm
from meshhost.identity.nkeys import KeyPair, Prefix
from meshhost.runtime import Runtime

WAT = (Path(__file__).parent / "wat" / "wasmcloud_guest.wat").read_text()
HEADER = '{"typ":"jwt","alg":"Ed25519"}'


def guest(module: str = "wasmbus", start: str = "wapc_init") -> bytes:
    return wasmtime.wat2wasm(WAT.replace("MODULE", module).replace("START", start))


def padded_with_debug_sections(module: bytes) -> bytes:
    """``module`` re-emitted with 5-byte (padded) section sizes, plus ``producers``."""
    out = bytearray(module[:8])
    for s in wasm.sections(module):
        content = module[s.content_start : s.end]
        size = len(content)
        out.append(s.id)
        out += bytes([(size >> (7 * i)) & 0x7F | 0x80 for i in range(4)] + [size >> 28])
        out += content
    producers = b"\x09producers" + b"\x01\x08language\x01\x04Rust\x061.70.0"
    return bytes(out) + b"\x00" + bytes([len(producers)]) + producers


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def wash_token(issuer: KeyPair, subject: KeyPair, module_hash: str, **claims: Any) -> str:
    """A claims JWT laid out as wascap writes it (serde field order, compact JSON)."""
    meta = {
        "name": claims.pop("name", "echo"),
        "hash": module_hash,
        "tags": claims.pop("tags", ["wasmcloud.com/experimental"]),
        "caps": claims.pop("caps", [HTTPSERVER]),
        "rev": claims.pop("rev", 7),
        "ver": claims.pop("ver", "0.3.4"),
        "call_alias": claims.pop("call_alias", "wasmcloud/echo"),
        "prov": False,
    }
    body: dict[str, Any] = {}
    if "exp" in claims:
        body["exp"] = claims.pop("exp")
    body.update(
        jti="4UGb2hUFSFHQT4PhxQtJvZ",
        iat=1_631_624_440,
        iss=issuer.public_key,
        sub=subject.public_key,
    )
    if "nbf" in claims:
        body["nbf"] = claims.pop("nbf")
    body["wascap"] = meta
    revision = claims.pop("wascap_revision", 3)
    if revision is not None:
        body["wascap_revision"] = revision
    assert not claims, claims
    payload = json.dumps(body, separators=(",", ":")).encode()
    signing_input = b64(HEADER.encode()) + "." + b64(payload)
    return signing_input + "." + b64(issuer.sign(signing_input.encode()))


def embed(module: bytes, token: str, section: str = "wasmcloud_jwt") -> bytes:
    """Append the claims section the way wash does (at the end, minimal size)."""
    return wasm.append_custom(module, section, token.encode())


def stripped_hash(module: bytes) -> str:
    return hashlib.sha256(module).hexdigest().upper()


@pytest.fixture
def issuer() -> KeyPair:
    return nkeys.generate(Prefix.ACCOUNT, os.urandom)


@pytest.fixture
def subject() -> KeyPair:
    return nkeys.generate(Prefix.MODULE, os.urandom)


@pytest.fixture
def runtime(tmp_path: Path):
    dispatcher = Dispatcher()
    rt = Runtime(tmp_path, dispatcher)
    dispatcher.resolve_actor = local_actor_resolver(rt)
    yield rt
    rt.close()


@pytest.mark.parametrize(
    ("import_module", "start", "revision", "section"),
    [
        ("wasmbus", "wapc_init", 3, "wasmcloud_jwt"),  # Rust actor, current wash
        ("wapc", "_start", 2, "wasmcloud_jwt"),  # AssemblyScript, older token
        ("wasmbus", "_start", None, "jwt"),  # TinyGo, wascap < 0.9 section and no revision
    ],
)
def test_actor_signed_like_wash_runs_unchanged(
    runtime, issuer, subject, import_module, start, revision, section
):
    module = padded_with_debug_sections(guest(import_module, start))
    token = wash_token(issuer, subject, stripped_hash(module), wascap_revision=revision)
    actor = runtime.load(embed(module, token, section))
    assert actor.actor_id == subject.public_key
    c = actor.claims
    assert (c.issuer, c.name, c.caps, c.tags) == (
        issuer.public_key,
        "echo",
        (HTTPSERVER,),
        ("wasmcloud.com/experimental",),
    )
    assert (c.rev, c.ver, c.call_alias, c.expires, c.not_before, c.revision) == (
        7,
        "0.3.4",
        "wasmcloud/echo",
        None,
        None,
        revision,
    )
    assert runtime.call_sync(actor.actor_id, "Echo.Say", b"hello") == b"hello"


def test_revision_2_actor_hashed_by_wascap_0_9_runs(runtime, issuer, subject):
    # wash signed with wascap 0.9 until 2023: revision 2 and its own hash input
    # (function bodies, first data segment, custom payloads), checked as such.
    module = padded_with_debug_sections(guest("wapc", "_start"))
    token = wash_token(issuer, subject, claims.legacy_module_hash(module), wascap_revision=2)
    actor = runtime.load(embed(module, token))
    assert runtime.call_sync(actor.actor_id, "Echo.Say", b"hi") == b"hi"
    tampered = embed(module.replace(b"HttpServer.", b"HttpServer_"), token)  # first segment
    with pytest.raises(ClaimsHashMismatch):
        runtime.load(tampered)


def test_guest_without_init_function_loads_and_says_it_has_no_handler(runtime, issuer, subject):
    module = guest(start="no_init_here")
    actor = runtime.load(embed(module, wash_token(issuer, subject, stripped_hash(module))))
    with pytest.raises(ActorError, match="No handler registered"):
        runtime.call_sync(actor.actor_id, "Echo.Say", b"hello")


def test_module_hash_keeps_padding_and_debug_sections(runtime, issuer, subject):
    module = padded_with_debug_sections(guest())
    # Hashing with every custom section dropped is wrong: name and producers count.
    no_custom = b"".join(
        [module[:8]] + [module[s.start : s.end] for s in wasm.sections(module) if s.id != 0]
    )
    bad = embed(module, wash_token(issuer, subject, stripped_hash(no_custom)))
    with pytest.raises(ClaimsHashMismatch):
        runtime.load(bad)
    # wascap >= 0.10.1 hashes the sections re-emitted with minimal sizes: accepted too.
    wascap_hash = stripped_hash(wasm.canonical_without(module))
    assert wascap_hash != stripped_hash(module)
    assert runtime.load(embed(module, wash_token(issuer, subject, wascap_hash))).actor_id


@pytest.mark.parametrize(
    ("times", "error"),
    [
        ({"exp": 1_631_624_500}, ClaimsExpired),
        ({"exp": -5}, ClaimsExpired),  # seconds ago: wascap allows no skew
        ({"nbf": 4_000_000_000}, ClaimsNotYetValid),
        ({"nbf": 30}, ClaimsNotYetValid),
    ],
)
def test_expired_and_not_yet_valid_tokens_are_refused(runtime, issuer, subject, times, error):
    module = guest()
    now = int(time.time())
    times = {k: v if v > 1_000_000 else now + v for k, v in times.items()}
    with pytest.raises(error):
        runtime.load(embed(module, wash_token(issuer, subject, stripped_hash(module), **times)))


async def test_http_request_reaches_the_actor_in_wasmclouds_shape(
    tmp_path, nursery, issuer, subject
):
    dispatcher = Dispatcher()
    runtime = Runtime(tmp_path, dispatcher)
    server = HttpServerProvider(local_invoker(runtime))
    dispatcher.register(server)
    await nursery.start(dispatcher.serve)
    try:
        module = guest("wapc", "_start")
        actor = runtime.load(embed(module, wash_token(issuer, subject, stripped_hash(module))))
        link = LinkDefinition(
            actor.actor_id, HTTPSERVER, "default", "builtin", {"ADDRESS": "127.0.0.1:0"}
        )
        await dispatcher.put_link(link)
        _, port = server.bound_address(link)

        def post() -> tuple[int, str | None, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("POST", "/items/7?color=red&size=2")
            conn.putheader("X-Tag", "a")
            conn.putheader("X-Tag", "b")
            conn.putheader("Content-Length", "5")
            conn.endheaders(b"hello")
            resp = conn.getresponse()
            out = resp.status, resp.getheader("content-type"), resp.read()
            conn.close()
            return out

        status, content_type, body = await trio.to_thread.run_sync(post)
    finally:
        runtime.close()
    # The actor's answer had a stray 0x00 after it; the response is still served.
    assert (status, content_type) == (200, "application/msgpack")
    request = msgpack.unpackb(body)
    assert list(request) == ["method", "path", "queryString", "header", "body"]
    assert request["method"] == "POST"
    assert request["path"] == "/items/7"
    assert request["queryString"] == "color=red&size=2"
    assert request["body"] == b"hello"
    assert request["header"]["x-tag"] == ["a", "b"]
    assert all(isinstance(v, list) for v in request["header"].values())
