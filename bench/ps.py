"""How long `jupervisor ps` takes over N live kernels (default 20). Usage: python bench/ps.py [N]"""

import subprocess
import sys
import time
from pathlib import Path

import trio

import jupervisor


async def main(n: int) -> None:
    async with jupervisor.open_supervisor() as sup:
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(sup.start_kernel, "python3")
        exe = Path(sys.executable).with_name("jupervisor")
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            out = await trio.run_process([str(exe), "ps", "--json"], capture_stdout=True)
            runs.append(time.perf_counter() - t)
        import json

        rows = json.loads(out.stdout)["kernels"]
        idle = sum(r["state"] == "idle" for r in rows)
        print(f"jupervisor ps over {n} live kernels: {min(runs):.2f} s (best of 3; {idle}/{len(rows)} idle)")


trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 20)
