# A client for a kernel someone else started (jupyter console, a Jupyter server,
# `python -m ipykernel_launcher -f FILE`): channel and heartbeat actors from its
# connection file, no ownership of the process.
from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from ._client import KernelClient
from .actors import (
    Beat,
    ChannelSet,
    Missed,
    call,
    new_context,
    start_channels,
    run_heartbeat,
    HeartbeatConfig,
)
from .protocol import ConnectionInfo, Session, interrupt_request, shutdown_request


@attrs.define(eq=False, init=False)
class ConnectedKernel(KernelClient):
    """A kernel we talk to but do not own.

    Attributes:
        connection_info: Where it listens.
        beats: Heartbeat echoes seen.
        missed_in_a_row: Heartbeat misses since the last echo (0 while it beats).
    """

    connection_info: ConnectionInfo
    channels: ChannelSet
    beats: int = 0
    missed_in_a_row: int = 0

    def __init__(self, kernel_id: str, info: ConnectionInfo, channels: ChannelSet) -> None:
        async def get() -> ChannelSet:
            return channels

        self.__attrs_init__(kernel_id, get, info, channels)

    @property
    def alive(self) -> bool:
        """Whether the heartbeat answered recently (before the first round: True)."""
        return self.missed_in_a_row == 0

    async def interrupt(self, *, timeout: float = 10) -> None:
        """Send interrupt_request on control (we cannot signal a process we do not own)."""
        await call(self.channels, interrupt_request(), wait_for_idle=False, timeout=timeout)

    async def shutdown(self, *, restart: bool = False, timeout: float = 10) -> None:
        """Ask the kernel to shut down (shutdown_request on control); waits for the reply."""
        await call(self.channels, shutdown_request(restart=restart), wait_for_idle=False, timeout=timeout)


@asynccontextmanager
async def connect(
    connection_file: str | os.PathLike[str] | ConnectionInfo,
    *,
    heartbeat_interval_s: float = 1.0,
    connect_timeout_s: float = 2.0,
    iopub_busy_poll_s: float = 0.001,
) -> AsyncIterator[ConnectedKernel]:
    """Connect to a running kernel from its connection file.

    Args:
        connection_file: The kernel's connection file, or its parsed connection info.
        heartbeat_interval_s: Seconds between heartbeat pings.
        connect_timeout_s: How long to wait for the stdin handshake before going on.
        iopub_busy_poll_s: See ``KernelOptions.iopub_busy_poll_s``.

    Raises:
        ConnectionInfoError: the file is not valid connection info.
        FileNotFoundError: no such file.

    Example:
        >>> async with jupervisor.connect("kernel-1234.json") as kernel:   # doctest: +SKIP
        ...     print((await kernel.execute("1 + 1")).result)
    """
    if isinstance(connection_file, ConnectionInfo):
        info, kid = connection_file, "connected"
    else:
        path = Path(connection_file)
        info = ConnectionInfo.from_json(path.read_bytes(), source=str(path))
        kid = path.stem.removeprefix("kernel-")
    ctx = new_context()
    session = Session()
    try:
        async with trio.open_nursery() as n:
            handles = await start_channels(
                n, ctx, info, identity=session.session_id.encode(), kernel_id=kid, iopub_busy_poll_s=iopub_busy_poll_s
            )
            kernel = ConnectedKernel(kid, info, ChannelSet(kid, session, **handles))
            hb_send, hb_recv = trio.open_memory_channel[Beat | Missed](math.inf)
            await n.start(run_heartbeat, HeartbeatConfig(kernel_id=kid, endpoint=info.endpoint("hb"),
                                                         interval_s=heartbeat_interval_s), ctx, hb_send)
            n.start_soon(_track_heartbeat, kernel, hb_recv)
            with trio.move_on_after(connect_timeout_s):  # a live kernel's stdin answers the handshake at once
                await handles["stdin"].connected.wait()
            try:
                yield kernel
            finally:
                n.cancel_scope.cancel()
    finally:
        ctx.destroy(linger=0)


async def _track_heartbeat(kernel: ConnectedKernel, events: trio.MemoryReceiveChannel[Beat | Missed]) -> None:
    async for ev in events:
        if isinstance(ev, Beat):
            kernel.beats += 1
            kernel.missed_in_a_row = 0
        else:
            kernel.missed_in_a_row = ev.in_a_row
