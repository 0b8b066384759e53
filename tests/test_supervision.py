"""Root supervision against real ipykernel processes: restarts, liveness verdicts, limits."""

from __future__ import annotations

import os
import random
import signal
import sys

import pytest
import trio

import jupervisor
from jupervisor import (
    Backoff,
    KernelDied,
    KernelDiedEvent,
    KernelOptions,
    KernelReady,
    KernelRestarting,
    KernelState,
    KernelStopped,
    LivenessConfig,
    RestartPolicy,
)
from jupervisor.actors import KernelStarting

pytestmark = pytest.mark.integration

IPYKERNEL = (sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}")


def fast_liveness(**kw) -> KernelOptions:
    return KernelOptions(
        heartbeat_interval_s=kw.pop("hb", 0.25),
        liveness=LivenessConfig(
            heartbeat_misses=kw.pop("misses", 3),
            start_grace_s=kw.pop("grace", 5.0),
            probe_interval_s=kw.pop("probe_interval", 0.3),
            probe_timeout_s=kw.pop("probe_timeout", 0.75),
        ),
    )


async def collect(events, into: list) -> None:
    async for ev in events:
        into.append(ev)


async def test_sigkill_is_restarted_with_the_same_id_and_ports() -> None:
    seen: list = []
    async with jupervisor.open_supervisor() as sup, trio.open_nursery() as n:
        n.start_soon(collect, sup.events(), seen)
        with trio.fail_after(30):
            k = await sup.start_kernel("python3")
            await k.execute("x = 1")
            old_pid, info, cf = k.pid, k.connection_info, k.connection_file
            killed_at = trio.current_time()
            os.kill(old_pid, signal.SIGKILL)
            while not (k.state is KernelState.IDLE and k.pid != old_pid):
                await k.wait_for_state(KernelState.IDLE, KernelState.FAILED)
                if k.state is KernelState.FAILED:
                    break
                if k.pid == old_pid:
                    await k.wait_for_state(KernelState.DEAD, KernelState.RESTARTING, KernelState.STARTING)
            back_at = trio.current_time()
            r = await k.execute("x")
        n.cancel_scope.cancel()
    assert k.restarts == 1
    assert r.error is not None and r.error.ename == "NameError"  # a fresh process
    assert k.connection_info.shell_port == info.shell_port and k.connection_file == cf
    kinds = [type(e).__name__ for e in seen if getattr(e, "kernel_id", None) == k.id]
    i = kinds.index("KernelDiedEvent")
    assert kinds[i : i + 4] == ["KernelDiedEvent", "KernelRestarting", "KernelStarting", "KernelReady"]
    died = next(e for e in seen if isinstance(e, KernelDiedEvent))
    assert died.signal == signal.SIGKILL and died.cause == "exited"
    assert back_at - killed_at < 5


async def test_kernel_dying_at_every_start_fails_after_the_intensity_limit(tmp_path) -> None:
    marker = tmp_path / "started-once"
    script = (
        "import os, sys, runpy\n"
        f"m = {str(marker)!r}\n"
        "if os.path.exists(m):\n"
        "    sys.stderr.write('refusing to start again\\n'); sys.exit(4)\n"
        "open(m, 'w').close()\n"
        "sys.argv = ['ipykernel_launcher'] + sys.argv[1:]\n"
        "runpy.run_module('ipykernel_launcher', run_name='__main__')\n"
    )
    spec = jupervisor.KernelSpec(name="once", argv=(sys.executable, "-c", script, "-f", "{connection_file}"))
    policy = RestartPolicy(max_restarts=3, within_s=60, backoff=Backoff(initial_s=0.2, factor=2, jitter=0))
    seen: list = []
    async with jupervisor.open_supervisor() as sup, trio.open_nursery() as n:
        n.start_soon(collect, sup.events(), seen)
        with trio.fail_after(30):
            k = await sup.start_kernel(spec=spec, restart=policy)
            os.kill(k.pid, signal.SIGKILL)
            await k.wait_for_state(KernelState.FAILED)
            with pytest.raises(jupervisor.KernelNotRunning):
                await k.execute("1")
        n.cancel_scope.cancel()
    assert "3 restarts within 60s" in k.failure
    restarting = [e for e in seen if isinstance(e, KernelRestarting)]
    assert [round(e.delay_s, 3) for e in restarting] == [0.0, 0.2, 0.4]
    deaths = [e for e in seen if isinstance(e, KernelDiedEvent)]
    assert [d.cause for d in deaths] == ["exited", "start_failed", "start_failed", "start_failed"]
    assert all("exit code 4" in d.detail for d in deaths[1:])


async def test_sigstop_is_judged_frozen_and_the_waiting_caller_released() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(40):
            k = await sup.start_kernel("python3")  # default liveness: 1 s heartbeat, 3 misses
            pid = k.pid
            got = {}

            async def waiter() -> None:
                try:
                    await k.execute("import time; time.sleep(60)")
                except KernelDied as exc:
                    got["error"], got["at"] = exc, trio.current_time()

            try:
                async with trio.open_nursery() as n:
                    n.start_soon(waiter)
                    await k.wait_for_state(KernelState.BUSY)
                    while k._actor.liveness.beats == 0:  # it has proven it beats
                        await trio.sleep(0.05)
                    stopped_at = trio.current_time()
                    os.kill(pid, signal.SIGSTOP)
            finally:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            while not (k.restarts == 1 and k.state is KernelState.IDLE):
                await k._actor.wait_changed()
            assert (await k.execute("1 + 1")).result == "2"
    assert got["error"].cause == "heartbeat_lost"
    assert got["at"] - stopped_at <= 5.0
    assert k.pid != pid


