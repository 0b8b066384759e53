"""Side-by-side benchmarks: jupervisor vs jupyter_client + ipykernel, same machine, same run.

Usage: python bench/run.py [--quick] [--record] [--rounds N]

Prints a table of both figures and their ratio (jupervisor / jupyter_client; lower is
better for times and costs, higher for rates). The sides run in alternating rounds (2 by
default) and each figure is its side's best round, since this shared machine's speed
drifts within minutes. With --record it appends the table, the date and the machine to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import resource
import signal
import statistics
import threading
import time
import timeit
from pathlib import Path

import psutil
import trio

import jupervisor
from jupervisor import protocol as P

ROWS: list[tuple[str, str, float | None, float | None, str]] = []
REPEAT = 3  # throughput runs per side; the median is reported (this machine's noise is large)
# the print workload times its own loop inside the kernel: how much of the rate is the kernel's
PRINTS = "import time as _t\n_t0 = _t.perf_counter()\nfor i in range(20000): print(i)\n_kt = _t.perf_counter() - _t0"
DISPLAYS = "import time as _t\nfrom IPython.display import display\n_t0 = _t.perf_counter()\nfor i in range(5000): display(i)\n_kt = _t.perf_counter() - _t0"


def row(name: str, unit: str, ours: float | None, theirs: float | None, better: str = "lower") -> None:
    ROWS.append((name, unit, ours, theirs, better))
    print(f"  {name}: jupervisor={_fmt(ours)} jupyter_client={_fmt(theirs)} {unit}", flush=True)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else (f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}")


def q(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * (len(s) - 1) + 0.5))]


def pss(pids: list[int]) -> float:
    """Proportional set size of these processes together (shared pages split between sharers)."""
    return sum(psutil.Process(p).memory_full_info().pss for p in pids)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def summarize(runs: list[tuple[int, float, float]]) -> tuple[float, int, float]:
    """(items, seconds, in-kernel loop seconds) per run -> median rate, fewest items, median loop."""
    return (statistics.median(n / t for n, t, _ in runs), min(n for n, _, _ in runs),
            statistics.median(loop for _, _, loop in runs))


# ---------------------------------------------------------------- jupyter_client side
def jc_lines(m: dict) -> int:
    return m["content"]["text"].count("\n") if m["msg_type"] == "stream" else 0


def jc_displays(m: dict) -> int:
    return m["msg_type"] == "display_data"


def jc_throughput(kc, code: str, count) -> tuple[int, float, float]:
    """Run a self-timing workload, counting its outputs as they arrive."""
    items = 0

    def hook(m: dict) -> None:
        nonlocal items
        items += count(m)

    t = time.perf_counter()
    kc.execute_interactive(code, output_hook=hook, timeout=120)
    took = time.perf_counter() - t
    got: list = []
    kc.execute_interactive("print(_kt)", output_hook=lambda m: got.append(m["content"].get("text", "")), timeout=30)
    return items, took, float("".join(got))


def jc_start():
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def jc_stop(km, kc) -> None:
    kc.stop_channels()
    km.shutdown_kernel()


def bench_jc(n_exec: int, n_many: int) -> dict:
    out: dict = {}
    t = time.perf_counter()
    km, kc = jc_start()
    out["start"] = time.perf_counter() - t
    hook = lambda m: None  # noqa: E731
    for _ in range(20):
        kc.execute_interactive("pass", output_hook=hook)
    lat = []
    c0 = cpu()
    for _ in range(n_exec):
        t = time.perf_counter()
        kc.execute_interactive("pass", output_hook=hook)
        lat.append(time.perf_counter() - t)
    out["cpu"] = (cpu() - c0) / n_exec
    out["lat"] = lat
    # throughput while the consumer keeps up
    runs = [jc_throughput(kc, PRINTS, jc_lines) for _ in range(REPEAT)]
    out["print_rate"], out["print_items"], out["print_loop"] = summarize(runs)
    runs = [jc_throughput(kc, DISPLAYS, jc_displays) for _ in range(REPEAT)]
    out["display_rate"], out["displays"], out["display_loop"] = summarize(runs)
    # slow consumer: read iopub only after the reply
    msg_id = kc.execute("for i in range(20000): print(i)")
    kc._recv_reply(msg_id, timeout=120) if hasattr(kc, "_recv_reply") else kc.get_shell_msg(timeout=120)
    lines, saw_idle = 0, False
    while True:
        try:
            m = kc.get_iopub_msg(timeout=1)
        except Exception:
            break
        if m["parent_header"].get("msg_id") == msg_id:
            if m["msg_type"] == "stream":
                lines += m["content"]["text"].count("\n")
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                saw_idle = True
                break
    out["slow_lines"], out["slow_idle"] = lines, saw_idle
    t = time.perf_counter()
    jc_stop(km, kc)
    out["shutdown"] = time.perf_counter() - t
    # many at once
    t = time.perf_counter()
    pairs = []
    threads = [threading.Thread(target=lambda: pairs.append(jc_start())) for _ in range(n_many)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out["start_many"] = time.perf_counter() - t
    out["start_many_ok"] = len(pairs)
    proc = psutil.Process()
    out["idle_threads"], out["idle_fds"] = proc.num_threads(), proc.num_fds()
    out["idle_rss"] = proc.memory_info().rss
    out["kernels_pss"] = pss([km.provisioner.pid for km, _ in pairs])
    c0, t0 = cpu(), time.perf_counter()
    time.sleep(3)
    out["idle_cpu"] = (cpu() - c0) / (time.perf_counter() - t0)
    t = time.perf_counter()
    threads = [threading.Thread(target=jc_stop, args=p) for p in pairs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out["shutdown_many"] = time.perf_counter() - t
    out["sigkill"] = jc_sigkill()
    return out


def jc_sigkill() -> float | None:
    """jupyter_client's restarter (asyncio) after SIGKILL: time until a new kernel answers."""
    from jupyter_client.ioloop import AsyncIOLoopKernelManager

    async def main() -> float:
        km = AsyncIOLoopKernelManager(kernel_name="python3")
        await km.start_kernel()
        km.start_restarter()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        pid = km.provisioner.pid
        t = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        while km.provisioner is None or km.provisioner.pid == pid or not await km.is_alive():
            await asyncio.sleep(0.01)
        kc.stop_channels()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        took = time.perf_counter() - t
        kc.stop_channels()
        km.stop_restarter()
        await km.shutdown_kernel(now=True)
        return took

    return asyncio.run(main())


