# Kernel websocket framings, sans-io: the legacy JSON text frame (what jupyter_server's
# gateway client relays) and the binary `v1.kernel.websocket.jupyter.org` frame:
# [n: u64][n offsets: u64...][channel][header][parent_header][metadata][content][buffers...],
# little-endian, where the offsets mark where the channel and each part end.
from __future__ import annotations

import json
from collections.abc import Sequence

from ._errors import FramingError, MessageFormatError
from ._framing import serialize_parts
from ._message import Header, Message, format_date, loads

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"


def encode_v1(channel: str, msg: Message) -> bytes:
    """One message as a v1 binary websocket frame.

    Example:
        >>> from ._message import Session
        >>> decode_v1(encode_v1("shell", Session().message("kernel_info_request")))[0]
        'shell'
    """
    parts = [*serialize_parts(msg), *msg.buffers]
    chan = channel.encode("utf-8")
    offsets = [8 * (1 + 1 + len(parts) + 1)]
    offsets.append(offsets[-1] + len(chan))
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    head = len(offsets).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return b"".join([head, chan, *parts])


def decode_v1(data: bytes) -> tuple[str, Message]:
    """The channel and message of a v1 binary websocket frame.

    Raises:
        FramingError: the offsets do not describe the frame.
        MessageFormatError: a part is not a JSON object.
    """
    if len(data) < 8:
        raise FramingError(reason="v1 frame shorter than its offset count", n_frames=1)
    n = int.from_bytes(data[:8], "little")
    if n < 6 or len(data) < 8 * (n + 1):
        raise FramingError(reason=f"v1 frame with {n} offsets", n_frames=1)
    offsets = [int.from_bytes(data[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
    if offsets != sorted(offsets) or offsets[-1] > len(data) or offsets[0] != 8 * (n + 1):
        raise FramingError(reason="v1 frame offsets out of order or out of range", n_frames=1)
    channel = data[offsets[0] : offsets[1]].decode("utf-8", "replace")
    parts = [data[offsets[i] : offsets[i + 1]] for i in range(1, n - 1)]
    header = Header.from_dict(loads(parts[0], "header"))
    msg = Message(
        header=header,
        parent_header=loads(parts[1], "parent_header"),
        metadata=loads(parts[2], "metadata"),
        content=loads(parts[3], "content"),
        buffers=tuple(parts[4:]),
    )
    return channel, msg


def encode_json(channel: str, msg: Message) -> str:
    """One message as a legacy JSON text websocket frame (buffers are not carried)."""
    d = {
        "header": {**msg.header.to_dict(), "date": format_date(msg.header.date)},
        "msg_id": msg.msg_id,
        "msg_type": msg.msg_type,
        "parent_header": dict(msg.parent_header),
        "metadata": dict(msg.metadata),
        "content": dict(msg.content),
        "buffers": [],
        "channel": channel,
    }
    return json.dumps(d, default=str)


def decode_json(text: str | bytes) -> tuple[str, Message]:
    """The channel and message of a legacy JSON websocket frame.

    Raises:
        MessageFormatError: not JSON, no channel, or a part of the wrong shape.
    """
    try:
        d = json.loads(text)
    except ValueError:
        raise MessageFormatError(part="frame", reason="not JSON") from None
    if not isinstance(d, dict) or not isinstance(d.get("channel"), str):
        raise MessageFormatError(part="frame", reason="no channel")
    return d.pop("channel"), Message.from_dict(d)


__all__: Sequence[str] = ["V1_PROTOCOL", "decode_json", "decode_v1", "encode_json", "encode_v1"]
