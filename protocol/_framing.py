# Multipart framing: Message <-> [idents..., b"<IDS|MSG>", sig, header, parent, metadata, content, buffers...].
# Rules kept here: check the frame shape first, then the HMAC, then record the digest in
# the replay window, then parse JSON; anything wrong raises a ProtocolError subclass.
# Messages whose header says protocol 4.x (or has no version) are adapted to 5.x.
from __future__ import annotations

from collections.abc import Sequence

import attrs

from ._adapter import adapt_to_v5
from ._errors import FramingError, MessageFormatError
from ._message import Header, Message, _dumps_parts, _loads_parts, _make_message, _unchecked_constructor
from ._signing import ReplayWindow, Signer

DELIM = b"<IDS|MSG>"


@attrs.frozen
class Envelope:
    """A decoded message with the routing identities that preceded it."""

    idents: tuple[bytes, ...]
    message: Message
    signature: bytes = b""


_make_envelope = _unchecked_constructor(Envelope, ("idents", "message", "signature"))


def serialize_parts(msg: Message) -> list[bytes]:
    """The four JSON parts of a message, in wire order."""
    return _dumps_parts(msg.header.to_dict(), msg.parent_header, msg.metadata, msg.content)


def encode(msg: Message, signer: Signer, idents: Sequence[bytes] = ()) -> list[bytes]:
    """Encode and sign a message into multipart frames.

    Raises:
        TypeError: a part holds a value JSON cannot carry.
        ValueError: a string holds a lone surrogate (not UTF-8), or a float is NaN/infinite
            and the stdlib codec is in use.

    Example:
        >>> from ._message import Session
        >>> frames = encode(Session().message("kernel_info_request"), Signer(b"k"))
        >>> frames[0]
        b'<IDS|MSG>'
    """
    parts = _dumps_parts(msg.header.to_dict(), msg.parent_header, msg.metadata, msg.content)
    frames = [*idents, DELIM, signer.sign(parts), *parts]
    if msg.buffers:
        frames.extend(msg.buffers)
    return frames


def decode(frames: Sequence[bytes], signer: Signer, replay: ReplayWindow | None = None) -> Envelope:
    """Verify and decode multipart frames.

    Frames may be any bytes-like objects (``bytes``, ``memoryview``, zmq frames' buffers);
    identities, the signature and buffers come out as ``bytes``.

    Raises:
        FramingError: no delimiter, or fewer than five frames after it.
        SignatureError: unsigned or mismatched HMAC.
        ReplayError: the signature was seen before.
        MessageFormatError: a part is not a JSON object, the header lacks msg_id/msg_type,
            a header field has the wrong type or date, or 4.x content cannot be adapted.

    Example:
        >>> from ._message import Session
        >>> signer = Signer(b"k")
        >>> decode(encode(Session().message("status"), signer, [b"id"]), signer).idents
        (b'id',)
    """
    try:
        i = frames.index(DELIM)
    except ValueError:
        raise FramingError(reason="no <IDS|MSG> delimiter", n_frames=len(frames)) from None
    n = len(frames)
    if n - i < 6:
        raise FramingError(reason=f"need a signature and 4 parts after the delimiter, got {n - i - 1}", n_frames=n)
    signature = frames[i + 1]
    if type(signature) is not bytes:
        signature = bytes(signature)
    parts = frames[i + 2 : i + 6]  # HMAC and the JSON codec take any bytes-like frame as it is
    signer.verify(signature, parts)
    if replay is not None:
        replay.record(signature)
    h, p, m, c = _loads_parts(parts)
    header = Header.from_dict(h)
    buffers = () if n == i + 6 else tuple(_b(b) for b in frames[i + 6 :])
    msg = _make_message(header, p, m, c, buffers)
    version = header.version
    if version[:2] != "5." and _older_than_5(version):
        msg = adapt_to_v5(msg)
    idents = () if i == 0 else tuple(_b(x) for x in frames[:i])
    return _make_envelope(idents, msg, signature)


def _older_than_5(version: str) -> bool:
    """Whether a header version names a major version below 5 (``4.1``, ``4``, ``3.0``).

    Versions 5.x and later, and ones that are not numbers, are left alone.
    """
    major = version.partition(".")[0].strip()
    return major.isdigit() and major.isascii() and int(major) < 5


def _b(frame: bytes) -> bytes:
    return frame if type(frame) is bytes else bytes(frame)


__all__ = ["DELIM", "Envelope", "decode", "encode", "serialize_parts", "MessageFormatError"]
