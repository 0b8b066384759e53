"""jupervisor for plain blocking code: the trio API as ordinary calls.

The trio core runs on its own thread (see ``_portal``); every method of the trio API is
available here with the same name and arguments, returning its result instead of a
coroutine. Calls are safe from several threads at once. Ctrl-C while a call waits
cancels the wait (pass ``interrupt_on_ctrl_c=True`` to ``execute`` via the kernel's
``execute_interruptible`` to also interrupt the kernel).

Example:
    >>> from jupervisor.blocking import open_supervisor
    >>> with open_supervisor() as sup:                           # doctest: +SKIP
    ...     k = sup.start_kernel("python3")
    ...     print(k.execute("1 + 1").result)
    2
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._connect import connect as _connect
from ._portal import Facade, Portal
from ._supervisor import open_supervisor as _open_supervisor


class BlockingKernel(Facade):
    """A kernel (supervised or connected) driven by blocking calls."""

    def execute_interruptible(self, code: str, **kwargs: Any) -> Any:
        """Like ``execute``, but Ctrl-C also interrupts the code running in the kernel."""
        try:
            return self.execute(code, **kwargs)
        except KeyboardInterrupt:
            self.interrupt()
            raise


@contextmanager
def open_supervisor(**kwargs: Any) -> Iterator[BlockingKernel]:
    """A supervisor for blocking code; leaving the block shuts every kernel down, even
    after an exception. Keyword arguments are those of ``jupervisor.open_supervisor``."""
    portal = Portal()
    try:
        sup, exit_ = portal.enter(lambda: _open_supervisor(**kwargs))
        try:
            yield BlockingKernel(sup, portal, "blocking")
        finally:
            exit_()
    finally:
        portal.close()


@contextmanager
def connect(connection_file: Any, **kwargs: Any) -> Iterator[BlockingKernel]:
    """A blocking client for a kernel someone else started (see ``jupervisor.connect``)."""
    portal = Portal()
    try:
        client, exit_ = portal.enter(lambda: _connect(connection_file, **kwargs))
        try:
            yield BlockingKernel(client, portal, "blocking")
        finally:
            exit_()
    finally:
        portal.close()


def run_notebook(notebook: Any, options: Any = None, **kwargs: Any) -> Any:
    """Execute a notebook on a fresh supervised kernel, blocking; returns the JobResult.

    Example:
        >>> result = run_notebook("report.ipynb", JobOptions(parameters={"n": 3}))   # doctest: +SKIP
    """
    from ._jobs import JobOptions
    from ._jobs import run_notebook as _run_notebook

    async def job() -> Any:
        async with _open_supervisor() as sup:
            return await _run_notebook(sup, notebook, options or JobOptions(), **kwargs)

    portal = Portal()
    try:
        return portal.call(job)
    finally:
        portal.close()
