"""Frame codec: golden vectors, round trips, and fuzzing of the decoder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.config import TransportConfig
from meshhost.errors import ErrorCode, FrameError, HandshakeRejected
from meshhost.transport import frames as fr
from meshhost.transport.handshake import HelloPayload, decode_hello, encode_hello
from meshhost.transport.session import LocalIdentity, Session
from tests.transport.transport_pair import LATTICE, PSK, host_key, seeded_random_bytes

VECTORS_PATH = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "transport.json"
FRAME_TYPES = {
    cls.__name__: cls
    for cls in (
        fr.Ready,
        fr.Request,
        fr.Response,
        fr.Data,
        fr.Error,
        fr.Cancel,
        fr.Credit,
        fr.Ping,
        fr.Pong,
        fr.Close,
        fr.Rekey,
    )
}


def frame_from_fields(fields: dict[str, Any]) -> fr.Frame:
    kwargs: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "type":
            continue
        if key.endswith("_hex"):
            kwargs[key[:-4]] = bytes.fromhex(value)
        elif key == "code":
            kwargs[key] = ErrorCode[value.upper()]
        else:
            kwargs[key] = value
    return FRAME_TYPES[fields["type"]](**kwargs)


def fields_of(frame: fr.Frame) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(frame).__name__}
    for f in dataclasses.fields(frame):
        value = getattr(frame, f.name)
        if isinstance(value, bytes):
            out[f.name + "_hex"] = value.hex()
        elif isinstance(value, ErrorCode):
            out[f.name] = value.name.lower()
        else:
            out[f.name] = value
    return out


VECTORS = json.loads(VECTORS_PATH.read_text())


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=lambda v: v["name"])
def test_frame_vectors(vector: dict[str, Any]) -> None:
    frame = frame_from_fields(vector["fields"])
    assert fr.encode_frame(frame).hex() == vector["frame_hex"]
    decoded = fr.decode_frame(bytes.fromhex(vector["frame_hex"]))
    assert decoded == frame
    assert fields_of(decoded) == vector["fields"]


def test_frame_vectors_cover_every_type() -> None:
    assert {v["fields"]["type"] for v in VECTORS["frames"]} == set(FRAME_TYPES)


@pytest.mark.parametrize("vector", VECTORS["hello"], ids=lambda v: v["name"])
def test_hello_vectors(vector: dict[str, Any]) -> None:
    f = vector["fields"]
    hello = HelloPayload(
        f["host"],
        bytes.fromhex(f["sig_hex"]),
        tuple(f["versions"]),
        tuple(f["features"]),
        f["port"],
        f["window"],
    )
    assert encode_hello(hello).hex() == vector["msgpack_hex"]
    static = bytes.fromhex(f["static_public_hex"])
    assert decode_hello(bytes.fromhex(vector["msgpack_hex"]), static) == hello


def transcript_pair(
    config: TransportConfig, record: list[str] | None = None
) -> tuple[Session, Session]:
    """Replay the handshake of the transcript vector, checking every record (or,
    given ``record``, appending each record's hex to it: the generator)."""
    t = VECTORS["transcript"]
    sessions = []
    for role, seed in (("initiator", t["initiator_seed"]), ("responder", t["responder_seed"])):
        rb = seeded_random_bytes(seed)
        sessions.append(
            Session(
                initiator=role == "initiator",
                identity=LocalIdentity.create(host_key(seed), rb),
                lattice=t["lattice"],
                psk=bytes.fromhex(t["psk_hex"]),
                config=config,
                random_bytes=rb,
                listen_port=t[f"{role}_port"],
                now=0.0,
            )
        )
    a, b = sessions
    a.start()
    for i, expected in enumerate(t["records_hex"]):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        out = bytes(writer.data_to_send())
        if record is None:
            assert out.hex() == expected, f"record {i}"
        else:
            record.append(out.hex())
        reader.receive_data(out, 0.0)
    return a, b


def test_session_transcript_vector() -> None:
    """A whole handshake from fixed keys: every record byte for byte."""
    t = VECTORS["transcript"]
    a, b = transcript_pair(TransportConfig())
    assert a.is_open and b.is_open
    assert a.handshake_hash.hex() == b.handshake_hash.hex() == t["handshake_hash_hex"]
    assert t["lattice"] == LATTICE and bytes.fromhex(t["psk_hex"]) == PSK


def test_session_records_vector() -> None:
    """Transport records after the handshake, rekeys included, byte for byte."""
    v = VECTORS["session"]
    a, b = transcript_pair(TransportConfig(rekey_after_messages=v["rekey_after_messages"]))
    for s in (a, b):
        while s.next_event() is not None:
            pass
    steps = iter(v["steps"])
    seen_rekeys: dict[int, int] = {}

    def step(sender: Session, receiver: Session) -> list[object]:
        vector = next(steps)
        assert vector["from"] == ("initiator" if sender is a else "responder")
        out = bytes(sender.data_to_send())
        assert out.hex() == "".join(r["record_hex"] for r in vector["records"]), vector["name"]
        frames = [fr.decode_frame(bytes.fromhex(r["frame_hex"])) for r in vector["records"]]
        rekeys = sum(isinstance(f, fr.Rekey) for f in frames)
        assert rekeys == sender.rekeys - seen_rekeys.get(id(sender), 0)
        seen_rekeys[id(sender)] = sender.rekeys
        receiver.receive_data(out, 0.0)
        events = []
        while (event := receiver.next_event()) is not None:
            events.append(event)
        return events

    rid = a.send_request(1, b"hello", 1000)
    (request,) = step(a, b)
    assert (request.request_id, request.channel, request.payload) == (rid, 1, b"hello")
    b.send_response(rid, b"world")
    (reply,) = step(b, a)
    assert reply.payload == b"world" and b.rekeys == 1
    rid2 = b.send_request(3, b"after rekey", 0)
    (request,) = step(b, a)
    assert (request.request_id, request.channel, request.payload) == (rid2, 3, b"after rekey")
    a.send_response(rid2, b"ok")
    (reply,) = step(a, b)
    assert reply.payload == b"ok" and a.rekeys == 1
    a.ping(7)
    assert step(a, b) == []
    assert step(b, a) == [] and a.pongs_received == 1 and b.rekeys == 2
    assert next(steps, None) is None


def test_reason_text_is_cut_to_the_limit() -> None:
    frame = fr.Close(ErrorCode.PROTOCOL, "é" * 2000)
    decoded = fr.decode_frame(fr.encode_frame(frame))
    assert isinstance(decoded, fr.Close)
    assert len(decoded.message.encode()) <= fr.MAX_REASON_BYTES


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02\x00\x00\x01\x00\x00\x00",  # 7 bytes: header cut short
        fr.HEADER.pack(2, 0, 1, 1) + b"\x00\x00",  # REQUEST without its timeout
        fr.HEADER.pack(2, 1, 1, 1) + b"\x00" * 8,  # streamed REQUEST without total
        fr.HEADER.pack(3, 1, 0, 1) + b"\x00" * 4,  # streamed RESPONSE without total
        fr.HEADER.pack(5, 0, 0, 1) + b"\x00",  # ERROR without a whole code
        fr.HEADER.pack(5, 0, 0, 1) + b"\x00\xff",  # unknown error code
        fr.HEADER.pack(10, 0, 0, 0) + b"\x00\x01\xff\xfe",  # CLOSE reason not UTF-8
        fr.HEADER.pack(7, 0, 0, 1) + b"\x00\x00\x00\x00",  # zero credit
        fr.HEADER.pack(6, 1, 0, 1),  # MORE flag on CANCEL
        fr.HEADER.pack(4, 2, 0, 1),  # unknown flag
        fr.HEADER.pack(4, 0, 3, 1),  # channel on DATA
        fr.HEADER.pack(4, 0, 0, 0),  # request id 0
        fr.HEADER.pack(8, 0, 0, 1) + b"\x00" * 8,  # PING with a request id
        fr.HEADER.pack(1, 0, 0, 0) + b"x",  # READY with trailing bytes
        fr.HEADER.pack(200, 0, 0, 0),  # unknown type
        fr.HEADER.pack(4, 0, 0, 1) + b"x" * fr.MAX_FRAME_BYTES,  # oversized
    ],
)
def test_malformed_frames_raise_frame_error(data: bytes) -> None:
    with pytest.raises(FrameError):
        fr.decode_frame(data)


