"""Fixtures for runtime tests: WAT test actors compiled and signed at test time,
and a recording host-call handler."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import wasmtime

from meshhost.errors import MeshError
from meshhost.identity import nkeys
from meshhost.identity.claims import sign_module
from meshhost.runtime import ActorLimits, ActorRef, Runtime

WAT_DIR = Path(__file__).parent / "wat"


def wat(name: str, **replace: str) -> bytes:
    """Compile ``wat/<name>.wat`` after substituting placeholder words."""
    text = (WAT_DIR / f"{name}.wat").read_text()
    for key, value in replace.items():
        text = text.replace(key, value)
    return wasmtime.wat2wasm(text)


class Denied(MeshError):
    """Stands in for the capabilities layer's CapabilityDenied."""


@dataclass
class RecordingHandler:
    """Answers host calls from a table and records everything it sees."""

    answers: dict[tuple[str, str], object] = field(default_factory=dict)
    calls: list[tuple[str, str, str, str, bytes]] = field(default_factory=list)
    logs: list[tuple[str, str, str]] = field(default_factory=list)

    def host_call(
        self, actor: ActorRef, binding: str, namespace: str, operation: str, payload: bytes
    ) -> bytes:
        self.calls.append((actor.actor_id, binding, namespace, operation, payload))
        answer = self.answers.get((namespace, operation), b"reply:" + payload)
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(payload)  # type: ignore[no-any-return]
        return answer  # type: ignore[return-value]

    def log(self, actor: ActorRef, level: str, message: str) -> None:
        self.logs.append((actor.actor_id, level, message))


@pytest.fixture
def issuer() -> nkeys.KeyPair:
    return nkeys.generate(nkeys.Prefix.ACCOUNT, os.urandom)


@pytest.fixture
def sign(issuer: nkeys.KeyPair) -> Callable[..., bytes]:
    """sign(wasm, name=..., caps=...) -> signed module with a fresh M... key."""

    def _sign(wasm: bytes, name: str = "test-actor", **kw: object) -> bytes:
        subject = nkeys.generate(nkeys.Prefix.MODULE, os.urandom)
        return sign_module(wasm, issuer=issuer, subject=subject, name=name, now=time.time(), **kw)  # type: ignore[arg-type]

    return _sign


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def limits() -> ActorLimits:
    """Tight limits so limit tests finish fast."""
    return ActorLimits(
        memory_bytes=4 * 1024 * 1024, max_instances=2, cpu_time_s=0.2, deadline_s=5.0
    )


@pytest.fixture
def runtime(tmp_path: Path, handler: RecordingHandler, limits: ActorLimits) -> Iterator[Runtime]:
    rt = Runtime(tmp_path, handler, limits=limits)
    yield rt
    rt.close()


@pytest.fixture
def test_actor(sign: Callable[..., bytes]) -> bytes:
    """The waPC test actor (import module ``wapc``, initialised by ``wapc_init``)."""
    return sign(wat("test_actor", MODULE="wapc", START="wapc_init"), name="tester")


@pytest.fixture
def compile_wat() -> Callable[..., bytes]:
    """compile_wat(name, **placeholders) -> wasm bytes of wat/<name>.wat."""
    return wat


@pytest.fixture
def denied() -> type[MeshError]:
    """A MeshError subclass standing in for CapabilityDenied."""
    return Denied
