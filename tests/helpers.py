"""Helpers shared by the integration tests."""

from __future__ import annotations

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