@given(st.binary(max_size=80))
def test_fuzz_decoder_only_raises_frame_error(data: bytes) -> None:
    try:
        frame = fr.decode_frame(data)
    except FrameError:
        return
    assert fr.decode_frame(fr.encode_frame(frame)) == frame


@given(st.sampled_from([2, 3, 4, 5, 6, 7, 8, 9, 10]), st.integers(0, 3), st.binary(max_size=40))
def test_fuzz_decoder_with_valid_headers(kind: int, flags: int, rest: bytes) -> None:
    data = fr.HEADER.pack(kind, flags, 0, 1) + rest
    try:
        fr.decode_frame(data)
    except FrameError:
        pass


@given(st.binary(max_size=200))
def test_fuzz_hello_decoder_only_raises_handshake_rejected(data: bytes) -> None:
    with pytest.raises(HandshakeRejected):
        decode_hello(data, bytes(32))


def test_hello_with_a_non_host_key_is_rejected() -> None:
    from meshhost.identity.nkeys import Prefix, generate

    account = generate(Prefix.ACCOUNT, lambda n: b"\x01" * n)
    ident = LocalIdentity.create(host_key(1), seeded_random_bytes(1))
    hello = HelloPayload(account.public_key, account.sign(b"x"), (1,), (), 0, 65536)
    with pytest.raises(HandshakeRejected, match="not a host key"):
        decode_hello(encode_hello(hello), ident.static.public)


