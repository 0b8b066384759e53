"""The public trio API against real ipykernel processes."""

from __future__ import annotations

import os
import signal
import sys

import pytest
import trio

import jupervisor
from jupervisor import KernelDied, KernelState

from .helpers import interrupt_running

pytestmark = pytest.mark.integration


async def test_execute_outputs_of_every_kind() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel("python3")
            code = (
                "import sys\n"
                "from IPython.display import display, HTML\n"
                "print('out1')\n"
                "print('err1', file=sys.stderr)\n"
                "display(HTML('<b>x</b>'))\n"
                "print('out2')\n"
                "6 * 7\n"
            )
            r = await k.execute(code)
    assert r.ok and r.status == "ok"
    assert r.execution_count == 1
    assert r.stdout == "out1\nout2\n"
    assert r.stderr == "err1\n"
    assert r.result == "42"
    kinds = [o["output_type"] for o in r.outputs]
    assert kinds[-1] == "execute_result" and kinds.count("display_data") == 1
    shown = kinds.index("display_data")
    assert r.outputs[shown]["data"]["text/html"] == "<b>x</b>"
    before = "".join(o["text"] for o in r.outputs[:shown] if o["output_type"] == "stream" and o["name"] == "stdout")
    assert before == "out1\n"  # outputs keep their order around the display (stream chunks may split)


async def test_execute_error_and_display_update() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel("python3")
            err = await k.execute("1/0")
            upd = await k.execute(
                "from IPython.display import display, update_display\n"
                "display('first', display_id='d1')\n"
                "update_display('second', display_id='d1')\n"
            )
            cleared = await k.execute(
                "from IPython.display import clear_output\nprint('gone')\nclear_output()\nprint('kept')"
            )
    assert err.status == "error"
    assert err.error is not None and err.error.ename == "ZeroDivisionError"
    assert err.outputs[-1]["output_type"] == "error"
    assert [o["data"]["text/plain"] for o in upd.outputs] == ["'second'"]
    assert cleared.outputs == ({"output_type": "stream", "name": "stdout", "text": "kept\n"},)
    assert cleared.stdout == "gone\nkept\n"


async def test_stream_yields_outputs_in_order() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel("python3")
            texts = []
            async for out in k.stream("import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.05)"):
                texts.append(out["text"])
    assert "".join(texts) == "0\n1\n2\n"
    assert len(texts) >= 2  # they arrived as they were printed, not as one block


async def test_stdin_answered_and_refused() -> None:
    prompts = []

    def answer(prompt: str, password: bool) -> str:
        prompts.append((prompt, password))
        return "Ada"

    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel("python3")
            r = await k.execute("name = input('who? ')\nprint('hello', name)", stdin=answer)
            refused = await k.execute("input('again? ')")
    assert prompts == [("who? ", False)]
    assert r.stdout == "hello Ada\n"
    assert refused.status == "error"
    assert refused.error is not None and "StdinNotImplementedError" in refused.error.ename


async def test_interrupt_then_keep_using_and_restart_clears_state() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            k = await sup.start_kernel("python3")
            await k.execute("x = 41")
            code = "import time; print('sleeping', flush=True); time.sleep(60)"
            interrupted = await interrupt_running(k, code)  # SIGINT reaches the code, not ipykernel's idle loop
            assert interrupted.error is not None and interrupted.error.ename == "KeyboardInterrupt"
            assert (await k.execute("x + 1")).result == "42"
            pid = k.pid
            await k.restart()
            assert k.pid != pid and k.state is KernelState.IDLE
            after = await k.execute("x")
            assert after.error is not None and after.error.ename == "NameError"
            assert (await k.execute("1 + 1")).result == "2"


async def test_concurrent_callers_get_their_own_replies() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            k = await sup.start_kernel("python3")
            results: dict[int, jupervisor.ExecuteResult] = {}

            async def one(i: int) -> None:
                results[i] = await k.execute(f"print('caller {i}'); {i} * 10")

            async with trio.open_nursery() as n:
                for i in range(12):
                    n.start_soon(one, i)
    for i in range(12):
        assert results[i].stdout == f"caller {i}\n"
        assert results[i].result == str(i * 10)
    assert len({r.execution_count for r in results.values()}) == 12


async def test_sigkill_releases_waiting_caller_with_kernel_died() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            k = await sup.start_kernel("python3")
            async with trio.open_nursery() as n:
                n.start_soon(k.execute, "import time; time.sleep(60)")
                await k.wait_for_state(KernelState.BUSY)
                n.cancel_scope.cancel()
            got = None

            async def waiter() -> None:
                nonlocal got
                try:
                    await k.execute("import time; time.sleep(60)")
                except KernelDied as exc:
                    got = (exc, trio.current_time())

            async with trio.open_nursery() as n:
                n.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                killed_at = trio.current_time()
                os.kill(k.pid, signal.SIGKILL)
    assert got is not None
    exc, when = got
    assert exc.signal == signal.SIGKILL and exc.cause == "exited"
    assert when - killed_at < 1.0
    assert k.state is not KernelState.IDLE


async def test_bad_argv_and_exit_during_startup_are_clear_and_fast(tmp_path) -> None:
    missing = jupervisor.KernelSpec(name="missing", argv=("/nonexistent/kernel-binary", "{connection_file}"))
    crashing = jupervisor.KernelSpec(
        name="crashing",
        argv=(sys.executable, "-c", "import sys; sys.stderr.write('boom: no such module\\n'); sys.exit(7)"),
    )
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(5):
            with pytest.raises(jupervisor.KernelStartError) as e1:
                await sup.start_kernel(spec=missing)
            start = trio.current_time()
            with pytest.raises(jupervisor.KernelStartError) as e2:
                await sup.start_kernel(spec=crashing)
            elapsed = trio.current_time() - start
    assert "/nonexistent/kernel-binary" in str(e1.value)
    assert e2.value.exit_code == 7
    assert "boom: no such module" in e2.value.stderr_tail
    assert "exit code 7" in str(e2.value)
    assert elapsed < 2.0


async def test_nothing_left_after_supervisor_exits(jupyter_dirs) -> None:
    import psutil

    from .conftest import open_fds

    fds_before = open_fds()
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            kernels = [await sup.start_kernel("python3") for _ in range(2)]
            pids = [k.pid for k in kernels]
            files = [k.connection_file for k in kernels]
            assert all(f.exists() for f in files)
            assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    assert not any(f.exists() for f in files)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children_before
    assert open_fds() <= fds_before


async def test_twenty_kernels_start_and_stop_concurrently() -> None:
    import psutil

    async with jupervisor.open_supervisor() as sup:
        kernels = []
        with trio.fail_after(120):
            async with trio.open_nursery() as n:

                async def start() -> None:
                    kernels.append(await sup.start_kernel("python3"))

                for _ in range(20):
                    n.start_soon(start)
            assert len(kernels) == 20
            assert all(k.state is KernelState.IDLE for k in kernels)
            results = []
            async with trio.open_nursery() as n:

                async def ask(k) -> None:
                    results.append((await k.execute("1 + 1")).result)

                for k in kernels:
                    n.start_soon(ask, k)
            assert results == ["2"] * 20
            pids = [k.pid for k in kernels]
            await sup.shutdown_all()
            assert sup.kernels() == []
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
