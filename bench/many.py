"""Many lightweight kernels (the toy kernel of tests/kernels) under heartbeat supervision.

Usage: python bench/many.py [N]   (default 500; each toy kernel takes about 25 MB)
Reports the supervisor's CPU while they idle, its RSS, fds and threads, and whether
every one of 20 SIGKILLed kernels was detected.
"""

import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jupervisor  # noqa: E402
from tests.kernels import toy_spec  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(n: int) -> None:
    opts = jupervisor.KernelOptions(start_timeout_s=300)
    policy = jupervisor.RestartPolicy(restart="temporary")
    async with jupervisor.open_supervisor(options=opts, restart=policy) as sup:
        t = time.perf_counter()
        limiter = trio.CapacityLimiter(16)
        kernels = []

        async def one() -> None:
            async with limiter:
                kernels.append(await sup.start_kernel(spec=toy_spec()))

        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(one)
        print(f"{n} toy kernels started in {time.perf_counter() - t:.1f} s", flush=True)
        await trio.sleep(3)
        me = psutil.Process()
        th0 = {th.id: th.user_time + th.system_time for th in me.threads()}
        c0, t0 = cpu(), time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            spy = ["py-spy", "record", "-p", str(os.getpid()), "-d", "10", "-r", "500", "-f", "raw", "-o", os.environ["BENCH_PROFILE"], "--nonblocking"]
            await trio.run_process(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            await trio.sleep(10)
        took = time.perf_counter() - t0
        idle_cpu = (cpu() - c0) / took * 100
        main_id = threading.get_native_id()
        main_cpu = sum(th.user_time + th.system_time - th0.get(th.id, 0) for th in me.threads() if th.id == main_id) / took * 100
        print(f"supervisor idle CPU {idle_cpu:.1f}% of a core (trio thread {main_cpu:.1f}%, the rest libzmq's I/O thread), "
              f"RSS {me.memory_info().rss / 2**20:.0f} MB, fds {me.num_fds()}, threads {me.num_threads()}", flush=True)
        victims = random.Random(1).sample(kernels, min(20, n))
        deaths = set()
        async with sup.events(10_000) as events:
            t = time.perf_counter()
            for k in victims:
                os.kill(k.pid, signal.SIGKILL)
            with trio.move_on_after(30):
                async for ev in events:
                    if isinstance(ev, jupervisor.KernelDiedEvent):
                        deaths.add(ev.kernel_id)
                        if deaths >= {k.id for k in victims}:
                            break
        print(f"deaths detected: {len(deaths & {k.id for k in victims})}/{len(victims)} in "
              f"{time.perf_counter() - t:.2f} s", flush=True)
        t = time.perf_counter()
        await sup.shutdown_all()
        print(f"shut down {n} in {time.perf_counter() - t:.1f} s", flush=True)


trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 500)
