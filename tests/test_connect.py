"""Driving a kernel someone else started, from its connection file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import trio

import jupervisor

pytestmark = pytest.mark.integration


async def test_connect_to_a_kernel_started_by_someone_else(tmp_path) -> None:
    cf = tmp_path / "kernel-foreign.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(cf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with trio.fail_after(30):
            while not (cf.exists() and cf.stat().st_size > 0):
                await trio.sleep(0.05)
            assert json.loads(cf.read_text())["key"]
            async with jupervisor.connect(cf) as kernel:
                info = await kernel.kernel_info()
                r = await kernel.execute("import os; print(os.getpid()); 20 + 22")
                assert info["language_info"]["name"] == "python"
                assert r.result == "42" and r.stdout.strip() == str(proc.pid)
                prompts = []
                r2 = await kernel.execute("input('x? ')", stdin=lambda p, pw: prompts.append(p) or "typed")
                assert prompts == ["x? "] and r2.result == "'typed'"
                assert kernel.alive
                await kernel.shutdown()
            await trio.to_thread.run_sync(proc.wait)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_a_connected_client_follows_the_kernel_through_a_restart() -> None:
    """Same ports after a restart: the client's sockets reconnect by themselves (regression:
    an unread handshake monitor used to stall that)."""
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            k = await sup.start_kernel("python3")
            async with jupervisor.connect(k.connection_file) as client:
                assert (await client.execute("x = 1; x")).result == "1"
                ports = k.connection_info.shell_port
                await k.restart()
                assert k.connection_info.shell_port == ports
                r = await client.execute("'x' in dir()", timeout=20)
                assert r.result == "False"
