"""Faults, load and leaks. CI runs the short forms; `pytest -m slow` runs the long ones."""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading

import psutil
import pytest
import trio
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jupervisor
from jupervisor import KernelDied, KernelDiedEvent, KernelNotRunning, KernelState, RequestTimeout
from jupervisor.actors import ChannelConfig, Subscribe, new_context, run_channel
from jupervisor.protocol import DELIM, Session, Signer, encode

from .conftest import open_fds

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


# IPython prints this into the cell's stdout when its shared history database stays locked
# (16 kernels write ~/.ipython's history.sqlite, some of them killed mid-write): the kernel's
# words, not a lost or mixed-up output. Its print and the cell's interleave ("<note>200\n\n").
_HISTORY_NOTE = re.compile(r"The history saving thread hit an unexpected error \(.*?\)\.History will not be written to the database\.")


def _without_history_note(stdout: str) -> str:
    if not _HISTORY_NOTE.search(stdout):
        return stdout
    return "".join(f"{line}\n" for line in _HISTORY_NOTE.sub("", stdout).split("\n") if line)


async def _chaos(n_kernels: int, duration_s: float, seed: int) -> dict:
    rng = random.Random(seed)
    stats: dict = {"faults": 0, "ok": 0, "hit": 0, "wrong": 0, "died_events": 0, "wrong_results": []}
    fds_before = open_fds()
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    files = []
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(duration_s + 120):
            kernels = []
            async with trio.open_nursery() as n:
                async def start() -> None:
                    kernels.append(await sup.start_kernel("python3"))

                for _ in range(n_kernels):
                    n.start_soon(start)
            files = [k.connection_file for k in kernels]
            events = sup.events(100_000)
            end = trio.current_time() + duration_s

            async def workload(k) -> None:
                i = 0
                while trio.current_time() < end:
                    i += 1
                    try:
                        r = await k.execute(f"print({i}); {i} * 2", timeout=10)
                    except (KernelDied, KernelNotRunning, RequestTimeout):
                        stats["hit"] += 1
                        await trio.sleep(0.05)
                        continue
                    if r.status == "ok" and _without_history_note(r.stdout) == f"{i}\n" and r.result == str(i * 2):
                        stats["ok"] += 1
                    elif r.status == "aborted" or r.error is not None:
                        stats["hit"] += 1  # the kernel was interrupted or killed under this request
                    else:
                        stats["wrong"] += 1
                        stats["wrong_results"].append((i, r.status, r.stdout, r.result, k.id[:8]))

            async def chaos() -> None:
                while trio.current_time() < end - 1:
                    await trio.sleep(rng.uniform(0.3, 0.8))
                    k = rng.choice(kernels)
                    if k.state is not KernelState.IDLE and k.state is not KernelState.BUSY:
                        continue
                    fault = rng.choice(["kill", "stop", "exit"])
                    stats["faults"] += 1
                    if fault == "kill":
                        os.kill(k.pid, signal.SIGKILL)
                    elif fault == "exit":
                        try:
                            await k.execute("import os; os._exit(3)", timeout=5)
                        except (KernelDied, KernelNotRunning, RequestTimeout):
                            pass
                    else:
                        pid = k.pid
                        os.kill(pid, signal.SIGSTOP)
                        # frozen until the heartbeat verdict kills it; SIGCONT if it somehow survived
                        with trio.move_on_after(8):
                            while alive(pid):
                                await trio.sleep(0.1)
                        if alive(pid):
                            os.kill(pid, signal.SIGCONT)

            async with trio.open_nursery() as n:
                for k in kernels:
                    n.start_soon(workload, k)
                n.start_soon(chaos)
            while True:
                try:
                    ev = events.receive_nowait()
                except trio.WouldBlock:
                    break
                stats["died_events"] += isinstance(ev, KernelDiedEvent)
            pids = [k.pid for k in kernels]
    stats["leftover_processes"] = [p for p in pids if p and alive(p)]
    stats["leftover_files"] = [str(f) for f in files if f and f.exists()]
    stats["leaked_fds"] = sorted(open_fds() - fds_before)
    stats["leftover_children"] = [p.pid for p in psutil.Process().children(recursive=True) if p.pid not in children_before]
    return stats


async def test_chaos_short() -> None:
    s = await _chaos(n_kernels=6, duration_s=12, seed=7)  # room for two SIGSTOP verdicts (~4 s each)
    assert s["faults"] >= 5 and s["ok"] > 50
    assert s["wrong"] == 0, s["wrong_results"]  # every execute not hit by a fault returned complete, correct outputs
    assert s["died_events"] >= s["faults"] - 1  # each fault was detected (one may land after the end)
    assert s["leftover_processes"] == s["leftover_files"] == s["leaked_fds"] == s["leftover_children"] == []


@pytest.mark.slow
async def test_chaos_long() -> None:
    s = await _chaos(n_kernels=16, duration_s=120, seed=11)
    assert s["wrong"] == 0, s["wrong_results"]
    assert s["died_events"] >= s["faults"] - 1
    assert s["leftover_processes"] == s["leftover_files"] == s["leaked_fds"] == s["leftover_children"] == []


