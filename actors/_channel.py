# Channel actors: one task per ZeroMQ channel of a kernel (shell, control, stdin: DEALER
# sockets sharing the client's identity; iopub: SUB subscribed to everything).
#
# The actor owns its socket. It reads commands from its inbox (send a message, watch or
# unwatch a parent msg_id, subscribe to everything, fail all watchers) and routes every
# decoded incoming message to the watcher of its parent msg_id, or else to subscribers.
# Delivery never blocks the actor: a watcher whose buffer is full loses that message and
# the loss is counted. A forged, replayed or malformed message is dropped, counted and
# logged; it never ends the actor. Inbox commands are handled before socket input, so a
# Watch posted before a request is sent is always in place before any answer is read.
from __future__ import annotations

import logging
from typing import TypeAlias

import attrs
import trio
import zmq

from ..protocol import ConnectionInfo, Envelope, Message, ProtocolError, ReplayWindow, Signer, decode, encode
from ._errors import KernelDied
from ._log import event
from ._mailbox import Mailbox, open_mailbox
from ._zmqtrio import SocketOwner

log = logging.getLogger("jupervisor.channel")


# ---- what the actor delivers -------------------------------------------------------
@attrs.frozen
class Incoming:
    """A message that arrived on `channel`."""

    channel: str
    message: Message


@attrs.frozen
class Failure:
    """The kernel behind the channel is gone; the error says why."""

    error: BaseException


Delivery: TypeAlias = Incoming | Failure


# ---- what the actor accepts --------------------------------------------------------
@attrs.frozen
class Send:
    """Sign and send `message` on the socket."""

    message: Message


@attrs.frozen
class Watch:
    """Deliver messages whose parent is `msg_id` to `to` (until Unwatch).

    A watcher gets its request's messages except statuses other than ``idle`` (subscribers
    get those); with `msg_types`, only messages of those types and the ``idle`` status.
    Every delivery wakes the watcher's task, so asking for less saves wake-ups.
    """

    msg_id: str
    to: trio.MemorySendChannel[Delivery] = attrs.field(eq=False, repr=False)
    msg_types: frozenset[str] | None = None


@attrs.frozen
class Unwatch:
    msg_id: str


@attrs.frozen
class Subscribe:
    """Deliver every message (of `msg_types`, if given) to `to`, after any watcher."""

    to: trio.MemorySendChannel[Delivery] = attrs.field(eq=False, repr=False)
    msg_types: frozenset[str] | None = None


@attrs.frozen
class FailWatchers:
    """Give every watcher a Failure(error) and forget them all."""

    error: BaseException


ChannelCommand: TypeAlias = Send | Watch | Unwatch | Subscribe | FailWatchers


@attrs.define
class ChannelStats:
    """Counters a channel actor keeps (read-only for others)."""

    received: int = 0
    sent: int = 0
    forged: int = 0
    replayed: int = 0
    malformed: int = 0
    overflowed: int = 0
    unrouted: int = 0


@attrs.frozen(kw_only=True)
class ChannelConfig:
    """How to open one channel socket."""

    name: str
    endpoint: str
    signer: Signer = attrs.field(repr=False)
    identity: bytes = b""
    kernel_id: str = ""
    watch_connection: bool = False
    busy_poll_s: float = 0.0
    """See SocketOwner.spin_s (useful on iopub, where output floods arrive)."""


_SOCKET_TYPES = {"shell": zmq.DEALER, "control": zmq.DEALER, "stdin": zmq.DEALER, "iopub": zmq.SUB}


@attrs.define(eq=False)
class ChannelHandle:
    """What the starter of a channel actor gets back: its mailbox and its counters."""

    name: str
    mailbox: Mailbox[ChannelCommand]
    stats: ChannelStats
    connected: trio.Event = attrs.field(factory=trio.Event)
    """Set once the connection to the kernel completed its handshake (watched for stdin:
    a kernel's ROUTER drops an input_request addressed to a peer it has not yet seen)."""


