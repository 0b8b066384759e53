# Mailboxes: the send side of an actor's inbox. Every actor in jupervisor is one trio
# task reading typed commands from a memory channel; a Mailbox is what other tasks hold
# to talk to it. Actors that also wait on a zmq socket pass a `wake` callback so a new
# command interrupts their socket wait (see _zmqtrio.SocketOwner).
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, TypeVar

import attrs
import trio

T = TypeVar("T")
_LAZY_LIMIT = 64


@attrs.define(eq=False)
class Mailbox(Generic[T]):
    """Where commands for one actor are posted.

    Posting never blocks (actor inboxes are unbounded: their senders are our own
    code, which sends a bounded number of commands per request). Posting to an actor
    that has ended raises `trio.BrokenResourceError`.
    """

    _send: trio.MemorySendChannel[T]
    _wake: Callable[[], None] | None = None

    def post(self, command: T, *, wake: bool = True) -> None:
        """Deliver `command` to the actor.

        Args:
            command: The command.
            wake: Interrupt the actor's socket wait so it acts now. Bookkeeping commands
                that may wait for the actor's next turn pass False (waking costs a
                cancellation).

        Raises:
            trio.BrokenResourceError: the actor has ended.
        """
        try:
            self._send.send_nowait(command)
        except trio.ClosedResourceError:
            raise trio.BrokenResourceError("actor mailbox closed") from None
        if self._wake is not None and (wake or self._send.statistics().current_buffer_used >= _LAZY_LIMIT):
            self._wake()  # lazy commands still wake a quiet actor now and then, so its inbox stays small

    def try_post(self, command: T, *, wake: bool = True) -> bool:
        """Deliver `command` if the actor is still running; returns whether it was delivered."""
        try:
            self.post(command, wake=wake)
        except trio.BrokenResourceError:
            return False
        return True

    def close(self) -> None:
        self._send.close()


def open_mailbox(wake: Callable[[], None] | None = None) -> tuple[Mailbox[T], trio.MemoryReceiveChannel[T]]:
    """Create an actor inbox: the Mailbox others post to, and the receive side the actor reads."""
    send, receive = trio.open_memory_channel[T](math.inf)
    return Mailbox(send, wake), receive


@attrs.define(eq=False)
class Promise(Generic[T]):
    """A one-shot answer to a command: the actor resolves or fails it, the sender waits.

    Example:
        >>> done = Promise()                                   # doctest: +SKIP
        >>> mailbox.post(Shutdown(done=done)); await done.wait()
    """

    _event: trio.Event = attrs.field(factory=trio.Event, init=False)
    _value: object = attrs.field(default=None, init=False)
    _error: BaseException | None = attrs.field(default=None, init=False)

    def resolve(self, value: T | None = None) -> None:
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    @property
    def done(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> T:
        """Wait for the answer; re-raises the actor's error."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
