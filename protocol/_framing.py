# Multipart framing: Message <-> [idents..., b"<IDS|MSG>", sig, header, parent, metadata, content, buffers...].
# Rules kept here: check the frame shape first, then the HMAC, then record the digest in
# the replay window, then parse JSON; anything wrong raises a ProtocolError subclass.
from __future__ import annotations

from collections.abc import Sequence

import attrs

from ._adapter import adapt_to_v5
from ._errors import FramingError, MessageFormatError
from ._message import Header, Message, dumps, loads
from ._signing import ReplayWindow, Signer

DELIM = b"<IDS|MSG>"


@attrs.frozen
class Envelope:
    """A decoded message with the routing identities that preceded it."""

    idents: tuple[bytes, ...]
    message: Message
    signature: bytes = b""


def serialize_parts(msg: Message) -> list[bytes]:
    """The four JSON parts of a message, in wire order."""
    return [
        dumps(msg.header.to_dict()),
        dumps(msg.parent_header),
        dumps(msg.metadata),
        dumps(msg.content),
    ]


def encode(msg: Message, signer: Signer, idents: Sequence[bytes] = ()) -> list[bytes]:
    """Encode and sign a message into multipart frames.

    Example:
        >>> from ._message import Session
        >>> frames = encode(Session().message("kernel_info_request"), Signer(b"k"))
        >>> frames[0]
        b'<IDS|MSG>'
    """
    parts = serialize_parts(msg)
    return [*idents, DELIM, signer.sign(parts), *parts, *msg.buffers]


def decode(frames: Sequence[bytes], signer: Signer, replay: ReplayWindow | None = None) -> Envelope:
    """Verify and decode multipart frames.

    Raises:
        FramingError: no delimiter, or fewer than five frames after it.
        SignatureError: unsigned or mismatched HMAC.
        ReplayError: the signature was seen before.
        MessageFormatError: a part is not a JSON object, or the header lacks msg_id/msg_type.
    """
    try:
        i = frames.index(DELIM)
    except ValueError:
        raise FramingError(reason="no <IDS|MSG> delimiter", n_frames=len(frames)) from None
    tail = len(frames) - i - 1
    if tail < 5:
        raise FramingError(reason=f"need a signature and 4 parts after the delimiter, got {tail}", n_frames=len(frames))
    signature = _b(frames[i + 1])
    parts = frames[i + 2 : i + 6]  # HMAC and the JSON codec take any bytes-like frame as it is
    signer.verify(signature, parts)
    if replay is not None:
        replay.record(signature)
    header = Header.from_dict(loads(parts[0], "header"))
    msg = Message(
        header=header,
        parent_header=loads(parts[1], "parent_header"),
        metadata=loads(parts[2], "metadata"),
        content=loads(parts[3], "content"),
        buffers=tuple(_b(b) for b in frames[i + 6 :]),
    )
    if header.version[:1] != "5":
        msg = adapt_to_v5(msg)
    return Envelope(idents=tuple(_b(x) for x in frames[:i]), message=msg, signature=signature)


def _b(frame: bytes) -> bytes:
    return frame if type(frame) is bytes else bytes(frame)


__all__ = ["DELIM", "Envelope", "decode", "encode", "serialize_parts", "MessageFormatError"]