async def run_channel(
    cfg: ChannelConfig, ctx: zmq.Context, *, task_status: trio.TaskStatus[ChannelHandle] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run one channel actor until cancelled or its mailbox is closed."""
    sock = ctx.socket(_SOCKET_TYPES[cfg.name])
    owner = SocketOwner(sock, spin_s=cfg.busy_poll_s)
    monitor: zmq.Socket | None = None
    try:
        sock.setsockopt(zmq.LINGER, 0)
        if cfg.identity and cfg.name != "iopub":
            sock.setsockopt(zmq.IDENTITY, cfg.identity)
        if cfg.name == "iopub":
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.setsockopt(zmq.RECONNECT_IVL, 20)
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED) if cfg.watch_connection else None
        sock.connect(cfg.endpoint)
        mailbox, inbox = open_mailbox(owner.wake)
        actor = _Channel(cfg, owner)
        handle = ChannelHandle(cfg.name, mailbox, actor.stats)
        if monitor is None:
            handle.connected.set()
        task_status.started(handle)
        try:
            async with trio.open_nursery() as n:
                if monitor is not None:
                    n.start_soon(_watch_handshake, sock, monitor, handle.connected)
                await actor.loop(inbox)
                n.cancel_scope.cancel()
        finally:
            actor.release_watchers(inbox)
            inbox.close()
    finally:
        if monitor is not None and not monitor.closed:
            _stop_monitor(sock, monitor)
        owner.close()


async def start_channels(
    nursery: trio.Nursery, ctx: zmq.Context, info: ConnectionInfo, *, identity: bytes, kernel_id: str,
    iopub_busy_poll_s: float = 0.0,
) -> dict[str, ChannelHandle]:
    """Start the four channel actors of one kernel in `nursery`; returns their handles by name.

    stdin watches its handshake (see ChannelHandle.connected); iopub busy-polls for
    `iopub_busy_poll_s` while output streams in (see SocketOwner.spin_s).
    """
    signer = info.signer()
    handles = {}
    for name in ("shell", "control", "stdin", "iopub"):
        cfg = ChannelConfig(
            name=name, endpoint=info.endpoint(name), signer=signer, identity=identity, kernel_id=kernel_id,
            watch_connection=name == "stdin", busy_poll_s=iopub_busy_poll_s if name == "iopub" else 0.0,
        )
        handles[name] = await nursery.start(run_channel, cfg, ctx)
    return handles


async def _watch_handshake(sock: zmq.Socket, monitor: zmq.Socket, connected: trio.Event) -> None:
    """Own the monitor socket (a separate PAIR socket): set `connected` on the first
    successful handshake, then stop monitoring. No polling: it waits on the monitor's fd."""
    owner = SocketOwner(monitor)
    try:
        while not owner.drain():
            await owner.wait()
        connected.set()
    finally:
        _stop_monitor(sock, monitor)


def _stop_monitor(sock: zmq.Socket, monitor: zmq.Socket) -> None:
    # Disable first: libzmq would otherwise keep pushing events (a disconnect when the
    # kernel restarts) at a monitor nobody reads, which stalls reconnection.
    if not sock.closed:
        sock.disable_monitor()
    if not monitor.closed:
        monitor.close(linger=0)


@attrs.define(eq=False)
class _Channel:
    cfg: ChannelConfig
    owner: SocketOwner
    stats: ChannelStats = attrs.field(factory=ChannelStats)
    replay: ReplayWindow = attrs.field(factory=ReplayWindow)
    watchers: dict[str, Watch] = attrs.field(factory=dict)
    subscribers: list[tuple[trio.MemorySendChannel[Delivery], frozenset[str] | None]] = attrs.field(factory=list)
    outgoing: list[list[bytes]] = attrs.field(factory=list)

    async def loop(self, inbox: trio.MemoryReceiveChannel[ChannelCommand]) -> None:
        """Serve the inbox and the socket until the inbox closes."""
        while True:
            while True:
                try:
                    cmd = inbox.receive_nowait()
                except trio.WouldBlock:
                    break
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                self.handle(cmd)
            while self.outgoing:
                if not self.owner.send(self.outgoing[0]):
                    break
                self.outgoing.pop(0)
                self.stats.sent += 1
            for frames in self.owner.drain():
                self.dispatch(frames)
            if self.outgoing:
                with trio.move_on_after(0.05):
                    await self.owner.wait_writable()
            else:
                await self.owner.wait()

    def handle(self, cmd: ChannelCommand) -> None:
        match cmd:
            case Send(message=msg):
                self.outgoing.append(encode(msg, self.cfg.signer))
            case Watch(msg_id=mid):
                self.watchers[mid] = cmd
            case Unwatch(msg_id=mid):
                self.watchers.pop(mid, None)
            case Subscribe(to=to, msg_types=types):
                self.subscribers.append((to, types))
            case FailWatchers(error=err):
                watchers, self.watchers = self.watchers, {}
                for w in watchers.values():
                    self._deliver(w.to, Failure(err))

    def release_watchers(self, inbox: trio.MemoryReceiveChannel[ChannelCommand]) -> None:
        """On the way out: apply pending FailWatchers, then fail whoever still waits."""
        while True:
            try:
                cmd = inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if isinstance(cmd, FailWatchers):
                self.handle(cmd)
        gone = KernelDied(kernel_id=self.cfg.kernel_id, cause="disconnected", detail=f"{self.cfg.name} channel closed")
        self.handle(FailWatchers(gone))

    def dispatch(self, frames: list[bytes]) -> None:
        try:
            env: Envelope = decode(frames, self.cfg.signer, self.replay)
        except ProtocolError as exc:
            kind = type(exc).__name__
            if kind == "SignatureError":
                self.stats.forged += 1
            elif kind == "ReplayError":
                self.stats.replayed += 1
            else:
                self.stats.malformed += 1
            event(
                log, "channel.drop", logging.WARNING, kernel_id=self.cfg.kernel_id, channel=self.cfg.name,
                reason=str(exc),
            )
            return
        self.stats.received += 1
        msg = env.message
        item = Incoming(self.cfg.name, msg)
        parent = msg.parent_id
        w = self.watchers.get(parent) if parent else None
        delivered = w is not None
        if w is not None and _wanted(w, msg) and not self._deliver(w.to, item):
            self.watchers.pop(parent, None)  # type: ignore[arg-type]
        for sub, types in list(self.subscribers):
            if types is None or msg.msg_type in types:
                delivered = True
                if not self._deliver(sub, item):
                    self.subscribers.remove((sub, types))
        if not delivered:
            self.stats.unrouted += 1

    def _deliver(self, to: trio.MemorySendChannel[Delivery], item: Delivery) -> bool:
        """Send without blocking; False if the receiver is gone."""
        try:
            to.send_nowait(item)
        except trio.WouldBlock:
            self.stats.overflowed += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True


def _wanted(w: Watch, msg: Message) -> bool:
    t = msg.msg_type
    if t == "status":
        return msg.content.get("execution_state") == "idle"
    return w.msg_types is None or t in w.msg_types
