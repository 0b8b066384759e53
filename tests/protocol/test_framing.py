"""Framing, signing and replay: round trips, property tests, and interop with jupyter_client's Session."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyter_client.session import Session as JCSession

from jupervisor.protocol import (
    DELIM,
    FramingError,
    Header,
    Message,
    MessageFormatError,
    ProtocolError,
    ReplayError,
    ReplayWindow,
    Session,
    SignatureError,
    Signer,
    decode,
    encode,
    execute_request,
)

KEY = b"a0436f6c-1916-498b-8eb9-e81ab9368e84"

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)


@st.composite
def messages(draw) -> Message:
    s = Session(session_id=draw(st.text(min_size=1, max_size=12)), username=draw(st.text(max_size=8)), pid=7)
    parent = draw(st.none() | st.just(s.message("execute_request")))
    return s.message(
        draw(st.text(min_size=1, max_size=20)),
        draw(json_objects),
        parent=parent,
        metadata=draw(json_objects),
        buffers=draw(st.lists(st.binary(max_size=50), max_size=3)),
    )


@given(messages(), st.lists(st.binary(min_size=1, max_size=10).filter(lambda b: b != DELIM), max_size=3))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_any_message(msg: Message, idents: list[bytes]) -> None:
    signer = Signer(KEY)
    env = decode(encode(msg, signer, idents), signer, ReplayWindow())
    assert env.idents == tuple(idents)
    assert env.message == msg


@given(st.lists(st.binary(max_size=40), max_size=10))
@settings(max_examples=300)
def test_arbitrary_frames_raise_only_protocol_errors(frames: list[bytes]) -> None:
    try:
        decode(frames, Signer(b""), ReplayWindow())
    except ProtocolError:
        pass


@given(st.lists(st.binary(max_size=40), min_size=4, max_size=6), st.lists(st.binary(max_size=10), max_size=2))
@settings(max_examples=300)
def test_garbage_parts_behind_a_valid_signature_raise_only_protocol_errors(parts, extra) -> None:
    signer = Signer(KEY)
    frames = [DELIM, signer.sign(parts[:4]), *parts, *extra]
    try:
        decode(frames, signer)
    except ProtocolError as exc:
        assert isinstance(exc, ValueError)


@pytest.mark.parametrize(
    "part, why",
    [
        (b"[" * 100000 + b"]" * 100000, "deep"),
        (b"\xff\xfe", "utf8"),
        (b"[1, 2]", "array"),
        (b'{"msg_id": 1, "msg_type": "x"}', "types"),
        (b'{"msg_id": "a", "msg_type": "x", "date": "yesterday"}', "date"),
    ],
)
def test_bad_header_parts_are_message_format_errors(part: bytes, why: str) -> None:
    signer = Signer(KEY)
    parts = [part, b"{}", b"{}", b"{}"]
    with pytest.raises(MessageFormatError) as e:
        decode([DELIM, signer.sign(parts), *parts], signer)
    assert "header" in str(e.value)


def test_shape_errors() -> None:
    signer = Signer(KEY)
    with pytest.raises(FramingError, match="delimiter"):
        decode([b"a", b"b"], signer)
    with pytest.raises(FramingError, match="got 3"):
        decode([DELIM, b"sig", b"{}", b"{}"], signer)


def test_tampered_unsigned_and_replayed_messages_are_rejected() -> None:
    signer = Signer(KEY)
    frames = encode(Session().request(execute_request("1")), signer)
    tampered = list(frames)
    tampered[5] = tampered[5].replace(b'"1"', b'"2"')
    with pytest.raises(SignatureError, match="does not match"):
        decode(tampered, signer)
    unsigned = list(frames)
    unsigned[1] = b""
    with pytest.raises(SignatureError, match="unsigned"):
        decode(unsigned, signer)
    window = ReplayWindow()
    decode(frames, signer, window)
    with pytest.raises(ReplayError):
        decode(frames, signer, window)


def test_forged_message_does_not_poison_the_replay_window() -> None:
    signer = Signer(KEY)
    frames = encode(Session().message("status", {"execution_state": "idle"}), signer)
    forged = list(frames)
    forged[2] = forged[2].replace(b"status", b"stztus")  # same signature, other header
    window = ReplayWindow()
    with pytest.raises(SignatureError):
        decode(forged, signer, window)
    decode(frames, signer, window)  # the genuine one is still accepted
    assert len(window) == 1


def test_replay_window_is_bounded() -> None:
    w = ReplayWindow(size=3)
    for s in (b"a", b"b", b"c", b"d"):
        w.record(s)
    assert len(w) == 3
    w.record(b"a")  # forgotten, so accepted again
    with pytest.raises(ReplayError):
        w.record(b"d")


def test_unsigned_sessions_accept_empty_signatures() -> None:
    frames = encode(Session().message("x"), Signer(b""))
    assert frames[1] == b""
    assert decode(frames, Signer(b"")).message.msg_type == "x"


def test_signer_rejects_bad_schemes_and_hides_its_key() -> None:
    with pytest.raises(ValueError, match="hmac-<hash>"):
        Signer(KEY, "sha256")
    with pytest.raises(ValueError, match="unknown hash"):
        Signer(KEY, "hmac-nothing")
    assert KEY.decode() not in repr(Signer(KEY))


def test_msg_id_format_and_dates() -> None:
    s = Session(session_id="abcd", pid=99)
    m1, m2 = s.message("a"), s.message("b")
    assert (m1.msg_id, m2.msg_id) == ("abcd_99_0", "abcd_99_1")
    assert m1.header.date.tzinfo is not None
    frames = encode(m1, Signer(KEY))
    assert b'Z"' in frames[2] and b"+00:00" not in frames[2]


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha512"])
def test_interop_jupyter_client_decodes_ours(scheme: str) -> None:
    jc = JCSession(key=KEY, signature_scheme=scheme)
    ours = Session()
    msg = ours.message("execute_request", {"code": "print(1)", "n": [1, 2]}, metadata={"m": 1}, buffers=[b"\x00buf"])
    frames = encode(msg, Signer(KEY, scheme), [b"ident-1"])
    idents, rest = jc.feed_identities(frames)
    got = jc.deserialize(rest)
    assert idents == [b"ident-1"]
    assert got["msg_id"] == msg.msg_id and got["content"] == {"code": "print(1)", "n": [1, 2]}
    assert got["metadata"] == {"m": 1}
    assert bytes(got["buffers"][0]) == b"\x00buf"
    assert got["header"]["date"] == msg.header.date
    assert got["header"]["session"] == ours.session_id


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha512"])
def test_interop_we_decode_jupyter_clients(scheme: str) -> None:
    jc = JCSession(key=KEY, signature_scheme=scheme)
    parent = jc.msg("execute_request", {"code": "x"})
    sent = jc.msg("stream", {"name": "stdout", "text": "hé"}, parent=parent)
    frames = jc.serialize(sent, ident=[b"k1", b"k2"])
    frames += [b"buffer-bytes"]
    env = decode(frames, Signer(KEY, scheme), ReplayWindow())
    assert env.idents == (b"k1", b"k2")
    m = env.message
    assert m.msg_id == sent["header"]["msg_id"] and m.content == {"name": "stdout", "text": "hé"}
    assert m.parent_id == parent["header"]["msg_id"]
    assert m.buffers == (b"buffer-bytes",)
    assert m.header.date == sent["header"]["date"]
    # tampering with what jupyter_client signed is caught
    bad = list(frames)
    bad[-2] = bad[-2].replace(b"stdout", b"stderr")
    with pytest.raises(SignatureError):
        decode(bad, Signer(KEY, scheme))
    # and a message signed with another key is refused
    other = JCSession(key=b"another", signature_scheme=scheme).serialize(sent)
    with pytest.raises(SignatureError):
        decode(other, Signer(KEY, scheme))


def test_to_dict_is_jupyter_client_shaped() -> None:
    s = Session()
    parent = s.message("execute_request", {"code": "1"})
    d = s.message("execute_reply", {"status": "ok"}, parent=parent).to_dict()
    assert set(d) == {"header", "msg_id", "msg_type", "parent_header", "metadata", "content", "buffers"}
    assert isinstance(d["header"]["date"], dt.datetime) and isinstance(d["parent_header"]["date"], dt.datetime)
    assert Message.from_dict(d).parent_id == parent.msg_id
    assert Header.from_dict({"msg_id": "a", "msg_type": "b"}).version == "4.0"


def test_importing_the_protocol_leaves_trio_and_zmq_out() -> None:
    code = "import sys, jupervisor.protocol; print(sorted(m for m in ('trio', 'zmq') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