# ---------------------------------------------------------------- jupervisor side
def our_lines(o: dict) -> int:
    return o["text"].count("\n") if o["output_type"] == "stream" else 0


def our_displays(o: dict) -> int:
    return o["output_type"] == "display_data"


async def our_throughput(k, code: str, count) -> tuple[int, float, float]:
    """Run a self-timing workload, counting its outputs as they arrive."""
    items = 0

    def hook(o: dict) -> None:
        nonlocal items
        items += count(o)

    t = time.perf_counter()
    await k.execute(code, on_output=hook, timeout=120)
    took = time.perf_counter() - t
    return items, took, float((await k.execute("_kt")).result)


async def bench_ours(n_exec: int, n_many: int) -> dict:
    out: dict = {}
    async with jupervisor.open_supervisor() as sup:
        t = time.perf_counter()
        k = await sup.start_kernel("python3")
        out["start"] = time.perf_counter() - t
        for _ in range(20):
            await k.execute("pass")
        lat = []
        c0 = cpu()
        for _ in range(n_exec):
            t = time.perf_counter()
            await k.execute("pass")
            lat.append(time.perf_counter() - t)
        out["cpu"] = (cpu() - c0) / n_exec
        out["lat"] = lat
        runs = [await our_throughput(k, PRINTS, our_lines) for _ in range(REPEAT)]
        out["print_rate"], out["print_items"], out["print_loop"] = summarize(runs)
        runs = [await our_throughput(k, DISPLAYS, our_displays) for _ in range(REPEAT)]
        out["display_rate"], out["displays"], out["display_loop"] = summarize(runs)
        # slow consumer: nothing reads until the reply is in; our actors drain continuously
        r = await k.execute("for i in range(20000): print(i)", timeout=120)
        out["slow_lines"], out["slow_idle"] = r.stdout.count("\n"), True
        t = time.perf_counter()
        await k.shutdown()
        out["shutdown_exec"] = time.perf_counter() - t
        # the same with the preloaded interpreter warm (the first start warmed it)
        assert await sup.preload("python3")
        t = time.perf_counter()
        k = await sup.start_kernel("python3")
        out["start_preloaded"] = time.perf_counter() - t
        await k.execute("pass")
        t = time.perf_counter()
        await k.shutdown()
        out["shutdown"] = time.perf_counter() - t
        # SIGKILL -> a new kernel answers
        k = await sup.start_kernel("python3")
        pid = k.pid
        t = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        noticed = None
        async with sup.events() as events:
            async for ev in events:
                if isinstance(ev, jupervisor.KernelDiedEvent) and noticed is None:
                    noticed = time.perf_counter() - t
                if isinstance(ev, jupervisor.KernelReady) and ev.kernel_id == k.id:
                    break
        await k.kernel_info()
        out["sigkill"], out["sigkill_noticed"] = time.perf_counter() - t, noticed
        # SIGSTOP -> the waiting caller is released and the policy acts
        while k._actor.liveness is None or k._actor.liveness.beats == 0:
            await trio.sleep(0.05)
        pid = k.pid
        t = time.perf_counter()
        os.kill(pid, signal.SIGSTOP)
        try:
            await k.execute("pass")
        except jupervisor.KernelDied:
            out["sigstop"] = time.perf_counter() - t
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        await k.shutdown()
        # from a warm pool
        sup.set_warm_pool("python3", 1)
        while sup.warm_kernels("python3") < 1:
            await trio.sleep(0.01)
        t = time.perf_counter()
        warm = await sup.start_kernel("python3")
        out["warm"] = time.perf_counter() - t
        await warm.kernel_info()
        sup.set_warm_pool("python3", 0)
        await sup.shutdown_all()
        # many at once
        t = time.perf_counter()
        many = []
        async with trio.open_nursery() as n:

            async def one() -> None:
                many.append(await sup.start_kernel("python3"))

            for _ in range(n_many):
                n.start_soon(one)
        out["start_many"] = time.perf_counter() - t
        out["start_many_ok"] = len(many)
        out["start_many_forked"] = sum(type(k._actor.provisioner).__name__ == "PreloadedProcess" for k in many)
        proc = psutil.Process()
        out["idle_threads"], out["idle_fds"] = proc.num_threads(), proc.num_fds()
        out["idle_rss"] = proc.memory_info().rss
        servers = [c.pid for c in proc.children() if "_preload_server.py" in " ".join(c.cmdline())]
        out["kernels_pss"] = pss([k.pid for k in many] + servers)  # the preload server's share counts too
        c0, t0 = cpu(), time.perf_counter()
        await trio.sleep(3)
        out["idle_cpu"] = (cpu() - c0) / (time.perf_counter() - t0)
        t = time.perf_counter()
        await sup.shutdown_all()
        out["shutdown_many"] = time.perf_counter() - t
    return out


