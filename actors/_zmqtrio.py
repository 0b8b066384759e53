# The only trio <-> pyzmq glue in jupervisor.
#
# A ZeroMQ socket exposes one edge-triggered file descriptor (zmq.FD): it becomes
# readable when the socket's event state *changes*, not while messages are pending.
# So the task that owns a socket must (1) wait on the fd only after zmq.EVENTS said
# nothing is pending, and (2) re-read zmq.EVENTS after every send or receive, since
# either may consume the edge. Exactly one task owns each socket (two waiters on one
# edge-triggered fd can hang). `SocketOwner` is that task's helper: it drains what is
# pending, and its `wait` sleeps until the socket has input or someone `wake()`s it
# because the owner's mailbox got a message.
from __future__ import annotations

import zmq

import trio

import attrs


# plain ints: pyzmq's enum flags cost a Python call per operation on the hot path
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
_NOBLOCK, _SNDMORE = int(zmq.NOBLOCK), int(zmq.NOBLOCK | zmq.SNDMORE)
_MAX_POLLS = 100_000  # far beyond any real window (a poll costs microseconds)


def new_context() -> zmq.Context:
    """A ZeroMQ context for one supervisor: one I/O thread, sockets never block close."""
    ctx = zmq.Context(io_threads=1)
    ctx.setsockopt(zmq.LINGER, 0)
    # five sockets per kernel: the default cap of 1023 would stop us near 200 kernels
    ctx.set(zmq.MAX_SOCKETS, min(65535, ctx.get(zmq.SOCKET_LIMIT)))
    return ctx


@attrs.define(eq=False)
class SocketOwner:
    """Drives one zmq socket from the one trio task that owns it.

    Example:
        >>> owner = SocketOwner(ctx.socket(zmq.DEALER))        # doctest: +SKIP
        >>> while True:
        ...     for frames in owner.drain(): handle(frames)
        ...     await owner.wait()
    """

    socket: zmq.Socket
    spin_s: float = 0.0
    """While input streams in (two batches less than this apart), `wait` keeps polling for up
    to this long after the last input instead of sleeping at once (0: never). On VMs each
    sleep-and-wake of an idle vCPU costs the sending kernel too: bench/consumers.py."""
    _wait_scope: trio.CancelScope | None = attrs.field(default=None, init=False)
    _fd: int = attrs.field(init=False)
    _woken: bool = attrs.field(default=False, init=False)
    max_batch: int = 256
    _last_input: float = attrs.field(default=-1.0, init=False)
    _prev_input: float = attrs.field(default=-1.0, init=False)

    def __attrs_post_init__(self) -> None:
        self._fd = self.socket.FD

    def wake(self) -> None:
        """Make a pending or the next `wait` return at once (called by mailbox senders)."""
        self._woken = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    def readable(self) -> bool:
        """Whether a message is pending (re-reads zmq.EVENTS, which also re-arms the fd edge)."""
        return bool(self.socket.getsockopt(_EVENTS) & _POLLIN)

    def drain(self) -> list[list[bytes]]:
        """Receive every pending multipart message without blocking (at most `max_batch`).

        Asks zmq.EVENTS before each message rather than catching zmq.Again (an exception
        per drain); a multipart message is delivered whole, so its frames never block.
        """
        out: list[list[bytes]] = []
        sock = self.socket
        recv, get = sock.recv, sock.getsockopt
        for _ in range(self.max_batch):
            if not get(_EVENTS) & _POLLIN:
                break
            try:  # zero-copy frames tell `more` without a getsockopt call; .bytes copies out
                frame = recv(_NOBLOCK, copy=False)
                parts = [frame.bytes]
                while frame.more:
                    frame = recv(_NOBLOCK, copy=False)
                    parts.append(frame.bytes)
            except zmq.Again:
                break
            except zmq.ZMQError as exc:
                if exc.errno == zmq.EFSM:  # a REQ socket that holds no pending request
                    break
                raise
            out.append(parts)
        if out and self.spin_s:
            self._prev_input, self._last_input = self._last_input, trio.current_time()
        return out

    def send(self, frames: list[bytes]) -> bool:
        """Send without blocking; returns False when the socket cannot take it now (HWM).

        zmq queues a multipart message atomically: if the first frame is accepted, the rest are.
        """
        send = self.socket.send
        try:
            send(frames[0], _SNDMORE if len(frames) > 1 else _NOBLOCK)
        except zmq.Again:
            return False
        last = len(frames) - 1
        for i in range(1, last + 1):
            send(frames[i], _NOBLOCK if i == last else _SNDMORE)
        return True

    async def wait(self, timeout: float = float("inf")) -> None:
        """Sleep until input may be pending, `wake()` was called, or `timeout` passed.

        Returns at once if input is already pending or a wake came since the last wait.
        While input streams in (see `spin_s`) it polls before it sleeps.
        """
        if self._woken:
            self._woken = False
            await trio.lowlevel.checkpoint()
            return
        if self.readable():
            await trio.lowlevel.checkpoint()
            return
        if self.spin_s and self._last_input - self._prev_input < self.spin_s:
            # input is streaming in: poll a moment longer, yielding to other tasks, before sleeping
            now = trio.current_time()
            deadline = now + timeout
            until = min(self._last_input + self.spin_s, deadline)
            for _ in range(_MAX_POLLS):  # bounded by count too: a MockClock may never reach `until`
                if now >= until:
                    break
                await trio.lowlevel.checkpoint()
                if self._woken or self.readable():
                    self._woken = False
                    return
                now = trio.current_time()
            if now >= deadline:
                await trio.lowlevel.checkpoint()
                return
            timeout = deadline - now
        scope = trio.CancelScope() if timeout == float("inf") else trio.move_on_after(timeout)
        with scope:
            self._wait_scope = scope
            try:
                await trio.lowlevel.wait_readable(self._fd)
            finally:
                self._wait_scope = None
        self._woken = False

    async def wait_writable(self) -> None:
        """Sleep until the socket can take a message (rarely needed: DEALER/REQ sends queue)."""
        while not self.socket.getsockopt(zmq.EVENTS) & zmq.POLLOUT:
            await trio.lowlevel.wait_readable(self._fd)

    def close(self) -> None:
        """Close the socket at once (linger 0): nothing is left open afterwards."""
        if not self.socket.closed:
            self.socket.close(linger=0)
