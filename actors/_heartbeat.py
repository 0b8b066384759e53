# The heartbeat actor: REQ ping/echo on a kernel's hb port at a fixed interval.
#
# It owns its REQ socket. Each round sends a ping and waits about `interval_s` for the
# echo; an echo is a Beat, silence is a Missed (with the count of misses in a row) and
# the socket is replaced (a REQ socket that lost its reply is stuck). It reports to one
# `events` channel and never blocks on it; a Beat is reported only for the first echo and
# the first echo after misses (steady beating is the absence of news). Deciding what misses mean is the
# restarter's job, not this actor's.
#
# While the kernel answers, a round costs one wake-up: at the tick the actor checks that
# the last ping was echoed and sends the next. Only the first round and rounds after a
# miss wait on the socket, to report the news (and the round trip) at once.
#
# Rounds run on a grid (multiples of the interval on trio's clock): each echo may take
# until the grid point that is 0.5-1.5 intervals away (exactly one interval once on the
# grid), so every heartbeat actor of a supervisor pings in the same scheduler pass: one
# wake-up per interval for all kernels instead of one per kernel (idle CPU is wake-ups).
from __future__ import annotations

import logging
import math
from typing import TypeAlias

import attrs
import trio
import zmq

from ._zmqtrio import SocketOwner

log = logging.getLogger("jupervisor.heartbeat")


@attrs.frozen
class Beat:
    """The kernel echoed a ping after `rtt_s` seconds."""

    kernel_id: str
    rtt_s: float


@attrs.frozen
class Missed:
    """No echo within the interval; `in_a_row` misses since the last beat."""

    kernel_id: str
    in_a_row: int


HeartbeatEvent: TypeAlias = Beat | Missed


@attrs.define(eq=False)
class Ticker:
    """One timer for many heartbeat actors: those sleeping until the same grid point wake
    from one shared event instead of one deadline each (with hundreds of kernels, per-actor
    timers were a third of the supervisor's idle CPU). Run `run` in a nursery first.

    Example:
        >>> ticker = Ticker()                                    # doctest: +SKIP
        >>> nursery.start_soon(ticker.run)
        >>> await ticker.sleep_until(trio.current_time() + 1)
    """

    _ticks: dict[float, trio.Event] = attrs.field(factory=dict, init=False)
    _scope: trio.CancelScope | None = attrs.field(default=None, init=False)

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until `deadline` on trio's clock (shared with everyone asking for it)."""
        tick = self._ticks.get(deadline)
        if tick is None:
            tick = self._ticks[deadline] = trio.Event()
            if self._scope is not None and deadline < self._scope.deadline:
                self._scope.deadline = deadline
        await tick.wait()

    async def run(self) -> None:
        """The one timer: fire each tick when its time comes, until cancelled."""
        while True:
            with trio.CancelScope(deadline=min(self._ticks, default=math.inf)) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            for due in [t for t in self._ticks if t <= now]:
                self._ticks.pop(due).set()


@attrs.frozen(kw_only=True)
class HeartbeatConfig:
    """Where and how often to ping; `ticker` shares one timer between many actors."""

    kernel_id: str
    endpoint: str
    interval_s: float = 1.0
    ticker: Ticker | None = attrs.field(default=None, eq=False)


async def run_heartbeat(
    cfg: HeartbeatConfig,
    ctx: zmq.Context,
    events: trio.MemorySendChannel[HeartbeatEvent],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Ping the kernel every `interval_s` until cancelled, reporting Beat/Missed to `events`."""
    sleep_until = cfg.ticker.sleep_until if cfg.ticker is not None else trio.sleep_until
    misses = 0
    steady = False  # the last round was answered: check the next echo at the tick, no wake-up for it
    owner = _connect(ctx, cfg.endpoint)
    task_status.started()
    try:
        while True:
            start = trio.current_time()
            # the grid point about one interval away (between 0.5 and 1.5 intervals)
            deadline = next_tick(start + cfg.interval_s / 2, cfg.interval_s)
            ping = b"%d" % int(start * 1e6)
            answered = False
            if owner.send([ping]):
                if steady:
                    await sleep_until(deadline)
                    answered = _echoed(owner, ping)
                else:
                    while not (answered := _echoed(owner, ping)) and trio.current_time() < deadline:
                        await owner.wait(deadline - trio.current_time())
            if answered:
                if not steady:  # the first echo, or the first after misses: news
                    _report(events, Beat(cfg.kernel_id, trio.current_time() - start))
                misses, steady = 0, True
            else:
                misses, steady = misses + 1, False
                _report(events, Missed(cfg.kernel_id, misses))
                owner.close()
                owner = _connect(ctx, cfg.endpoint)
            await sleep_until(deadline)
    finally:
        owner.close()


def _echoed(owner: SocketOwner, ping: bytes) -> bool:
    return any(frames == [ping] for frames in owner.drain())


def next_tick(t: float, interval_s: float) -> float:
    """The first multiple of `interval_s` at or after `t` (the shared heartbeat grid)."""
    return math.ceil(t / interval_s) * interval_s


def _connect(ctx: zmq.Context, endpoint: str) -> SocketOwner:
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return SocketOwner(sock)


def _report(events: trio.MemorySendChannel[HeartbeatEvent], ev: HeartbeatEvent) -> None:
    try:
        events.send_nowait(ev)
    except trio.WouldBlock:
        pass  # the listener is behind; the next report carries the news
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
