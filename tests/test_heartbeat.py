"""The heartbeat actor against real REP peers on inproc sockets, on trio's mock clock.

inproc delivery is synchronous (a send signals the peer's fd before it returns), so the
autojump clock only jumps when every task really waits for time.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
import zmq

from jupervisor.actors import Beat, HeartbeatConfig, Missed, SocketOwner, new_context, run_heartbeat
from jupervisor.actors._heartbeat import Ticker
from jupervisor.actors._heartbeat import next_tick


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def _echo(sock: zmq.Socket, pings: list[float], *, answer: float = math.inf) -> None:
    """Echo the first `answer` pings, record the time of every ping."""
    owner = SocketOwner(sock)
    while True:
        for frames in owner.drain():
            pings.append(trio.current_time())
            if len(pings) <= answer:
                owner.send(frames)
        await owner.wait()


def test_next_tick() -> None:
    assert next_tick(0.0, 1.0) == 0.0
    assert next_tick(0.2, 1.0) == 1.0
    assert next_tick(3.0, 0.5) == 3.0
    assert next_tick(3.01, 0.5) == 3.5


@pytest.mark.parametrize("shared", [False, True], ids=["own-timers", "shared-ticker"])
async def test_heartbeats_started_apart_ping_in_the_same_pass(clock: trio.testing.MockClock, shared: bool) -> None:
    """Two actors started 0.3 s apart ping on the same grid points after their first round,
    with their own timers or the supervisor's one shared timer alike."""
    ctx = new_context()
    ticker = Ticker() if shared else None
    peers = [ctx.socket(zmq.REP) for _ in range(2)]
    pings: list[list[float]] = [[], []]
    events_send, events = trio.open_memory_channel[Beat | Missed](math.inf)
    try:
        async with trio.open_nursery() as n:
            if ticker is not None:
                n.start_soon(ticker.run)
            for i, sock in enumerate(peers):
                sock.bind(f"inproc://hb-{i}")
                n.start_soon(_echo, sock, pings[i])
            start = trio.current_time()
            for name, i in (("a", 0), ("b", 1)):
                cfg = HeartbeatConfig(kernel_id=name, endpoint=f"inproc://hb-{i}", ticker=ticker)
                await n.start(run_heartbeat, cfg, ctx, events_send)
                await trio.sleep(0.3)
            await trio.sleep(4.7)
            n.cancel_scope.cancel()
    finally:
        for sock in peers:
            sock.close(linger=0)
        ctx.term()
    first = [p[0] - start for p in pings]
    assert first == pytest.approx([0.0, 0.3])
    later = [[round(t - start, 6) for t in p[1:]] for p in pings]
    assert later[0] == later[1] == [1.0, 2.0, 3.0, 4.0, 5.0]
    reported = [events.receive_nowait() for _ in range(2)]
    assert {(type(e), e.kernel_id) for e in reported} == {(Beat, "a"), (Beat, "b")}  # steady beats add nothing
    with pytest.raises(trio.WouldBlock):
        events.receive_nowait()
    if ticker is not None:
        assert ticker._ticks.keys() <= {start + 6.0}  # nothing left behind but the next tick


@asynccontextmanager
async def _silent_after(endpoint: str, answer: int) -> AsyncIterator[tuple[zmq.Context, list[float], trio.Nursery]]:
    """A ROUTER peer on `endpoint` echoing the first `answer` pings (a REP peer would take no
    second ping before it answered); yields the context, the ping times and a nursery."""
    ctx = new_context()
    peer = ctx.socket(zmq.ROUTER)
    pings: list[float] = []
    try:
        async with trio.open_nursery() as n:
            peer.bind(endpoint)
            n.start_soon(lambda: _echo(peer, pings, answer=answer))
            yield ctx, pings, n
            n.cancel_scope.cancel()
    finally:
        peer.close(linger=0)
        ctx.term()


async def test_silent_peer_is_missed_once_per_round(clock: trio.testing.MockClock) -> None:
    """A peer that never echoes yields Missed 1, 2, 3 ... one per grid interval, on a fresh socket each time."""
    events_send, events = trio.open_memory_channel[Beat | Missed](math.inf)
    async with _silent_after("inproc://hb-silent", 0) as (ctx, pings, n):
        cfg = HeartbeatConfig(kernel_id="s", endpoint="inproc://hb-silent", interval_s=0.5)
        await n.start(run_heartbeat, cfg, ctx, events_send)
        got = []
        with trio.fail_after(3):
            while len(got) < 3:
                got.append(await events.receive())
    assert got == [Missed("s", 1), Missed("s", 2), Missed("s", 3)]
    assert pings[:3] == [0.0, 0.5, 1.0]  # each round reached the peer: the replaced REQ socket works


async def test_a_kernel_that_stops_answering_is_missed_at_the_next_tick(clock: trio.testing.MockClock) -> None:
    """Steady rounds check the echo at the tick: the first unanswered ping is a Missed one interval later."""
    events_send, events = trio.open_memory_channel[Beat | Missed](math.inf)
    async with _silent_after("inproc://hb-stops", 3) as (ctx, pings, n):
        start = trio.current_time()
        await n.start(run_heartbeat, HeartbeatConfig(kernel_id="k", endpoint="inproc://hb-stops"), ctx, events_send)
        first = await events.receive()
        missed = await events.receive()
        missed_at = trio.current_time() - start
        again = await events.receive()
    assert type(first) is Beat and first.kernel_id == "k"
    assert missed == Missed("k", 1) and missed_at == pytest.approx(4.0)  # ping at 3.0 went unanswered
    assert again == Missed("k", 2)


async def test_ticker_wakes_sleepers_at_their_deadlines(clock: trio.testing.MockClock) -> None:
    """One timer: sleepers on the same deadline wake together; an earlier deadline asked for later fires first."""
    ticker = Ticker()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, deadline: float) -> None:
        await ticker.sleep_until(deadline)
        woke.append((name, trio.current_time()))

    async with trio.open_nursery() as n:
        n.start_soon(ticker.run)
        start = trio.current_time()
        for name in ("a", "b", "c"):
            n.start_soon(sleeper, name, start + 2.0)
        await trio.sleep(0.5)
        n.start_soon(sleeper, "early", start + 1.0)  # the timer is already waiting for 2.0
        n.start_soon(sleeper, "past", start + 0.1)  # already due: fires at once
        await trio.sleep(3)
        n.cancel_scope.cancel()
    assert sorted((round(t - start, 6), name) for name, t in woke) == [
        (0.5, "past"), (1.0, "early"), (2.0, "a"), (2.0, "b"), (2.0, "c")
    ]