async def _soak(cycles: int) -> list[tuple[int, int, int]]:
    proc = psutil.Process()
    samples = []
    async with jupervisor.open_supervisor() as sup:
        for i in range(cycles):
            with trio.fail_after(60):
                k = await sup.start_kernel("python3")
                assert (await k.execute(f"{i} + 1")).result == str(i + 1)
                await k.shutdown()
            samples.append((proc.num_fds(), proc.num_threads(), proc.memory_info().rss))
    return samples


async def test_soak_short_no_fd_or_thread_growth() -> None:
    before = open_fds()
    samples = await _soak(16)
    fds = [s[0] for s in samples]
    threads = [s[1] for s in samples]
    half = len(samples) // 2
    # a few fds come and go with each cycle's teardown; a leak of even one per cycle would add 8
    assert max(fds[half:]) - max(fds[:half]) <= 2, fds
    assert max(threads[half:]) <= max(threads[:half]), threads
    assert open_fds() <= before  # and after the supervisor is gone, nothing is left at all


@pytest.mark.slow
async def test_soak_long() -> None:
    samples = await _soak(500)
    fds = [s[0] for s in samples[10:]]
    rss = [s[2] for s in samples[10:]]
    assert max(fds[len(fds) // 2:]) <= max(fds[: len(fds) // 2])
    slope = (rss[-1] - rss[0]) / len(rss)
    print(f"RSS slope: {slope:.0f} bytes/cycle")
    assert slope < 20_000


@given(st.lists(st.lists(st.binary(max_size=64), max_size=8), min_size=1, max_size=25))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_fuzzed_frames_into_a_live_channel_actor(batches) -> None:
    """Garbage, truncated, forged, replayed and huge frames: the actor drops and counts them and
    still delivers the genuine message that follows."""

    async def main() -> tuple[int, int]:
        ctx = new_context()
        pub = ctx.socket(zmq.PUB)
        pub.bind("tcp://127.0.0.1:*")
        signer = Signer(b"fuzz-key")
        try:
            async with trio.open_nursery() as n:
                cfg = ChannelConfig(name="iopub", endpoint=pub.getsockopt(zmq.LAST_ENDPOINT).decode(), signer=signer)
                handle = await n.start(run_channel, cfg, ctx)
                send, receive = trio.open_memory_channel(math.inf)
                handle.mailbox.post(Subscribe(send))
                kernel = Session()
                with trio.fail_after(20):
                    probe = encode(kernel.message("status", {"execution_state": "idle"}), signer)
                    while True:  # wait until the subscription is live
                        pub.send_multipart(probe)
                        with trio.move_on_after(0.05):
                            await receive.receive()
                            break
                    genuine = kernel.message("stream", {"name": "stdout", "text": "still alive"})
                    frames = encode(genuine, signer)
                    for b in batches:
                        pub.send_multipart(b or [b""])
                        pub.send_multipart([DELIM, b"0" * 64, *b])
                    pub.send_multipart([DELIM, b"f" * 64] + frames[2:])  # forged
                    pub.send_multipart(probe)  # replayed
                    pub.send_multipart([DELIM, signer.sign([b"x" * 2**20] * 4)] + [b"x" * 2**20] * 4)  # huge, bad JSON
                    pub.send_multipart(frames)
                    while True:
                        item = await receive.receive()
                        if item.message.msg_type == "stream":
                            break
                n.cancel_scope.cancel()
        finally:
            pub.close(0)
            ctx.destroy(0)
        st_ = handle.stats
        return st_.forged + st_.malformed + st_.replayed, item.message.content["text"] == "still alive"

    dropped, ok = trio.run(main)
    assert ok and dropped >= 3


_SUPERVISOR_SCRIPT = """
import sys, trio, jupervisor
async def main():
    async with jupervisor.open_supervisor() as sup:
        ks = [await sup.start_kernel("python3")]  # exec'd: the preloaded interpreter is not warm yet
        assert await sup.preload("python3")
        ks.append(await sup.start_kernel("python3"))  # forked from the preloaded interpreter
        assert [type(k._actor.provisioner).__name__ for k in ks] == ["LocalProvisioner", "PreloadedProcess"]
        print(" ".join(str(k.pid) for k in ks), flush=True)
        await trio.sleep_forever()
trio.run(main)
"""


def test_no_kernel_outlives_a_killed_supervisor() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SUPERVISOR_SCRIPT], stdout=subprocess.PIPE, text=True)
    kernels = [int(p) for p in proc.stdout.readline().split()]
    assert len(kernels) == 2 and all(alive(p) for p in kernels)
    pids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]  # the preload server too
    assert set(kernels) < set(pids)
    proc.kill()
    proc.wait()
    done = threading.Event()
    deadline = 10.0
    import time

    start = time.monotonic()
    while any(alive(p) for p in pids) and time.monotonic() - start < deadline:
        done.wait(0.1)
    assert not any(alive(p) for p in pids), f"processes outlived their supervisor: {pids}"
    json.dumps(pids)
