"""The restarter actor on virtual time, with in-memory kernel mailboxes (no processes)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from jupervisor.actors import (
    Backoff,
    Escalated,
    GiveUp,
    KernelDiedEvent,
    KernelReady,
    KernelStopped,
    OnExhausted,
    Restart,
    RestartPolicy,
    Strategy,
    Supervise,
    open_mailbox,
    run_restarter,
)


def died(kid: str, **kw) -> KernelDiedEvent:
    return KernelDiedEvent(kernel_id=kid, cause=kw.pop("cause", "exited"), signal=kw.pop("signal", 9), **kw)


async def drain(inbox) -> list:
    await trio.testing.wait_all_tasks_blocked()
    out = []
    while True:
        try:
            out.append(inbox.receive_nowait())
        except trio.WouldBlock:
            return out


async def test_restarts_with_backoff_then_fails(autojump_clock) -> None:
    published = []
    policy = RestartPolicy(max_restarts=2, within_s=60, backoff=Backoff(initial_s=1, jitter=0))
    async with trio.open_nursery() as n:
        restarter = await n.start(run_restarter, published.append)
        box, inbox = open_mailbox()
        restarter.post(Supervise("k1", box, policy))
        restarter.post(died("k1"))
        first = await drain(inbox)
        await trio.sleep(5)
        restarter.post(died("k1", cause="start_failed", signal=None))
        second = await drain(inbox)
        restarter.post(died("k1", cause="heartbeat_lost", signal=None))
        third = await drain(inbox)
        n.cancel_scope.cancel()
    assert [(c.attempt, c.delay_s, c.cause) for c in first] == [(1, 0.0, "exited")]
    assert [(c.attempt, c.delay_s, c.cause) for c in second] == [(2, 1.0, "start_failed")]
    assert len(third) == 1 and isinstance(third[0], GiveUp) and "2 restarts within 60s" in third[0].reason


async def test_deliberate_and_unknown_kernels_are_never_restarted(autojump_clock) -> None:
    async with trio.open_nursery() as n:
        restarter = await n.start(run_restarter, lambda ev: None)
        box, inbox = open_mailbox()
        restarter.post(Supervise("k1", box, RestartPolicy()))
        restarter.post(died("k1", deliberate=True))
        restarter.post(died("someone-else"))
        assert await drain(inbox) == []
        restarter.post(KernelStopped(kernel_id="k1"))
        restarter.post(died("k1"))
        assert await drain(inbox) == []
        n.cancel_scope.cancel()


async def test_stable_period_resets_the_backoff(autojump_clock) -> None:
    policy = RestartPolicy(max_restarts=10, backoff=Backoff(initial_s=1, jitter=0, reset_after_s=30))
    async with trio.open_nursery() as n:
        restarter = await n.start(run_restarter, lambda ev: None)
        box, inbox = open_mailbox()
        restarter.post(Supervise("k1", box, policy))
        for _ in range(3):
            restarter.post(died("k1"))
            restarter.post(KernelReady(kernel_id="k1", pid=1))
            await trio.sleep(1)
        before = await drain(inbox)
        await trio.sleep(31)
        restarter.post(died("k1"))
        after = await drain(inbox)
        n.cancel_scope.cancel()
    assert [c.delay_s for c in before] == [0.0, 1.0, 2.0]
    assert [(c.attempt, c.delay_s) for c in after] == [(1, 0.0)]


async def test_one_for_all_restarts_the_group_and_escalation_fails_it(autojump_clock) -> None:
    published = []
    policy = RestartPolicy(strategy=Strategy.ONE_FOR_ALL, max_restarts=1, on_exhausted=OnExhausted.ESCALATE)
    async with trio.open_nursery() as n:
        restarter = await n.start(run_restarter, published.append)
        boxes = {k: open_mailbox() for k in ("a", "b", "c")}
        for k, (box, _) in boxes.items():
            restarter.post(Supervise(k, box, policy, group="g" if k != "c" else "other"))
        restarter.post(died("a"))
        got = {k: await drain(inbox) for k, (_, inbox) in boxes.items()}
        assert [type(c) for c in got["a"]] == [Restart] and [type(c) for c in got["b"]] == [Restart]
        assert got["c"] == []
        restarter.post(died("a"))
        got = {k: await drain(inbox) for k, (_, inbox) in boxes.items()}
        n.cancel_scope.cancel()
    assert [type(c) for c in got["a"]] == [GiveUp] and [type(c) for c in got["b"]] == [GiveUp]
    assert got["c"] == []
    assert [type(e) for e in published] == [Escalated]
    assert trio.current_time() == pytest.approx(0.0)
