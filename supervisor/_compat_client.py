# jupyter_client-compatible kernel clients, backed by jupervisor's channel actors.
#
# Each compat channel subscribes to one channel actor and feeds a thread-safe queue of
# jupyter_client-shaped message dicts (header dates as datetimes), so existing loops over
# `get_iopub_msg(timeout=...)` keep working and `queue.Empty` signals a timeout. Unlike
# jupyter_client, a reply is never discarded because another caller is waiting: every
# message reaches the queue of its channel. The blocking client is the one core; the
# async client awaits the same methods on a worker thread.
from __future__ import annotations

import asyncio
import functools
import queue
import time
from collections.abc import Callable
from typing import Any

import trio

from ._connect import connect
from ._portal import Portal
from .actors import Send, Subscribe
from .protocol import ConnectionInfo, Session, execute_request
from .protocol import comm_info_request, complete_request, history_request, inspect_request
from .protocol import input_reply, is_complete_request, kernel_info_request, shutdown_request


class ZMQChannel:
    """A compat channel (shell, iopub, stdin, control): a queue of message dicts."""

    def __init__(self, client: BlockingKernelClient, name: str) -> None:
        self._client, self.name = client, name
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()

    def get_msg(self, block: bool = True, timeout: float | None = None) -> dict[str, Any]:
        """The next message. Raises queue.Empty when none comes within `timeout`."""
        return self._queue.get(block=block, timeout=timeout)

    def get_msgs(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def msg_ready(self) -> bool:
        return not self._queue.empty()

    def take(self, predicate: Callable[[dict[str, Any]], bool], timeout: float | None) -> dict[str, Any]:
        """Remove and return the first message matching `predicate`, leaving the others
        queued for their own readers (jupyter_client discards them). Raises queue.Empty."""
        q = self._queue
        deadline = None if timeout is None else time.monotonic() + timeout
        with q.not_empty:
            while True:
                for i, m in enumerate(q.queue):
                    if predicate(m):
                        del q.queue[i]
                        return m
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise queue.Empty
                q.not_empty.wait(left)

    def send(self, msg: dict[str, Any]) -> None:
        """Send a jupyter_client-shaped message dict on this channel."""
        self._client._send_dict(self.name, msg)

    def is_alive(self) -> bool:
        return self._client.channels_running

    def start(self) -> None:
        """Channels start with `start_channels`; kept for compatibility."""

    def stop(self) -> None:
        """Channels stop with `stop_channels`; kept for compatibility."""


class HBChannel:
    """The compat heartbeat channel."""

    def __init__(self, client: BlockingKernelClient) -> None:
        self._client = client
        self.time_to_dead = 3.0
        self._paused = False

    def is_beating(self) -> bool:
        kernel = self._client._kernel
        return kernel is not None and not self._paused and kernel.alive

    def pause(self) -> None:
        self._paused = True

    def unpause(self) -> None:
        self._paused = False

    def is_alive(self) -> bool:
        return self._client.channels_running

    def start(self) -> None:
        """Started with `start_channels`."""

    def stop(self) -> None:
        """Stopped with `stop_channels`."""


class BlockingKernelClient:
    """jupyter_client's BlockingKernelClient API over jupervisor's actors."""

    allow_stdin = True

    def __init__(self, connection_file: str | None = None, **kwargs: Any) -> None:
        self.connection_file = connection_file
        self._info: ConnectionInfo | None = kwargs.pop("connection_info", None)
        self.session = Session()
        self._portal: Portal | None = None
        self._exit: Callable[[], None] | None = None
        self._kernel: Any = None
        self.shell_channel = ZMQChannel(self, "shell")
        self.iopub_channel = ZMQChannel(self, "iopub")
        self.stdin_channel = ZMQChannel(self, "stdin")
        self.control_channel = ZMQChannel(self, "control")
        self.hb_channel = HBChannel(self)

    # ---- connection info -------------------------------------------------------------
    def load_connection_file(self, connection_file: str | None = None) -> None:
        path = connection_file or self.connection_file
        if path is None:
            raise ValueError("no connection file given")
        self.connection_file = str(path)
        with open(path, "rb") as f:
            self._info = ConnectionInfo.from_json(f.read(), source=str(path))

    def load_connection_info(self, info: dict[str, Any]) -> None:
        self._info = ConnectionInfo.from_dict(info)

    def get_connection_info(self, session: bool = False) -> dict[str, Any]:
        if self._info is None:
            raise RuntimeError("no connection info loaded")
        d = self._info.to_dict()
        d["key"] = self._info.key
        return d

    # ---- channels ------------------------------------------------------------------
    @property
    def channels_running(self) -> bool:
        return self._kernel is not None

    def start_channels(self, shell: bool = True, iopub: bool = True, stdin: bool = True, hb: bool = True,
                       control: bool = True) -> None:
        """Connect the channels (all five are opened; the flags are accepted for compatibility)."""
        if self._kernel is not None:
            return
        if self._info is None:
            self.load_connection_file()
        self._portal = Portal()
        self._kernel, self._exit = self._portal.enter(lambda: connect(self._info))
        self.session = self._kernel.channels.session
        for ch in (self.shell_channel, self.iopub_channel, self.stdin_channel, self.control_channel):
            self._portal.call(self._pump, ch)

    async def _pump(self, ch: ZMQChannel) -> None:
        send, receive = trio.open_memory_channel(1_000_000)
        self._kernel.channels.get(ch.name).mailbox.post(Subscribe(send))

        async def run() -> None:
            async for item in receive:
                if hasattr(item, "message"):
                    ch._queue.put(item.message.to_dict())

        self._portal._nursery.start_soon(run)

    def stop_channels(self) -> None:
        if self._exit is not None:
            try:
                self._exit()
            finally:
                self._portal.close()
        self._kernel = self._exit = self._portal = None

    # ---- sending -------------------------------------------------------------------
    def _send(self, channel: str, msg_type: str, content: dict[str, Any], parent: Any = None) -> str:
        if self._kernel is None:
            raise RuntimeError("channels are not running: call start_channels() first")
        msg = self.session.message(msg_type, content, parent=parent)
        box = self._kernel.channels.get(channel).mailbox
        self._portal.run_sync(box.post, Send(msg))
        return msg.msg_id

    def _send_dict(self, channel: str, d: dict[str, Any]) -> None:
        from .protocol import Message

        box = self._kernel.channels.get(channel).mailbox
        self._portal.run_sync(box.post, Send(Message.from_dict(d)))

    def _maybe_reply(self, msg_id: str, reply: bool, timeout: float | None, channel: str = "shell") -> Any:
        return BlockingKernelClient._recv_reply(self, msg_id, timeout=timeout, channel=channel) if reply else msg_id

    def _recv_reply(self, msg_id: str, timeout: float | None = None, channel: str = "shell") -> dict[str, Any]:
        ch = self.control_channel if channel == "control" else self.shell_channel
        return ch.take(lambda m: m["parent_header"].get("msg_id") == msg_id, timeout)

    # ---- requests --------------------------------------------------------------------
    def execute(self, code: str, silent: bool = False, store_history: bool = True,
                user_expressions: dict[str, Any] | None = None, allow_stdin: bool | None = None,
                stop_on_error: bool = True, reply: bool = False, timeout: float | None = None) -> Any:
        allow = self.allow_stdin if allow_stdin is None else allow_stdin
        req = execute_request(code, silent=silent, store_history=store_history, user_expressions=user_expressions,
                              allow_stdin=allow, stop_on_error=stop_on_error)
        return self._maybe_reply(self._send("shell", req.msg_type, dict(req.content)), reply, timeout)

    def complete(self, code: str, cursor_pos: int | None = None, reply: bool = False, timeout: float | None = None) -> Any:
        req = complete_request(code, cursor_pos)
        return self._maybe_reply(self._send("shell", req.msg_type, dict(req.content)), reply, timeout)

    def inspect(self, code: str, cursor_pos: int | None = None, detail_level: int = 0, reply: bool = False,
                timeout: float | None = None) -> Any:
        req = inspect_request(code, cursor_pos, detail_level)
        return self._maybe_reply(self._send("shell", req.msg_type, dict(req.content)), reply, timeout)

    def history(self, raw: bool = True, output: bool = False, hist_access_type: str = "range", reply: bool = False,
                timeout: float | None = None, **kwargs: Any) -> Any:
        req = history_request(raw=raw, output=output, hist_access_type=hist_access_type, **kwargs)
        return self._maybe_reply(self._send("shell", req.msg_type, dict(req.content)), reply, timeout)

    def kernel_info(self, reply: bool = False, timeout: float | None = None) -> Any:
        return self._maybe_reply(self._send("shell", "kernel_info_request", {}), reply, timeout)

    def comm_info(self, target_name: str | None = None, reply: bool = False, timeout: float | None = None) -> Any:
        req = comm_info_request(target_name)
        return self._maybe_reply(self._send("shell", req.msg_type, dict(req.content)), reply, timeout)

    def is_complete(self, code: str, reply: bool = False, timeout: float | None = None) -> Any:
        return self._maybe_reply(self._send("shell", "is_complete_request", dict(is_complete_request(code).content)), reply, timeout)

    def input(self, string: str) -> None:
        """Answer the kernel's pending input_request."""
        self._send("stdin", "input_reply", dict(input_reply(string).content))

    def shutdown(self, restart: bool = False, reply: bool = False, timeout: float | None = None) -> Any:
        msg_id = self._send("control", "shutdown_request", dict(shutdown_request(restart=restart).content))
        return self._maybe_reply(msg_id, reply, timeout, channel="control")

    def get_shell_msg(self, block: bool = True, timeout: float | None = None) -> dict[str, Any]:
        return self.shell_channel.get_msg(block, timeout)

    def get_iopub_msg(self, block: bool = True, timeout: float | None = None) -> dict[str, Any]:
        return self.iopub_channel.get_msg(block, timeout)

    def get_stdin_msg(self, block: bool = True, timeout: float | None = None) -> dict[str, Any]:
        return self.stdin_channel.get_msg(block, timeout)

    def get_control_msg(self, block: bool = True, timeout: float | None = None) -> dict[str, Any]:
        return self.control_channel.get_msg(block, timeout)

    def is_alive(self) -> bool:
        return self._kernel is not None and self._kernel.alive

    def wait_for_ready(self, timeout: float | None = None) -> None:
        """Wait until the kernel answers kernel_info and iopub delivers.

        Raises:
            RuntimeError: no answer within `timeout`, as jupyter_client raises.
        """
        if not self.channels_running:
            self.start_channels()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            msg_id = BlockingKernelClient.kernel_info(self)
            try:
                left = None if deadline is None else max(0.01, deadline - time.monotonic())
                BlockingKernelClient._recv_reply(self, msg_id, timeout=min(left or 1.0, 1.0))
                break
            except queue.Empty:
                if deadline is not None and time.monotonic() > deadline:
                    raise RuntimeError("Kernel didn't respond in %d seconds" % timeout) from None
        while True:  # iopub is live once anything arrives on it
            try:
                self.iopub_channel.get_msg(timeout=1.0)
                break
            except queue.Empty:
                if deadline is not None and time.monotonic() > deadline:
                    raise RuntimeError("Kernel didn't respond in %d seconds" % timeout) from None
                BlockingKernelClient.kernel_info(self)
        self.iopub_channel.get_msgs()  # flush, as jupyter_client does
        self.shell_channel.get_msgs()

    def execute_interactive(self, code: str, silent: bool = False, store_history: bool = True,
                            user_expressions: dict[str, Any] | None = None, allow_stdin: bool | None = None,
                            stop_on_error: bool = True, timeout: float | None = None,
                            output_hook: Callable[[dict[str, Any]], Any] | None = None,
                            stdin_hook: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
        """Execute and route its iopub output to `output_hook` until idle; returns the reply.

        Raises:
            TimeoutError: no idle status and reply within `timeout`.
        """
        allow = (self.allow_stdin and stdin_hook is not None) if allow_stdin is None else allow_stdin
        msg_id = BlockingKernelClient.execute(self, code, silent=silent, store_history=store_history, user_expressions=user_expressions,
                              allow_stdin=allow, stop_on_error=stop_on_error)
        hook = output_hook or _print_output
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("Timeout waiting for output")
            try:
                msg = self.iopub_channel.get_msg(timeout=min(left, 0.05) if left is not None else 0.05)
            except queue.Empty:
                if allow and self.stdin_channel.msg_ready():
                    req = self.stdin_channel.get_msg()
                    if stdin_hook is not None:
                        stdin_hook(req)
                    else:
                        self.input(input(req["content"].get("prompt", "")))
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            hook(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return BlockingKernelClient._recv_reply(self, msg_id, timeout=left)
        except queue.Empty:
            raise TimeoutError("Timeout waiting for reply") from None


def _print_output(msg: dict[str, Any]) -> None:
    t, c = msg["msg_type"], msg["content"]
    if t == "stream":
        print(c["text"], end="")
    elif t in ("display_data", "execute_result") and "text/plain" in c.get("data", {}):
        print(c["data"]["text/plain"])
    elif t == "error":
        print("\n".join(c.get("traceback", [])))


KernelClient = BlockingKernelClient

_ASYNC = ("get_shell_msg", "get_iopub_msg", "get_stdin_msg", "get_control_msg", "wait_for_ready",
          "execute_interactive", "_recv_reply")


class AsyncKernelClient(BlockingKernelClient):
    """The same client with the waiting methods as coroutines, awaited on a worker thread so
    the asyncio loop never blocks. Requests are awaitable too (they return the msg_id, or the
    reply with ``reply=True``). Generated from the blocking methods: one core, no copy."""


def _awaitable(name: str) -> Callable[..., Any]:
    sync = getattr(BlockingKernelClient, name)

    @functools.wraps(sync)
    async def method(self: Any, *a: Any, **k: Any) -> Any:
        return await asyncio.to_thread(sync, self, *a, **k)

    return method


def _request(name: str) -> Callable[..., Any]:
    """As jupyter_client's async client: the msg_id at once, or an awaitable reply with reply=True."""
    sync = getattr(BlockingKernelClient, name)

    @functools.wraps(sync)
    def method(self: Any, *a: Any, **k: Any) -> Any:
        if k.get("reply"):
            return asyncio.to_thread(sync, self, *a, **k)
        return sync(self, *a, **k)

    return method


for _name in _ASYNC:
    setattr(AsyncKernelClient, _name, _awaitable(_name))
for _name in ("execute", "complete", "inspect", "history", "kernel_info", "comm_info", "is_complete", "shutdown"):
    setattr(AsyncKernelClient, _name, _request(_name))
del _name


__all__ = ["AsyncKernelClient", "BlockingKernelClient", "HBChannel", "KernelClient", "ZMQChannel"]
