"""Quick side-by-side: start, execute latency, shutdown (jupervisor vs jupyter_client)."""
import statistics, sys, time
import trio
import jupervisor

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200

async def ours():
    t0 = time.perf_counter()
    async with jupervisor.open_supervisor() as sup:
        k = await sup.start_kernel("python3")
        start = time.perf_counter() - t0
        lat = []
        for _ in range(N):
            t = time.perf_counter(); await k.execute("pass"); lat.append(time.perf_counter() - t)
        t = time.perf_counter(); await k.shutdown(); shut = time.perf_counter() - t
    return start, lat, shut

def theirs():
    from jupyter_client.manager import KernelManager
    t0 = time.perf_counter()
    km = KernelManager(kernel_name="python3"); km.start_kernel()
    kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=30)
    start = time.perf_counter() - t0
    lat = []
    for _ in range(N):
        t = time.perf_counter(); kc.execute_interactive("pass", output_hook=lambda m: None); lat.append(time.perf_counter() - t)
    kc.stop_channels()
    t = time.perf_counter(); km.shutdown_kernel(); shut = time.perf_counter() - t
    return start, lat, shut

def q(l, p): return sorted(l)[int(p * (len(l) - 1))] * 1000
a = trio.run(ours); b = theirs()
for name, (s, lat, sh) in (("jupervisor", a), ("jupyter_client", b)):
    print(f"{name:15s} start {s*1000:7.1f} ms  exec p50 {q(lat,.5):6.2f} p99 {q(lat,.99):6.2f} ms  shutdown {sh*1000:7.1f} ms")
