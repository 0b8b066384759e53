"""Code written the way jupyter_client users write it, run against jupervisor.compat, and a real
jupyter_client KernelManager running on the `jupervisor` provisioner."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import time

import psutil
import pytest

from jupervisor.compat import (
    AsyncKernelManager,
    DuplicateKernelError,
    KernelManager,
    KernelSpecManager,
    MultiKernelManager,
    NoSuchKernel,
    BlockingKernelClient,
    find_connection_file,
    run_kernel,
    start_new_kernel,
    write_connection_file,
)

pytestmark = pytest.mark.integration


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_the_classic_kernel_manager_loop() -> None:
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        msg_id = kc.execute("print('hello'); 6 * 7")
        seen, text, result = [], "", None
        while True:
            msg = kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            seen.append(msg["msg_type"])
            if msg["msg_type"] == "stream":
                text += msg["content"]["text"]
            if msg["msg_type"] == "execute_result":
                result = msg["content"]["data"]["text/plain"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = kc.get_shell_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
        assert isinstance(reply["header"]["date"], __import__("datetime").datetime)
        assert set(reply) >= {"header", "msg_id", "msg_type", "parent_header", "metadata", "content", "buffers"}
        assert (text, result) == ("hello\n", "42") and seen[0] == "status"
        with pytest.raises(queue.Empty):
            kc.get_iopub_msg(timeout=0.2)
        assert kc.is_alive() and km.is_alive()
        assert kc.kernel_info(reply=True, timeout=10)["content"]["language_info"]["name"] == "python"
        assert kc.complete("pri", reply=True, timeout=10)["content"]["matches"]
        assert kc.is_complete("x = (", reply=True, timeout=10)["content"]["status"] == "incomplete"
        assert "hb_channel" in dir(kc) and kc.hb_channel.is_beating()
        pid = km._kernel.pid
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    assert gone(pid) and not km.has_kernel


def test_execute_interactive_with_output_and_stdin_hooks() -> None:
    with run_kernel(kernel_name="python3") as kc:
        outputs = []

        def stdin_hook(msg) -> None:
            assert msg["content"]["prompt"] == "name? "
            kc.input("Grace")

        reply = kc.execute_interactive(
            "name = input('name? ')\nprint('hi', name)", output_hook=lambda m: outputs.append(m), stdin_hook=stdin_hook,
            timeout=20,
        )
        assert reply["content"]["status"] == "ok"
        assert [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"] == ["hi Grace\n"]
        with pytest.raises(TimeoutError):
            kc.execute_interactive("import time; time.sleep(5)", timeout=0.5, output_hook=lambda m: None)


def interrupt_until_replied(km, kc, tries: int = 3) -> dict:
    """Interrupt, and again if no reply comes: once in a while (seen once in CI under load)
    ipykernel misses a SIGINT that lands right as the cell starts; a user presses Ctrl-C again."""
    for attempt in range(tries):
        km.interrupt_kernel()
        try:
            return kc.get_shell_msg(timeout=10)
        except queue.Empty:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def test_interrupt_restart_shutdown_through_the_manager() -> None:
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        msg_id = kc.execute("import time; print('go', flush=True); time.sleep(60)")
        while True:  # interrupt once the code runs (SIGINT before that is ignored by ipykernel)
            m = kc.get_iopub_msg(timeout=20)
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
                break
        reply = interrupt_until_replied(km, kc)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        kc.execute_interactive("x = 1", timeout=10)
        old = km._kernel.pid
        km.restart_kernel()
        kc.wait_for_ready(timeout=30)
        r = kc.execute("x", reply=True, timeout=10)
        assert r["content"]["ename"] == "NameError" and km._kernel.pid != old
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_multi_kernel_manager_and_its_errors() -> None:
    mkm = MultiKernelManager()
    try:
        a = mkm.start_kernel(kernel_name="python3")
        b = mkm.start_kernel(kernel_id="fixed-id")
        assert set(mkm.list_kernel_ids()) == {a, b} and len(mkm) == 2 and b in mkm
        with pytest.raises(DuplicateKernelError):
            mkm.start_kernel(kernel_id="fixed-id")
        with pytest.raises(NoSuchKernel):
            mkm.get_kernel("nope")
        kcs = []
        for kid in (a, b):
            kc = mkm.get_kernel(kid).client()
            kc.start_channels()
            kc.wait_for_ready(timeout=30)
            kcs.append(kc)
        assert [kc.execute_interactive(f"{i} + 1", timeout=10, output_hook=lambda m: None)["content"]["status"] for i, kc in enumerate(kcs)] == ["ok", "ok"]
        for kc in kcs:
            kc.stop_channels()
        mkm.shutdown_kernel(a)
        assert mkm.list_kernel_ids() == [b]
    finally:
        mkm.shutdown_all()
    assert len(mkm) == 0


def test_async_kernel_manager_and_client() -> None:
    async def main() -> str:
        km = AsyncKernelManager(kernel_name="python3")
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=30)
            reply = await kc.execute_interactive("'async ok'", timeout=10, output_hook=lambda m: None)
            info = await kc.kernel_info(reply=True, timeout=10)
            assert info["content"]["status"] == "ok"
            return reply["content"]["status"]
        finally:
            kc.stop_channels()
            await km.shutdown_kernel()

    assert asyncio.run(main()) == "ok"


def test_joining_an_independent_kernel_with_load_connection_file(tmp_path) -> None:
    cf, cfg = write_connection_file(str(tmp_path / "kernel-indep.json"), key=b"k3y", kernel_name="python3")
    assert oct(os.stat(cf).st_mode & 0o777) == "0o600"
    proc = subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", cf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert find_connection_file("kernel-indep.json", path=str(tmp_path)) == cf
        kc = BlockingKernelClient()
        kc.load_connection_file(cf)
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        assert kc.execute_interactive("7 * 6", timeout=10, output_hook=lambda m: None)["content"]["status"] == "ok"
        kc.shutdown()
        kc.stop_channels()
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kernelspec_manager() -> None:
    ksm = KernelSpecManager()
    assert "python3" in ksm.find_kernel_specs()
    spec = ksm.get_kernel_spec("python3")
    assert spec.language == "python" and spec.argv
    with pytest.raises(NoSuchKernel):
        ksm.get_kernel_spec("no-such-kernel")


_PROVISIONER_SCRIPT = """
import queue, time, psutil
from jupyter_client import KernelManager
from jupervisor.provisioner import JupervisorProvisioner

