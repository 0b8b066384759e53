"""jupervisor for asyncio programs (asyncio.run, tornado, other asyncio servers).

Every method of the trio API can be awaited from asyncio with the same name and
arguments; the asyncio event loop is never blocked. The trio core runs on its own thread
(a portal; see ``_portal`` for why not guest mode): the supervisor's heartbeats and
restart timers keep their pace however busy the host loop is. Cancelling the awaiting
asyncio task cancels the request on the trio side.

Example:
    >>> async def main():                                           # doctest: +SKIP
    ...     async with jupervisor.aio.open_supervisor() as sup:
    ...         k = await sup.start_kernel("python3")
    ...         print((await k.execute("1 + 1")).result)
    >>> asyncio.run(main())                                        # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ._connect import connect as _connect
from ._portal import Facade, Portal
from ._supervisor import open_supervisor as _open_supervisor


class AsyncKernel(Facade):
    """A kernel (supervised or connected), or the supervisor, awaited from asyncio."""


@asynccontextmanager
async def _entered(factory: Any) -> AsyncIterator[AsyncKernel]:
    portal = await asyncio.to_thread(Portal)
    try:
        value, exit_ = await asyncio.to_thread(portal.enter, factory)
        try:
            yield AsyncKernel(value, portal, "asyncio")
        finally:
            await asyncio.to_thread(exit_)
    finally:
        await asyncio.to_thread(portal.close)


def open_supervisor(**kwargs: Any):  # noqa: ANN201 - an async context manager of AsyncKernel
    """A supervisor for asyncio code; leaving the block shuts every kernel down."""
    return _entered(lambda: _open_supervisor(**kwargs))


def connect(connection_file: Any, **kwargs: Any):  # noqa: ANN201
    """An asyncio client for a kernel someone else started."""
    return _entered(lambda: _connect(connection_file, **kwargs))
