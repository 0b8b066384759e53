# One request/answer exchange with a kernel over its channel actors.
#
# An Exchange posts Watch commands for the new msg_id to the iopub, stdin and the
# request's own channel actors *before* posting the Send, then yields everything routed
# to it: iopub side effects (until status idle) and the reply (on the request's
# channel); input_requests are answered through a handler, or with an empty value when
# there is none. A Failure from any channel (the kernel died) raises at once. Watches are
# removed on the way out, whatever happens. `call` collects a whole exchange.
from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from ..protocol import Message, Request, Session, input_reply
from ._channel import ChannelHandle, Failure, Incoming, Send, Unwatch, Watch
from ._errors import KernelDied, RequestTimeout
from ._mailbox import Mailbox

StdinHandler = Callable[[str, bool], "str | Awaitable[str]"]
"""Answers an input_request: called with (prompt, password), returns the text."""


@attrs.frozen
class ChannelSet:
    """The channel actors of one kernel incarnation (read-only for requesters)."""

    kernel_id: str
    session: Session = attrs.field(eq=False)
    shell: ChannelHandle
    control: ChannelHandle
    stdin: ChannelHandle
    iopub: ChannelHandle

    def get(self, name: str) -> ChannelHandle:
        return getattr(self, name)


@attrs.frozen
class Answer:
    """What came back for one request: the reply and the iopub messages in order."""

    request: Message
    reply: Message | None
    iopub: tuple[Message, ...]

    @property
    def content(self) -> Mapping[str, Any]:
        return self.reply.content if self.reply is not None else {}


@attrs.define(eq=False)
class Exchange:
    """One request in flight; iterate it for the messages it causes.

    Example:
        >>> async with Exchange(channels, execute_request("print(1)")) as ex:   # doctest: +SKIP
        ...     async for msg in ex:
        ...         print(msg.msg_type)
    """

    channels: ChannelSet
    req: Request
    wait_for_idle: bool = True
    stdin: StdinHandler | None = None
    metadata: Mapping[str, Any] | None = None
    buffer: int = 100_000
    iopub_types: frozenset[str] | None = None
    """Only these iopub message types are wanted (None: all); fewer deliveries, fewer wake-ups."""
    request: Message = attrs.field(init=False)
    reply: Message | None = attrs.field(default=None, init=False)
    idle: bool = attrs.field(default=False, init=False)
    _receive: trio.MemoryReceiveChannel[Failure | Incoming] = attrs.field(init=False)
    _watched: list[Mailbox] = attrs.field(factory=list, init=False)

    async def __aenter__(self) -> Exchange:
        self.start()  # no checkpoint here: iterating waits on the answer at once
        return self

    def start(self) -> None:
        """Post the watches and the request (synchronous: nothing can slip in between)."""
        ch = self.channels
        self.request = ch.session.request(self.req, metadata=self.metadata)
        self.idle = not self.wait_for_idle
        # not open_memory_channel[...]: subscripting builds typing objects on every request
        send, self._receive = trio.open_memory_channel(self.buffer)
        names = ["iopub", self.req.channel] + (["stdin"] if self.req.channel == "shell" else [])
        # A Watch needs no wake-up: each channel actor reads its inbox before its socket,
        # so the Watch is in place before any answer to the Send below can be routed.
        for name in dict.fromkeys(names):
            box = ch.get(name).mailbox
            types = self.iopub_types if name == "iopub" else None
            _post(box, Watch(self.request.msg_id, send, types), ch.kernel_id, wake=False)
            self._watched.append(box)
        _post(ch.get(self.req.channel).mailbox, Send(self.request), ch.kernel_id)

    def close(self) -> None:
        for box in self._watched:
            box.try_post(Unwatch(self.request.msg_id), wake=False)
        self._watched.clear()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> Exchange:
        return self

    async def __anext__(self) -> Message:
        """The next iopub output (status messages are consumed here) or the reply.

        Raises:
            KernelDied: the kernel died while we waited.
        """
        while self.reply is None or not self.idle:
            item = await self._receive.receive()
            if isinstance(item, Failure):
                raise item.error
            m = item.message
            if item.channel == "iopub":
                if m.msg_type == "status":
                    if m.content.get("execution_state") == "idle":
                        self.idle = True
                    continue
                return m
            if item.channel == "stdin":
                if m.msg_type == "input_request":
                    await self._answer_input(m)
                continue
            if item.channel == self.req.channel and m.msg_type.endswith("_reply") and self.reply is None:
                self.reply = m
                return m
        raise StopAsyncIteration

    async def _answer_input(self, request: Message) -> None:
        prompt = str(request.content.get("prompt", ""))
        password = bool(request.content.get("password", False))
        value: Any = ""
        if self.stdin is not None:
            value = self.stdin(prompt, password)
            if inspect.isawaitable(value):
                value = await value
        ch = self.channels
        reply = ch.session.message("input_reply", input_reply(str(value)).content, parent=request)
        _post(ch.stdin.mailbox, Send(reply), ch.kernel_id)


async def call(
    channels: ChannelSet,
    req: Request,
    *,
    timeout: float | None = None,
    wait_for_idle: bool = True,
    on_iopub: Callable[[Message], Any] | None = None,
    stdin: StdinHandler | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Answer:
    """Send `req` and collect its reply and iopub output.

    Args:
        channels: The kernel's channel actors.
        req: A request built by ``jupervisor.protocol``'s builders.
        timeout: Seconds to wait for the whole answer (None: no limit).
        wait_for_idle: Also wait for iopub ``status: idle`` with this request as parent.
        on_iopub: Called with each iopub output as it arrives (awaited if it returns an awaitable).
        stdin: Answers input_requests.
        metadata: Request metadata.

    Raises:
        KernelDied: the kernel died while we waited.
        RequestTimeout: no complete answer within `timeout`.
    """
    iopub: list[Message] = []
    ex = Exchange(channels, req, wait_for_idle=wait_for_idle, stdin=stdin, metadata=metadata)
    try:
        with trio.fail_after(math.inf if timeout is None else timeout):
            async with ex:
                async for m in ex:
                    if m is ex.reply:
                        continue
                    iopub.append(m)
                    if on_iopub is not None:
                        r = on_iopub(m)
                        if inspect.isawaitable(r):
                            await r
    except trio.TooSlowError:
        raise RequestTimeout(kernel_id=channels.kernel_id, msg_type=req.msg_type, timeout_s=timeout or 0) from None
    return Answer(ex.request, ex.reply, tuple(iopub))


def _post(box: Mailbox, command: object, kernel_id: str, *, wake: bool = True) -> None:
    try:
        box.post(command, wake=wake)
    except trio.BrokenResourceError:
        raise KernelDied(kernel_id=kernel_id, cause="disconnected", detail="its channels are closed") from None