def gone(pid):
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

km = KernelManager(kernel_name="python3")
km.start_kernel()
assert isinstance(km.provisioner, JupervisorProvisioner), type(km.provisioner)
kc = km.client()
kc.start_channels()
kc.wait_for_ready(timeout=30)
msg_id = kc.execute("import time; print('go', flush=True); time.sleep(60)")
while True:
    m = kc.get_iopub_msg(timeout=20)
    if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
        break
for attempt in range(3):  # again if ipykernel missed the SIGINT (a user presses Ctrl-C again)
    km.interrupt_kernel()
    try:
        reply = kc.get_shell_msg(timeout=10)
        break
    except queue.Empty:
        if attempt == 2:
            raise
assert reply["content"]["ename"] == "KeyboardInterrupt"
first = km.provisioner.pid
km.restart_kernel()
kc.wait_for_ready(timeout=30)
assert km.provisioner.pid != first and gone(first)
assert kc.execute_interactive("1 + 1", timeout=10, output_hook=lambda m: None)["content"]["status"] == "ok"
pid = km.provisioner.pid
kc.stop_channels()
km.shutdown_kernel()
assert gone(pid)
print("provisioner ok")
"""


def test_jupyter_client_kernel_manager_on_the_jupervisor_provisioner() -> None:
    """A fresh process, as users run it: the provisioner is chosen by the environment variable."""
    env = {**os.environ, "JUPYTER_DEFAULT_PROVISIONER_NAME": "jupervisor"}
    r = subprocess.run([sys.executable, "-c", _PROVISIONER_SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("provisioner ok")
