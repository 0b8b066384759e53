"""Helpers shared by the integration tests."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import trio


async def interrupt_until(kernel, finished: trio.Event, *, tries: int = 3, wait_s: float = 10) -> None:
    """Interrupt `kernel` until the interrupted call has `finished`, at most `tries` times.

    Once in a while (seen in CI under load) ipykernel misses a SIGINT that lands as the
    cell starts; a user presses Ctrl-C again, and so do the tests.
    """
    for _ in range(tries):
        await kernel.interrupt()
        with trio.move_on_after(wait_s):
            await finished.wait()
            return
    raise AssertionError(f"no interrupt reached the running code in {tries} tries")


async def interrupt_running(kernel, code: str):
    """Run `code` (which prints, then blocks), interrupt it once it runs, return its result.

    ipykernel ignores SIGINT until the cell runs, so the first output is the signal to interrupt.
    """
    results = []
    running, finished = trio.Event(), trio.Event()

    async def run() -> None:
        results.append(await kernel.execute(code, on_output=lambda out: running.set()))
        finished.set()

    async with trio.open_nursery() as n:
        n.start_soon(run)
        await running.wait()
        await interrupt_until(kernel, finished)
    return results[0]


def wait_jupyter_server(client: httpx.Client, log: Path, timeout: float = 60) -> None:
    """Poll a starting Jupyter server's /api/status until it answers 200 (its log tail on failure)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/api/status").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "jupyter server did not start: " + log.read_text()[-2000:]
        time.sleep(0.2)
