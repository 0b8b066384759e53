# The protocol layer's error hierarchy. Every error the sans-io layer raises is a
# ProtocolError (or KernelSpecError / ConnectionInfoError / IllegalTransition), and
# each also subclasses ValueError so generic callers can catch it too. Each error
# carries fields saying which part was wrong; str() renders them in one line.
from __future__ import annotations

import attrs


class ProtocolError(Exception):
    """Frames or messages that do not follow the Jupyter messaging spec."""


@attrs.define(kw_only=True, auto_exc=True)
class FramingError(ProtocolError, ValueError):
    """The multipart frame list has the wrong shape.

    Attributes:
        reason: What is wrong with the frames.
        n_frames: How many frames were received.
    """

    reason: str
    n_frames: int = 0

    def __str__(self) -> str:
        return f"malformed frames ({self.n_frames} frames): {self.reason}"


@attrs.define(kw_only=True, auto_exc=True)
class SignatureError(ProtocolError, ValueError):
    """The HMAC signature is missing or does not match the message."""

    reason: str

    def __str__(self) -> str:
        return f"bad signature: {self.reason}"


@attrs.define(kw_only=True, auto_exc=True)
class ReplayError(ProtocolError, ValueError):
    """A message with an already-seen valid signature arrived again."""

    def __str__(self) -> str:
        return "replayed message: its signature was already seen"


@attrs.define(kw_only=True, auto_exc=True)
class MessageFormatError(ProtocolError, ValueError):
    """A part of the message is not valid JSON or not the expected shape.

    Attributes:
        part: Which part (header, parent_header, metadata, content).
        reason: What is wrong with it.
    """

    part: str
    reason: str

    def __str__(self) -> str:
        return f"bad {self.part}: {self.reason}"


@attrs.define(kw_only=True, auto_exc=True)
class KernelSpecError(ValueError):
    """A kernelspec (kernel.json) is malformed.

    Attributes:
        source: The file (or other source) the spec came from.
        field: The offending field, or "" for the whole document.
        reason: What was expected and what came.
    """

    source: str
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"invalid kernelspec {where}: {self.reason}"


@attrs.define(kw_only=True, auto_exc=True)
class ConnectionInfoError(ValueError):
    """Connection info (a connection file) is malformed.

    Attributes:
        source: The file (or other source) the info came from.
        field: The offending key.
        reason: What was expected and what came.
    """

    source: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"invalid connection info {self.source}: {self.field}: {self.reason}"


@attrs.define(kw_only=True, auto_exc=True)
class IllegalTransition(ValueError):
    """A lifecycle event that is not allowed in the current state."""

    state: str
    event: str

    def __str__(self) -> str:
        return f"illegal lifecycle transition: {self.event} in state {self.state}"
