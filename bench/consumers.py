"""The kernel's own display() loop under three consumers of one hand-started ipykernel.

Usage: python bench/consumers.py [--rounds N]

Each round runs bench/run.py's DISPLAYS workload (5000 display() calls, timed inside the
kernel) with one consumer connected at a time: jupyter_client's blocking client, a bare
pyzmq SUB that only calls recv_multipart (blocking, then spinning on NOBLOCK so its process
never sleeps), and jupervisor.connect. It shows whether the
kernel's loop speed depends on the consumer's code or on whether the consumer process is
busy when each message arrives.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
import zmq
from jupyter_client import BlockingKernelClient
from jupyter_client.session import Session

import jupervisor

sys.path.insert(0, str(Path(__file__).parent))
from run import DISPLAYS  # noqa: E402


def jc_client(cf: Path) -> BlockingKernelClient:
    kc = BlockingKernelClient(connection_file=str(cf))
    kc.load_connection_file()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return kc


def kernel_loop_s(cf: Path) -> float:
    """Read the workload's own timing (`_kt`) with a fresh client, once the consumer is gone."""
    kc = jc_client(cf)
    got: list[str] = []
    kc.execute_interactive("print(_kt)", output_hook=lambda m: got.append(m["content"].get("text", "")), timeout=30)
    kc.stop_channels()
    return float("".join(got))


def with_jupyter_client(cf: Path) -> None:
    kc = jc_client(cf)
    kc.execute_interactive(DISPLAYS, output_hook=lambda m: None, timeout=120)
    kc.stop_channels()


def with_bare_sub(cf: Path, spin: bool = False) -> None:
    """A SUB that only receives (blocking, or spinning on NOBLOCK); requests go out on a bare DEALER."""
    info = json.loads(cf.read_text())
    session = Session(key=info["key"].encode())
    ctx = zmq.Context()
    sub, shell = ctx.socket(zmq.SUB), ctx.socket(zmq.DEALER)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{info['iopub_port']}")
    shell.connect(f"tcp://127.0.0.1:{info['shell_port']}")
    try:
        while not sub.poll(200):  # PUB drops output until our subscription arrives: ask until we hear
            session.send(shell, "kernel_info_request", {})
        code = {"code": DISPLAYS, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True}
        msg_id = session.send(shell, "execute_request", code)["header"]["msg_id"].encode()
        while True:
            try:
                frames = sub.recv_multipart(zmq.NOBLOCK if spin else 0)
            except zmq.Again:
                continue
            if msg_id in frames[-3] and b'"idle"' in frames[-1]:  # parent header, content
                break
    finally:
        ctx.destroy(linger=0)


def with_jupervisor(cf: Path) -> None:
    async def main() -> None:
        async with jupervisor.connect(cf) as k:
            await k.execute(DISPLAYS, on_output=lambda o: None, timeout=120)

    trio.run(main)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cf = Path(tempfile.mkdtemp()) / "kernel-consumers.json"
    kernel = subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(cf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (cf.exists() and cf.stat().st_size > 0):  # ipykernel writes it once bound
            assert time.monotonic() < deadline, "the kernel wrote no connection file"
            time.sleep(0.05)
        consumers = [("jupyter_client", with_jupyter_client), ("bare pyzmq SUB", with_bare_sub),
                     ("bare SUB, spinning", lambda cf: with_bare_sub(cf, spin=True)), ("jupervisor", with_jupervisor)]
        for i in range(args.rounds):
            for name, run in consumers:
                run(cf)
                print(f"round {i + 1}: {name:18s} kernel's display loop {kernel_loop_s(cf) * 1e3:6.0f} ms", flush=True)
    finally:
        kernel.kill()
        kernel.wait()


if __name__ == "__main__":
    main()
