"""Kernels forked from a preloaded interpreter (actors/_preload.py) against real ipykernel."""

from __future__ import annotations

import logging
import os
import signal

import psutil
import pytest
import trio

import jupervisor
from jupervisor.actors import KernelDied
from jupervisor._inventory import take_inventory
from jupervisor.actors._preload import preloadable

from .helpers import interrupt_running

pytestmark = pytest.mark.integration


def preload_servers() -> list[psutil.Process]:
    """Our children running the preload server (zombies and vanished ones skipped)."""
    found = []
    for p in psutil.Process().children():
        try:
            if "_preload_server.py" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            pass
    return found


def provisioner_of(kernel: jupervisor.Kernel) -> str:
    return type(kernel._actor.provisioner).__name__


def test_only_ipykernels_standard_launcher_line_is_preloadable() -> None:
    assert preloadable(["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    assert not preloadable(["python", "-m", "ipykernel_launcher", "-f", "{connection_file}", "--matplotlib=inline"])
    assert not preloadable(["python", "-m", "ipykernel", "-f", "{connection_file}"])
    assert not preloadable(["python", "-m", "ipykernel_launcher"])


async def test_a_forked_kernel_is_a_whole_kernel(tmp_path) -> None:
    """cwd, per-kernel variables, parent watch, output, interrupt, exit code and stderr tail."""
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            assert await sup.preload("python3")
            (server,) = preload_servers()
            k = await sup.start_kernel("python3", cwd=str(tmp_path), env={"KERNEL_USERNAME": "ada"})
            assert provisioner_of(k) == "PreloadedProcess"
            assert psutil.Process(k.pid).ppid() == server.pid
            assert psutil.Process(k.pid).name() == "ipykernel"  # its command line stays the server's
            inventory = await take_inventory([k.connection_file.parent])
            (row,) = [r for r in inventory.kernels if r.kernel_id == k.id]
            assert row.pid == k.pid and row.owner == "jupervisor"  # `jupervisor ps` finds it by its ports
            assert os.getpgid(k.pid) == k.pid  # its own session: signals reach its group only
            r = await k.execute(
                "import os, sys; print(os.getcwd(), os.environ['KERNEL_USERNAME'], os.environ['JPY_PARENT_PID'], sys.argv[0])"
            )
            cwd, user, parent, argv0 = r.stdout.split()
            assert (cwd, user, int(parent)) == (str(tmp_path), "ada", server.pid)
            assert argv0.endswith("ipykernel_launcher.py")
            assert (await k.execute("21 * 2")).result == "42"

            # interrupt by signal (the default for ipykernel's spec) reaches the forked process
            interrupted = await interrupt_running(k, "import time; print('go', flush=True); time.sleep(30)")
            assert interrupted.error is not None and interrupted.error.ename == "KeyboardInterrupt"

            # exit code and stderr tail arrive through the preload server
            events = sup.events()
            with pytest.raises(KernelDied):
                await k.execute("import os; os.write(2, b'last words\\n'); os._exit(7)")
            async for ev in events:
                if isinstance(ev, jupervisor.KernelDiedEvent):
                    break
            assert ev.exit_code == 7
            assert "last words" in k._actor.last_exit.stderr_tail


async def test_restart_and_sigkill_of_a_forked_kernel() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            assert await sup.preload("python3")
            k = await sup.start_kernel("python3")
            first = k.pid
            await k.execute("x = 1")
            await k.restart()
            assert k.pid != first and provisioner_of(k) == "PreloadedProcess"
            assert (await k.execute("'x' in dir()")).result == "False"
            events = sup.events()
            os.kill(k.pid, signal.SIGKILL)
            async for ev in events:
                if isinstance(ev, jupervisor.KernelDiedEvent):
                    break
            assert ev.signal == signal.SIGKILL
            async for ev in events:
                if isinstance(ev, jupervisor.KernelReady):
                    break
            assert (await k.execute("1 + 1")).result == "2"


async def test_launch_env_beyond_per_kernel_variables_is_execd() -> None:
    """A variable the preloaded interpreter did not import with (PYTHONPATH, say) means exec."""
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            assert await sup.preload("python3")
            k = await sup.start_kernel("python3", env={"PYTHONDONTWRITEBYTECODE": "1"})
            assert provisioner_of(k) == "LocalProvisioner"
            assert (await k.execute("import sys; sys.flags.dont_write_bytecode")).result == "1"


async def test_preload_off_and_other_kernelspecs_exec(tmp_path) -> None:
    opts = jupervisor.KernelOptions(preload=False)
    async with jupervisor.open_supervisor(options=opts) as sup:
        assert not await sup.preload("python3")
        k = await sup.start_kernel("python3")
        assert provisioner_of(k) == "LocalProvisioner"
    assert preload_servers() == []


async def test_nothing_is_left_after_the_supervisor_closes() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            assert await sup.preload("python3")
            ks = [await sup.start_kernel("python3") for _ in range(2)]
            pids = [k.pid for k in ks]
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert left == [] and not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


async def test_jupyter_client_drives_a_forked_kernel() -> None:
    """Wire compatibility: jupyter_client's own client, from the connection file, as `jupyter console --existing` does."""
    from jupyter_client import BlockingKernelClient

    def drive(connection_file: str) -> list[str]:
        kc = BlockingKernelClient(connection_file=connection_file)
        kc.load_connection_file()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=30)
            out: list[str] = []
            kc.execute_interactive("print('hello from a fork')", output_hook=lambda m: out.append(m["content"].get("text", "")), timeout=30)
            return out
        finally:
            kc.stop_channels()

    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            assert await sup.preload("python3")
            k = await sup.start_kernel("python3")
            assert provisioner_of(k) == "PreloadedProcess"
            out = await trio.to_thread.run_sync(drive, str(k.connection_file))
    assert "hello from a fork\n" in out


async def test_a_python_without_ipykernel_falls_back_and_reports_the_real_error(tmp_path, caplog) -> None:
    """The preload server cannot start: starts are exec'd and fail with the kernel's own exit code and stderr;
    the server's own last words are logged."""
    caplog.set_level(logging.INFO, logger="jupervisor.preload")
    fake = tmp_path / "python-without-ipykernel"
    fake.write_text("#!/bin/sh\necho \"No module named ipykernel_launcher\" >&2\nexit 1\n")
    fake.chmod(0o755)
    spec = jupervisor.KernelSpec(
        name="broken", display_name="broken", language="python",
        argv=[str(fake), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    )
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(30):
            for _ in range(3):  # the first warms the (failing) preload; later ones must not wait on it
                with pytest.raises(jupervisor.KernelStartError) as info:
                    await sup.start_kernel(spec=spec)
                assert info.value.exit_code == 1
                assert "No module named ipykernel_launcher" in info.value.stderr_tail
            env = spec.launch_env(os.environ)
            settled = sup._preloads.warm(str(fake), env)  # the one the first start warmed
            await settled.wait()
            assert not sup._preloads.is_ready(str(fake), env)
    said = [r.getMessage() for r in caplog.records if "preload.unavailable" in r.getMessage()]
    assert len(said) == 1 and "No module named ipykernel_launcher" in said[0]
    assert preload_servers() == []


async def test_a_killed_preload_server_is_replaced_and_its_kernels_restarted() -> None:
    """Its kernels watch it as their parent, so they exit with it; the policy restarts them and a new server warms."""
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            assert await sup.preload("python3")
            k = await sup.start_kernel("python3")
            assert provisioner_of(k) == "PreloadedProcess"
            (server,) = preload_servers()
            events = sup.events()
            server.kill()
            async for ev in events:
                if isinstance(ev, jupervisor.KernelReady) and ev.kernel_id == k.id:
                    break
            assert (await k.execute("1 + 1")).result == "2"  # restarted (exec'd while a new server warms)
            assert await sup.preload("python3")
            (again,) = preload_servers()
            assert again.pid != server.pid
            k2 = await sup.start_kernel("python3")
            assert provisioner_of(k2) == "PreloadedProcess"


async def test_a_forked_kernel_sees_the_sys_path_an_execd_one_does(tmp_path) -> None:
    """Not the server's own directory first (jupervisor's modules would shadow others), no extra cwd."""
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            assert await sup.preload("python3")
            forked = await sup.start_kernel("python3", cwd=str(tmp_path))
            execd = await sup.start_kernel("python3", cwd=str(tmp_path), env={"PYTHONDONTWRITEBYTECODE": "1"})
            assert (provisioner_of(forked), provisioner_of(execd)) == ("PreloadedProcess", "LocalProvisioner")
            code = "import sys; sys.path"
            assert (await forked.execute(code)).result == (await execd.execute(code)).result