def bench_protocol() -> tuple[float, float]:
    from jupyter_client.session import Session as JS

    s, sg, js = P.Session(), P.Signer(b"key"), JS(key=b"key")
    content = P.execute_request("pass").content
    ours = min(timeit.repeat(lambda: P.decode(P.encode(s.request(P.execute_request("pass")), sg), sg), number=5000, repeat=3)) / 5000
    theirs = min(timeit.repeat(lambda: js.deserialize(js.feed_identities(js.serialize(js.msg("execute_request", dict(content))))[1]), number=5000, repeat=3)) / 5000
    return ours, theirs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per side; each figure is its side's best")
    args = ap.parse_args()
    n_exec, n_many = (100, 4) if args.quick else (500, 16)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    print("protocol ...", flush=True)
    p_ours, p_theirs = bench_protocol()
    runs_a, runs_b = [], []
    for i in range(args.rounds):  # alternate the sides: this machine's speed drifts within minutes
        print(f"round {i + 1}/{args.rounds}: jupervisor ...", flush=True)
        runs_a.append(trio.run(bench_ours, n_exec, n_many))
        print(f"round {i + 1}/{args.rounds}: jupyter_client ...", flush=True)
        runs_b.append(bench_jc(n_exec, n_many))
    a, b = best_of(runs_a), best_of(runs_b)
    ms, us = 1000, 1e6
    row("start one kernel until it answers (cold: exec, as jupyter_client)", "ms", a["start"] * ms, b["start"] * ms)
    row("start one kernel until it answers (forked from the preloaded interpreter)", "ms", a["start_preloaded"] * ms, b["start"] * ms)
    row("start from a warm pool (kernel handed out, answering)", "ms", a["warm"] * ms, None)
    row(f"start {n_many} kernels concurrently (all answered: {a['start_many_ok']}/{b['start_many_ok']}; forked {a['start_many_forked']})", "ms", a["start_many"] * ms, b["start_many"] * ms)
    row("SIGKILL until a new kernel answers", "ms", a["sigkill"] * ms, (b["sigkill"] or 0) * ms)
    row("SIGKILL: exit noticed after", "ms", a["sigkill_noticed"] * ms, None)
    row("SIGSTOP: waiting caller released after", "ms", a.get("sigstop", float("nan")) * ms, None)
    row("execute('pass') p50", "ms", q(a["lat"], 0.5) * ms, q(b["lat"], 0.5) * ms)
    row("execute('pass') p99", "ms", q(a["lat"], 0.99) * ms, q(b["lat"], 0.99) * ms)
    row("client CPU per execute round trip", "us", a["cpu"] * us, b["cpu"] * us)
    row("encode+sign+verify+decode one execute_request", "us", p_ours * us, p_theirs * us)
    row(f"20k print lines, consumer keeps up, median of {REPEAT} (fewest lines {a['print_items']}/{b['print_items']})", "lines/s", a["print_rate"], b["print_rate"], "higher")
    row("20k print lines: the kernel's own print loop, timed inside it (median)", "ms", a["print_loop"] * ms, b["print_loop"] * ms)
    row("20k print lines, read after the reply: lines received", "lines", a["slow_lines"], b["slow_lines"], "higher")
    row(f"5k display() messages, median of {REPEAT} (fewest got {a['displays']}/{b['displays']})", "msg/s", a["display_rate"], b["display_rate"], "higher")
    row("5k display(): the kernel's own display loop, timed inside it (median)", "ms", a["display_loop"] * ms, b["display_loop"] * ms)
    row("graceful shutdown of one kernel (exec'd)", "ms", a["shutdown_exec"] * ms, b["shutdown"] * ms)
    row("graceful shutdown of one kernel (forked)", "ms", a["shutdown"] * ms, b["shutdown"] * ms)
    row(f"graceful shutdown of {n_many} at once", "ms", a["shutdown_many"] * ms, b["shutdown_many"] * ms)
    row(f"{n_many} idle kernels monitored: threads", "", a["idle_threads"], b["idle_threads"])
    row(f"{n_many} idle kernels monitored: fds", "", a["idle_fds"], b["idle_fds"])
    row(f"{n_many} idle kernels monitored: RSS", "MB", a["idle_rss"] / 2**20, b["idle_rss"] / 2**20)
    row(f"{n_many} idle kernels monitored: CPU", "% core", a["idle_cpu"] * 100, b["idle_cpu"] * 100)
    row(f"{n_many} idle kernels: their processes' PSS (ours: forked, with the preload server)", "MB", a["kernels_pss"] / 2**20, b["kernels_pss"] / 2**20)
    table = render()
    print(table)
    if args.record:
        path = Path(__file__).with_name("RESULTS.md")
        head = f"\n## {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, best of {args.rounds} alternating rounds{' (quick)' if args.quick else ''}\n\n"
        with path.open("a") as f:
            f.write(head + table + "\n")


HIGHER = {"print_rate", "display_rate"}  # rates: the best is the highest


def best_of(runs: list[dict]) -> dict:
    """Each figure's best over the rounds: the lowest time or cost, the highest rate, the
    latency list with the lowest median. Counts (lines or messages received, kernels
    answered) take the minimum too, which for them is the worst round."""
    out: dict = {}
    for key in runs[0]:
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            out[key] = None
        elif key == "lat":
            out[key] = min(values, key=lambda lat: q(lat, 0.5))
        else:
            out[key] = max(values) if key in HIGHER else min(values)
    return out


def render() -> str:
    lines = ["| workload | unit | jupervisor | jupyter_client | ratio |", "|---|---|---|---|---|"]
    for name, unit, ours, theirs, better in ROWS:
        ratio = f"{ours / theirs:.2f}x" if ours is not None and theirs not in (None, 0) else "n/a"
        lines.append(f"| {name} | {unit} | {_fmt(ours)} | {_fmt(theirs)} | {ratio} ({better} is better) |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
