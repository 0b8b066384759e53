"""Deliberately broken kernels (real processes speaking the protocol) never confuse the supervisor."""

from __future__ import annotations

import logging

import psutil
import pytest
import trio

import jupervisor
from jupervisor import KernelOptions, KernelState, LivenessConfig, RestartPolicy

from .kernels import toy_spec

pytestmark = pytest.mark.integration

QUICK = KernelOptions(shutdown_request_timeout_s=1.0, terminate_timeout_s=1.0, kill_timeout_s=2.0, start_timeout_s=10)


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_toy_kernel_works() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(20):
            k = await sup.start_kernel(spec=toy_spec(), options=QUICK)
            r = await k.execute("x = 2\nprint('hi')\nx * 21")
            e = await k.execute("1/0")
            i = await k.execute("input('name? ')", stdin=lambda p, pw: "toy")
    assert (r.stdout, r.result) == ("hi\n", "42")
    assert e.error.ename == "ZeroDivisionError"
    assert i.result == "'toy'"


@pytest.mark.parametrize(
    "behaviours, escalations",
    [(("ignore-shutdown",), ["terminate"]), (("ignore-shutdown", "ignore-sigterm"), ["terminate", "kill"])],
)
async def test_the_shutdown_ladder_stops_kernels_that_ignore_it(behaviours, escalations, caplog) -> None:
    caplog.set_level(logging.INFO)
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(20):
            k = await sup.start_kernel(spec=toy_spec(*behaviours), options=QUICK)
            pid, cf = k.pid, k.connection_file
            await k.shutdown()
    assert gone(pid) and not cf.exists()
    steps = [r.fields["step"] for r in caplog.records if getattr(r, "event", "") == "kernel.escalate"]
    assert steps == escalations


async def test_forged_messages_are_dropped_and_counted_while_work_goes_on() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(20):
            k = await sup.start_kernel(spec=toy_spec("forge-signatures"), options=QUICK)
            results = [await k.execute(f"print({i})\n{i}") for i in range(6)]
            stats = k._actor.channels.iopub.stats
    assert all(r.status == "ok" for r in results)
    assert stats.forged >= 3
    # every message we did accept was genuine; the forged ones never reached a caller
    assert sum(len(r.outputs) for r in results) < 12


async def test_crash_and_hang_on_start_are_clear_errors() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(20):
            with pytest.raises(jupervisor.KernelStartError) as crash:
                await sup.start_kernel(spec=toy_spec("crash-on-start"), options=QUICK)
            with pytest.raises(jupervisor.KernelStartError) as hang:
                await sup.start_kernel(spec=toy_spec("hang-on-start"), options=KernelOptions(start_timeout_s=1.5))
    assert crash.value.exit_code == 3 and "crashing on start as asked" in crash.value.stderr_tail
    assert "no kernel_info_reply within 1.5s" in str(hang.value)
    assert sup.kernels() == []


async def test_slow_starting_kernel_is_waited_for_not_killed() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel(spec=toy_spec("slow-start=2"), options=QUICK)
            assert (await k.execute("1 + 1")).result == "2"
            assert k.restarts == 0


async def test_kernel_that_dies_on_sigint_is_detected_and_restarted() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel(spec=toy_spec("die-on-sigint"), options=QUICK)
            pid = k.pid
            await k.interrupt()
            while not (k.restarts == 1 and k.state is KernelState.IDLE):
                await k._actor.wait_changed()
            assert k.pid != pid and (await k.execute("3")).result == "3"


async def test_heartbeatless_toy_kernel_is_kept() -> None:
    opts = KernelOptions(heartbeat_interval_s=0.2, liveness=LivenessConfig(start_grace_s=0.6, probe_interval_s=0.2))
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(20):
            k = await sup.start_kernel(spec=toy_spec("no-heartbeat"), options=opts, restart=RestartPolicy())
            live = k._actor.liveness
            while live.misses_total < 8:  # many silent heartbeat rounds...
                await trio.sleep(0.1)
            assert live.heartbeat_capable is False and live.verdict is None and k.restarts == 0
            assert (await k.execute("6 * 7")).result == "42"  # ...and it is still the same, working kernel
