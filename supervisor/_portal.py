# The portal: the trio core running on its own thread, and the one mechanism by which
# non-trio code (plain blocking callers, asyncio programs) runs coroutines on it.
#
# Why a thread rather than trio's guest mode for asyncio hosts: the supervisor's
# heartbeats, probes and restart timers must keep their pace even while the host's event
# loop is busy or blocked; in guest mode they would share that loop and a busy host
# would look like a frozen kernel. One portal thread also serves blocking and asyncio
# callers alike, so each operation exists once (the trio coroutine) with thin facades.
from __future__ import annotations

import asyncio
import functools
import inspect
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import trio

from .actors import unwrap_group

T = TypeVar("T")
_DONE = object()


class Portal:
    """A trio event loop on a daemon thread, with a nursery for long-lived tasks."""

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), name="jupervisor-trio", daemon=True)
        self._thread.start()
        self._ready.wait()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    # ---- blocking callers --------------------------------------------------------------
    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the trio thread and wait for it here.

        Ctrl-C (KeyboardInterrupt) while waiting cancels the trio side and re-raises.
        """
        scope: list[trio.CancelScope] = []

        async def runner() -> T:
            with trio.CancelScope() as cs:
                scope.append(cs)
                return await fn(*args, **kwargs)
            raise KeyboardInterrupt  # cancelled from the caller's side

        try:
            return trio.from_thread.run(runner, trio_token=self._token)
        except KeyboardInterrupt:
            if scope:
                trio.from_thread.run_sync(scope[0].cancel, trio_token=self._token)
            raise
        except BaseExceptionGroup as group:
            raise unwrap_group(group) from None

    def iterate(self, agen_fn: Callable[..., AsyncIterator[T]], *args: Any, **kwargs: Any) -> Iterator[T]:
        """Drive an async iterator on the trio thread; yield its items here."""
        items: queue.Queue[Any] = queue.Queue(maxsize=1000)
        scope: list[trio.CancelScope] = []

        async def pump() -> None:
            with trio.CancelScope() as cs:
                scope.append(cs)
                try:
                    async for item in agen_fn(*args, **kwargs):
                        await trio.to_thread.run_sync(items.put, (True, item))
                except BaseException as exc:  # handed to the consumer, raised there
                    items.put((False, unwrap_group(exc)))
                    return
            items.put((True, _DONE))

        trio.from_thread.run_sync(lambda: self._nursery.start_soon(pump), trio_token=self._token)
        try:
            while True:
                ok, item = items.get()
                if not ok:
                    raise item
                if item is _DONE:
                    return
                yield item
        finally:
            if scope:
                try:
                    trio.from_thread.run_sync(scope[0].cancel, trio_token=self._token)
                except trio.RunFinishedError:
                    pass

    # ---- asyncio callers ---------------------------------------------------------------
    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` from asyncio without blocking its loop.

        Cancelling the awaiting asyncio task cancels the trio side.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        scope: list[trio.CancelScope] = []

        def settle(ok: bool, value: Any) -> None:
            if not future.done():
                future.set_result(value) if ok else future.set_exception(value)

        async def runner() -> None:
            with trio.CancelScope() as cs:
                scope.append(cs)
                try:
                    value = await fn(*args, **kwargs)
                except BaseException as exc:
                    exc = unwrap_group(exc)
                    if isinstance(exc, trio.Cancelled):
                        raise
                    loop.call_soon_threadsafe(settle, False, exc)
                    return
                loop.call_soon_threadsafe(settle, True, value)

        trio.from_thread.run_sync(lambda: self._nursery.start_soon(runner), trio_token=self._token)
        try:
            return await future
        except asyncio.CancelledError:
            if scope:
                trio.from_thread.run_sync(scope[0].cancel, trio_token=self._token)
            raise

    async def aiterate(self, agen_fn: Callable[..., AsyncIterator[T]], *args: Any, **kwargs: Any) -> AsyncIterator[T]:
        """Drive an async iterator on the trio thread; yield its items in asyncio."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[Any] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for item in agen_fn(*args, **kwargs):
                    loop.call_soon_threadsafe(items.put_nowait, (True, item))
            except BaseException as exc:
                loop.call_soon_threadsafe(items.put_nowait, (False, unwrap_group(exc)))
                raise
            loop.call_soon_threadsafe(items.put_nowait, (True, _DONE))

        cancel = trio.CancelScope()

        async def guarded() -> None:
            with cancel:
                await pump()

        trio.from_thread.run_sync(lambda: self._nursery.start_soon(guarded), trio_token=self._token)
        try:
            while True:
                ok, item = await items.get()
                if not ok:
                    raise item
                if item is _DONE:
                    return
                yield item
        finally:
            trio.from_thread.run_sync(cancel.cancel, trio_token=self._token)

    def enter(self, cm_factory: Callable[[], Any]) -> tuple[Any, Callable[[], None]]:
        """Enter an async context manager on the trio thread; returns its value and a
        blocking function that exits it (waiting until the exit is complete)."""
        closed: list[BaseException | None] = []

        async def hold(task_status: trio.TaskStatus[tuple[Any, trio.Event, trio.Event]]) -> None:
            release, finished = trio.Event(), trio.Event()
            try:
                async with cm_factory() as value:
                    task_status.started((value, release, finished))
                    await release.wait()
            except BaseException as exc:  # reported to whoever exits
                closed.append(unwrap_group(exc))
            finally:
                finished.set()

        async def start() -> tuple[Any, trio.Event, trio.Event]:
            return await self._nursery.start(hold)

        value, release, finished = self.call(start)

        def exit_() -> None:
            async def wait() -> None:
                release.set()
                await finished.wait()

            self.call(wait)
            if closed and not isinstance(closed[0], trio.Cancelled):
                raise closed[0]

        return value, exit_

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain function on the trio thread (for reads of actor-owned state)."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def close(self) -> None:
        """Stop the trio thread (after the owner shut its kernels down)."""
        if self._thread.is_alive():
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            self._thread.join(10)