async def test_busy_kernel_in_a_long_sleep_is_healthy() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel("python3", options=fast_liveness())
            async with trio.open_nursery() as n:
                sleeping = trio.Event()

                async def run() -> None:
                    await k.execute("import time; print('go', flush=True); time.sleep(30)", on_output=lambda o: sleeping.set())

                n.start_soon(run)
                await sleeping.wait()
                # watch ten probe rounds and a dozen heartbeats while it sleeps
                live = k._actor.liveness
                target = live.probes_ok + 10
                while live.probes_ok < target:
                    await trio.sleep(0.1)
                assert live.verdict is None and live.misses_in_a_row == 0
                await k.interrupt()
            assert k.restarts == 0 and k.state is KernelState.IDLE


async def test_heartbeatless_kernel_is_judged_by_its_process_only() -> None:
    code = (
        "import sys, runpy, ipykernel.heartbeat as hb\n"
        "hb.Heartbeat.start = lambda self: None\n"  # a real kernel that never echoes
        "sys.argv = ['ipykernel_launcher'] + sys.argv[1:]\n"
        "runpy.run_module('ipykernel_launcher', run_name='__main__')\n"
    )
    spec = jupervisor.KernelSpec(name="nohb", argv=(sys.executable, "-c", code, "-f", "{connection_file}"))
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel(spec=spec, options=fast_liveness(grace=1.0))
            live = k._actor.liveness
            while live.heartbeat_capable is None:
                await trio.sleep(0.1)
            assert live.heartbeat_capable is False
            for _ in range(5):  # many missed rounds later, it is still alive and answering
                assert (await k.execute("1 + 1")).result == "2"
                await trio.sleep(0.3)
            assert k.restarts == 0 and live.verdict is None


async def test_deliberate_shutdown_is_never_restarted() -> None:
    seen: list = []
    async with jupervisor.open_supervisor() as sup, trio.open_nursery() as n:
        n.start_soon(collect, sup.events(), seen)
        with trio.fail_after(30):
            k = await sup.start_kernel("python3")
            await k.shutdown()
            await trio.testing.wait_all_tasks_blocked()
        n.cancel_scope.cancel()
    mine = [e for e in seen if getattr(e, "kernel_id", None) == k.id]
    assert isinstance(mine[-1], KernelStopped)
    assert not any(isinstance(e, (KernelDiedEvent, KernelRestarting)) for e in mine)
    assert sum(isinstance(e, KernelStarting) for e in mine) == 1
    assert k.state is KernelState.DEAD and sup.kernels() == []


async def test_sixteen_kernels_random_sigkills_each_restarted_others_keep_working() -> None:
    rng = random.Random(1234)
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(120):
            kernels = []
            async with trio.open_nursery() as n:

                async def start() -> None:
                    kernels.append(await sup.start_kernel("python3"))

                for _ in range(16):
                    n.start_soon(start)
            victims = rng.sample(kernels, 5)
            old = {k.id: k.pid for k in victims}
            for k in victims:
                os.kill(k.pid, signal.SIGKILL)
            survivors = [k for k in kernels if k not in victims]
            outs = [(await k.execute("sum(range(10))")).result for k in survivors]
            assert outs == ["45"] * len(survivors)
            for k in victims:
                while k.restarts == 0 or k.state is not KernelState.IDLE:
                    await k.wait_for_state(KernelState.IDLE, KernelState.FAILED, KernelState.RESTARTING,
                                           KernelState.STARTING, KernelState.DEAD)
                    if k.restarts and k.state is KernelState.IDLE:
                        break
                    await k._actor.wait_changed()
                assert k.pid != old[k.id]
                assert (await k.execute("6 * 7")).result == "42"
            assert all(k.restarts == 0 for k in survivors)


async def test_warm_pool_hands_out_a_ready_kernel_and_refills() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            sup.set_warm_pool("python3", 2)
            while sup.warm_kernels("python3") < 2:
                await trio.sleep(0.05)
            assert sup.kernels() == []  # pooled kernels are not handed out yet
            waiting = {a.pid for a in sup._pools["python3"]}
            k = await sup.start_kernel("python3")
            assert k.pid in waiting  # handed out from the pool, not started now
            assert k.state is KernelState.IDLE and (await k.execute("1 + 1")).result == "2"
            assert [x.id for x in sup.kernels()] == [k.id]
            while sup.warm_kernels("python3") < 2:  # refilled in the background
                await trio.sleep(0.05)
            pooled_pid = sup._pools["python3"][0].pid
            os.kill(pooled_pid, signal.SIGKILL)  # pooled kernels are supervised too
            while sup._pools["python3"][0].pid == pooled_pid or sup.warm_kernels("python3") < 2:
                await trio.sleep(0.05)
