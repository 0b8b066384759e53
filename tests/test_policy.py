"""The restart policy: pure decisions with exact numbers, and a restart loop on virtual time."""

from __future__ import annotations

import pytest
import trio

from jupervisor.actors import Backoff, OnExhausted, RestartHistory, RestartPolicy, RestartType, Strategy, decide
from jupervisor.actors._policy import Escalate, Exited, GiveUp, HeartbeatLost, Hung, Ignore, Restart, StartFailed

KILLED = Exited(None, 9)
CLEAN = Exited(0)


def test_backoff_sequence_is_exponential_and_capped() -> None:
    b = Backoff(initial_s=0.5, factor=2, max_s=4, jitter=0)
    assert [b.delay(n, 0.5) for n in range(1, 8)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert Backoff(initial_s=0.5, jitter=0, first_immediate=False).delay(1, 0.0) == 0.5


def test_jitter_bounds() -> None:
    b = Backoff(initial_s=1.0, factor=2, jitter=0.25)
    assert b.delay(3, 0.0) == pytest.approx(2.0 * 0.75)
    assert b.delay(3, 0.999999) == pytest.approx(2.0 * 1.25, rel=1e-5)
    assert b.delay(3, 0.5) == pytest.approx(2.0)


def test_successive_decisions_back_off_then_give_up() -> None:
    policy = RestartPolicy(max_restarts=3, within_s=60, backoff=Backoff(initial_s=1, jitter=0))
    h = RestartHistory()
    delays = []
    now = 0.0
    for _ in range(3):
        d = decide(policy, h, KILLED, now, 0.5)
        assert isinstance(d, Restart)
        delays.append((d.attempt, d.delay_s))
        h = h.record_restart(now)
        now += 1
    assert delays == [(1, 0.0), (2, 1.0), (3, 2.0)]
    final = decide(policy, h, KILLED, now, 0.5)
    assert isinstance(final, GiveUp) and "3 restarts within 60s" in final.reason


def test_intensity_window_forgets_old_restarts() -> None:
    policy = RestartPolicy(max_restarts=2, within_s=10)
    h = RestartHistory().record_restart(0.0).record_restart(1.0)
    assert isinstance(decide(policy, h, KILLED, 5.0, 0.5), GiveUp)
    assert isinstance(decide(policy, h, KILLED, 11.5, 0.5), Restart)


def test_reset_after_stable_period() -> None:
    policy = RestartPolicy(max_restarts=100, backoff=Backoff(initial_s=1, jitter=0, reset_after_s=30))
    h = RestartHistory()
    for t in (0.0, 1.0, 2.0):
        h = h.record_restart(t)
    assert decide(policy, h, KILLED, 3.0, 0.5) == Restart(4.0, 4)
    h = h.record_healthy(5.0)
    assert decide(policy, h, KILLED, 20.0, 0.5) == Restart(4.0, 4)  # not yet stable for 30 s
    assert decide(policy, h, KILLED, 35.0, 0.5) == Restart(0.0, 1)  # stable: back to the first step


def test_restart_types() -> None:
    h = RestartHistory()
    permanent = RestartPolicy(restart=RestartType.PERMANENT)
    transient = RestartPolicy(restart="transient")
    temporary = RestartPolicy(restart="temporary")
    assert isinstance(decide(permanent, h, CLEAN, 0, 0.5), Restart)
    assert isinstance(decide(transient, h, CLEAN, 0, 0.5), Ignore)
    for cause in (KILLED, Exited(1), HeartbeatLost(3), Hung("x"), StartFailed("y")):
        assert isinstance(decide(transient, h, cause, 0, 0.5), Restart)
        assert isinstance(decide(temporary, h, cause, 0, 0.5), Ignore)


def test_one_for_all_and_escalation() -> None:
    policy = RestartPolicy(strategy=Strategy.ONE_FOR_ALL, max_restarts=1, on_exhausted=OnExhausted.ESCALATE)
    d = decide(policy, RestartHistory(), KILLED, 0, 0.5)
    assert isinstance(d, Restart) and d.scope is Strategy.ONE_FOR_ALL
    assert isinstance(decide(policy, RestartHistory().record_restart(0), KILLED, 1, 0.5), Escalate)


def test_invalid_policy_values_name_the_field() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=2)
    with pytest.raises(ValueError):
        RestartPolicy(restart="sometimes")


async def test_restart_loop_on_virtual_time(autojump_clock) -> None:
    """A fake kernel that dies 0.1 s after each start, restarted by the policy's delays."""
    policy = RestartPolicy(max_restarts=3, within_s=100, backoff=Backoff(initial_s=1.0, factor=2, jitter=0))
    history = RestartHistory()
    starts = []
    while True:
        starts.append(trio.current_time())
        await trio.sleep(0.1)  # the kernel runs, then dies
        d = decide(policy, history, KILLED, trio.current_time(), 0.5)
        if not isinstance(d, Restart):
            break
        history = history.record_restart(trio.current_time())
        await trio.sleep(d.delay_s)
    assert isinstance(d, GiveUp)
    assert starts == pytest.approx([0.0, 0.1, 1.2, 3.3])
    assert trio.current_time() == pytest.approx(3.4)