class Facade:
    """Wraps a trio object so its coroutine methods become blocking calls (mode
    "blocking") or asyncio awaitables (mode "asyncio"), and its async iterators plain or
    asyncio iterators. Attributes that are not coroutines pass through unchanged; results
    that are themselves jupervisor objects are wrapped the same way."""

    _wrap_types: tuple[type, ...] = ()

    def __init__(self, target: Any, portal: Portal, mode: str) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_portal", portal)
        object.__setattr__(self, "_mode", mode)

    def _wrap(self, value: Any) -> Any:
        from ._client import KernelClient

        if isinstance(value, KernelClient):
            return type(self)(value, self._portal, self._mode)
        if isinstance(value, list) and value and isinstance(value[0], KernelClient):
            return [type(self)(v, self._portal, self._mode) for v in value]
        return value

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        portal, mode = self._portal, self._mode
        if inspect.isasyncgenfunction(attr):
            if mode == "blocking":
                return functools.wraps(attr)(lambda *a, **k: portal.iterate(attr, *a, **k))
            return functools.wraps(attr)(lambda *a, **k: portal.aiterate(attr, *a, **k))
        if inspect.iscoroutinefunction(attr):
            if mode == "blocking":

                @functools.wraps(attr)
                def blocking(*a: Any, **k: Any) -> Any:
                    return self._wrap(portal.call(attr, *a, **k))

                return blocking

            @functools.wraps(attr)
            async def awaitable(*a: Any, **k: Any) -> Any:
                return self._wrap(await portal.acall(attr, *a, **k))

            return awaitable
        if callable(attr) and not isinstance(attr, type):

            @functools.wraps(attr)
            def plain(*a: Any, **k: Any) -> Any:
                return self._wrap(portal.run_sync(functools.partial(attr, *a, **k)))

            return plain
        return attr

    def __repr__(self) -> str:
        return f"<{self._mode} {self._target!r}>"