def _generate() -> None:  # pragma: no cover
    """Regenerate what depends on the hello's bytes (``python test_transport_frames.py``):
    the hello vectors' ``versions``, the handshake transcript and the session
    records (new keys); frame plaintexts stay as they are."""
    from meshhost.transport.handshake import VERSIONS

    data = json.loads(VECTORS_PATH.read_text())
    for vector in data["hello"]:
        f = vector["fields"]
        f["versions"] = list(VERSIONS)
        hello = HelloPayload(
            f["host"],
            bytes.fromhex(f["sig_hex"]),
            tuple(f["versions"]),
            tuple(f["features"]),
            f["port"],
            f["window"],
        )
        vector["msgpack_hex"] = encode_hello(hello).hex()
    VECTORS["hello"] = data["hello"]
    records: list[str] = []
    v = data["session"]
    a, b = transcript_pair(TransportConfig(rekey_after_messages=v["rekey_after_messages"]), records)
    data["transcript"]["records_hex"] = records
    data["transcript"]["handshake_hash_hex"] = a.handshake_hash.hex()
    for session in (a, b):
        while session.next_event() is not None:
            pass
    steps = iter(v["steps"])

    def step(sender: Session, receiver: Session) -> None:
        out = bytes(sender.data_to_send())
        vector = next(steps)
        pos, cut = 0, []
        while pos < len(out):
            size = fr.RECORD_HEADER.unpack_from(out, pos)[0] + 2
            cut.append(out[pos : pos + size])
            pos += size
        assert len(cut) == len(vector["records"]), vector["name"]
        for rec, raw in zip(vector["records"], cut, strict=True):
            rec["record_hex"] = raw.hex()
        receiver.receive_data(out, 0.0)
        while receiver.next_event() is not None:
            pass

    rid = a.send_request(1, b"hello", 1000)
    step(a, b)
    b.send_response(rid, b"world")
    step(b, a)
    rid2 = b.send_request(3, b"after rekey", 0)
    step(b, a)
    a.send_response(rid2, b"ok")
    step(a, b)
    a.ping(7)
    step(a, b)
    step(b, a)
    VECTORS_PATH.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _generate()
