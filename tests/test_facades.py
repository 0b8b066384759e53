"""The blocking and asyncio facades over the one trio core, against real ipykernel."""

from __future__ import annotations

import asyncio
import threading
import time

import psutil
import pytest

import jupervisor
import jupervisor.aio
import jupervisor.blocking
from jupervisor import KernelState

pytestmark = pytest.mark.integration


def test_blocking_api_end_to_end() -> None:
    with jupervisor.blocking.open_supervisor() as sup:
        k = sup.start_kernel("python3")
        r = k.execute("import sys; print('o'); print('e', file=sys.stderr); 6 * 7", timeout=30)
        assert (r.stdout, r.stderr, r.result) == ("o\n", "e\n", "42")
        assert [o["text"] for o in k.stream("for i in range(3): print(i, flush=True)")] != []
        assert k.execute("input('q? ')", stdin=lambda p, pw: "answer").result == "'answer'"
        assert k.complete("impo")["matches"][0] == "import"
        assert k.is_complete("for x in y:")["status"] == "incomplete"
        done = threading.Event()
        box = []

        def run() -> None:
            box.append(k.execute("import time; print('go', flush=True); time.sleep(60)", on_output=lambda o: done.set()))

        t = threading.Thread(target=run)
        t.start()
        assert done.wait(30)
        for _ in range(3):  # again if ipykernel missed the SIGINT (tests/helpers.py says when)
            k.interrupt()
            t.join(10)
            if not t.is_alive():
                break
        assert box[0].error.ename == "KeyboardInterrupt"
        k.execute("x = 1")
        k.restart()
        assert k.execute("'x' in dir()").result == "False"
        pid = k.pid
        k.shutdown()
        assert k.state is KernelState.DEAD
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_blocking_api_from_four_threads_at_once() -> None:
    with jupervisor.blocking.open_supervisor() as sup:
        kernels = [sup.start_kernel("python3") for _ in range(2)]
        results: dict[tuple[int, int], str] = {}
        errors = []

        def worker(n: int) -> None:
            try:
                for i in range(10):
                    k = kernels[(n + i) % 2]
                    results[n, i] = k.execute(f"{n} * 100 + {i}").result
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    assert results == {(n, i): str(n * 100 + i) for n in range(4) for i in range(10)}


def test_leaving_the_with_block_after_an_exception_shuts_kernels_down() -> None:
    pids = []
    with pytest.raises(ZeroDivisionError):
        with jupervisor.blocking.open_supervisor() as sup:
            pids.append(sup.start_kernel("python3").pid)
            1 / 0  # noqa: B018
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE


def test_asyncio_loop_keeps_ticking_while_waiting_and_cancellation_is_clean() -> None:
    async def main() -> tuple[int, str, str]:
        async with jupervisor.aio.open_supervisor() as sup:
            k = await sup.start_kernel("python3")
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            started = time.monotonic()
            r = await k.execute("import time; time.sleep(1.0); 'slept'")
            elapsed = time.monotonic() - started
            ticker.cancel()
            # cancelling an awaiting task cancels the request; the kernel stays usable
            task = asyncio.create_task(k.execute("import time; time.sleep(30)"))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await k.interrupt()
            await k.wait_for_state(KernelState.IDLE)  # else ipykernel aborts what queues behind the error
            after = await k.execute("'still here'")
            outs = [o async for o in k.stream("print('s')")]
            assert outs[0]["text"] == "s\n"
            return ticks, elapsed, r.result, after.result

    ticks, elapsed, result, after = asyncio.run(main())
    assert result == "'slept'" and after == "'still here'"
    assert ticks >= 0.5 * elapsed / 0.01  # the loop ran its timer throughout the 1 s wait


def test_blocking_connect_to_a_kernel_we_started(tmp_path) -> None:
    with jupervisor.blocking.open_supervisor() as sup:
        k = sup.start_kernel("python3")
        k.execute("shared = 'from the owner'")
        with jupervisor.blocking.connect(k.connection_file) as c:
            assert c.execute("shared").result == "'from the owner'"


def test_asyncio_stdin_restart_shutdown_and_connect() -> None:
    async def main() -> None:
        async with jupervisor.aio.open_supervisor() as sup:
            k = await sup.start_kernel("python3")
            r = await k.execute("input('> ')", stdin=lambda p, pw: "typed")
            assert r.result == "'typed'"
            await k.execute("x = 1")
            pid = k.pid
            await k.restart()
            assert k.pid != pid and (await k.execute("'x' in dir()")).result == "False"
            async with jupervisor.aio.connect(k.connection_file) as client:
                assert (await client.execute("40 + 2")).result == "42"
            await k.shutdown()
            assert k.state is KernelState.DEAD

    asyncio.run(main())


_CTRL_C_SCRIPT = """
import sys
import jupervisor, jupervisor.blocking
with jupervisor.blocking.open_supervisor() as sup:
    k = sup.start_kernel("python3")
    print("ready", flush=True)
    try:
        k.execute_interruptible("import time; print('go', flush=True); time.sleep(60)",
                                on_output=lambda o: print("started", flush=True))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    # the kernel was interrupted too: it goes idle at once instead of sleeping a minute
    k.wait_for_state(jupervisor.KernelState.IDLE)
    print(k.execute("'still usable'", timeout=20).result, flush=True)
"""


def test_ctrl_c_interrupts_the_wait_and_the_kernel() -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _CTRL_C_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        assert proc.wait(30) == 0
        assert rest.split() == ["interrupted", "'still", "usable'"]
    finally:
        if proc.poll() is None:
            proc.kill()
