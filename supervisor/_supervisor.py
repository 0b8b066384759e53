# The root supervisor: owns every kernel actor (and the zmq context and port allocator
# they share), fans their events out to subscribers, and shuts them all down together.
# `open_supervisor` is the one entry point; leaving it shuts every kernel down.
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from ._connfiles import RuntimeConnectionFiles
from ._handle import Kernel
from ._kernelspecs import get_kernel_spec
from .actors import (
    Adoption,
    HeartbeatStatus,
    KernelBusy,
    KernelIdle,
    KernelActor,
    KernelEvent,
    KernelLaunch,
    KernelOptions,
    KernelReady,
    KernelStopped,
    LocalProvisioner,
    Mailbox,
    NoSuchKernel,
    RestartPolicy,
    Supervise,
    unwrap_group,
    PortAllocator,
    PreloadPool,
    Provisioner,
    Ticker,
    preloadable,
    event,
    new_context,
    run_kernel,
    run_restarter,
)
from .protocol import KernelSpec, KernelState

log = logging.getLogger("jupervisor.supervisor")


@attrs.define(eq=False)
class EventBus:
    """Fans kernel events out to subscribers without ever blocking the publisher.

    A subscriber that falls `buffer` events behind loses the newest ones (counted in
    `dropped`); one that closed its channel is forgotten.
    """

    _subscribers: list[trio.MemorySendChannel[KernelEvent]] = attrs.field(factory=list)
    _mailboxes: list[tuple[Mailbox, tuple[type, ...]]] = attrs.field(factory=list)
    dropped: int = 0

    def attach(self, mailbox: Mailbox, skip: tuple[type, ...] = ()) -> None:
        """Deliver every event (but those of the `skip` types) to an actor's mailbox too
        (unbounded: actors must not miss events)."""
        self._mailboxes.append((mailbox, skip))

    def publish(self, ev: KernelEvent) -> None:
        for box, skip in self._mailboxes:
            if not isinstance(ev, skip):
                box.try_post(ev)
        for send in list(self._subscribers):
            try:
                send.send_nowait(ev)
            except trio.WouldBlock:
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)

    def subscribe(self, buffer: int = 1000) -> trio.MemoryReceiveChannel[KernelEvent]:
        send, receive = trio.open_memory_channel[KernelEvent](buffer)
        self._subscribers.append(send)
        return receive


@attrs.define(eq=False)
class Supervisor:
    """Owns many kernels. Get one with `open_supervisor`."""

    _nursery: trio.Nursery
    _options: KernelOptions = KernelOptions()
    _connection_dir: Path | None = None
    _ctx: Any = attrs.field(factory=new_context)
    _ports: PortAllocator = attrs.field(factory=PortAllocator)
    _actors: dict[str, KernelActor] = attrs.field(factory=dict)
    _bus: EventBus = attrs.field(factory=EventBus)
    _restarter: Mailbox | None = None
    _default_policy: RestartPolicy = RestartPolicy()
    _closing: bool = False
    _pools: dict[str, list[KernelActor]] = attrs.field(factory=dict)
    _pool_sizes: dict[str, int] = attrs.field(factory=dict)
    _refilling: set[str] = attrs.field(factory=set)
    _preloads: PreloadPool = attrs.field(init=False)
    _ticker: Ticker = attrs.field(factory=Ticker)  # one timer for every kernel's heartbeat

    def __attrs_post_init__(self) -> None:
        self._preloads = PreloadPool(self._nursery)

    async def _start_services(self) -> None:
        self._nursery.start_soon(self._ticker.run)
        self._restarter = await self._nursery.start(run_restarter, self._bus.publish)
        self._bus.attach(self._restarter, skip=(KernelBusy, KernelIdle, HeartbeatStatus))  # not its business

    @property
    def bus(self) -> EventBus:
        return self._bus

    def _publish(self, ev: KernelEvent) -> None:
        if isinstance(ev, KernelReady):
            self._preloads.kick()  # a restart's launch may have asked for a preload too
        if isinstance(ev, KernelStopped):
            self._actors.pop(ev.kernel_id, None)
            for pool in self._pools.values():
                pool[:] = [a for a in pool if a.kernel_id != ev.kernel_id]
        self._bus.publish(ev)

    async def start_kernel(
        self,
        kernel_name: str = "python3",
        *,
        spec: KernelSpec | None = None,
        kernel_id: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        options: KernelOptions | None = None,
        restart: RestartPolicy | None = None,
        group: str = "",
    ) -> Kernel:
        """Start a kernel and return once it answered kernel_info (and iopub is live).

        Args:
            kernel_name: A kernelspec name, found where Jupyter looks.
            spec: A KernelSpec to use instead of looking the name up.
            kernel_id: The id to give it (default: a new uuid).
            env: Extra environment variables for the kernel.
            cwd: Its working directory.
            options: Timing and transport settings for this kernel.
            restart: Its restart policy (default: the supervisor's, permanent with backoff).
            group: Its group, for one_for_all strategies and escalation.

        Raises:
            NoSuchKernelSpec: no kernelspec of that name.
            KernelStartError: the kernel could not start (exit code and stderr tail inside).

        Example:
            >>> kernel = await sup.start_kernel("python3", env={"X": "1"})   # doctest: +SKIP
        """
        if spec is None and kernel_id is None and not env and cwd is None and options is None and not group:
            warm = self._take_warm(kernel_name, restart)
            if warm is not None:
                return warm
        return await self._start(kernel_name, spec=spec, kernel_id=kernel_id, env=env, cwd=cwd, options=options,
                                 restart=restart, group=group)

    def set_warm_pool(self, kernel_name: str, size: int) -> None:
        """Keep `size` kernels of `kernel_name` started and idle; `start_kernel(kernel_name)`
        (with no id, env, cwd or options) then hands one out at once and a new one is
        started in the background. Pooled kernels are supervised like any other.

        Example:
            >>> sup.set_warm_pool("python3", 2)                            # doctest: +SKIP
        """
        self._pool_sizes[kernel_name] = size
        self._pools.setdefault(kernel_name, [])
        self._nursery.start_soon(self._refill, kernel_name)

    def warm_pool_names(self) -> list[str]:
        """The kernelspecs that have a warm pool."""
        return list(self._pool_sizes)

    def warm_kernels(self, kernel_name: str) -> int:
        """How many idle kernels of `kernel_name` wait in the pool now."""
        return sum(a.state is KernelState.IDLE for a in self._pools.get(kernel_name, []))

    def _take_warm(self, kernel_name: str, restart: RestartPolicy | None) -> Kernel | None:
        pool = self._pools.get(kernel_name, [])
        for actor in pool:
            if actor.state is KernelState.IDLE:
                pool.remove(actor)
                self._actors[actor.kernel_id] = actor
                if restart is not None and self._restarter is not None:
                    self._restarter.post(Supervise(actor.kernel_id, actor.mailbox, restart, ""))
                self._nursery.start_soon(self._refill, kernel_name)
                event(log, "kernel.from_warm_pool", kernel_id=actor.kernel_id, kernel_name=kernel_name)
                return Kernel(actor)
        return None

    async def _refill(self, kernel_name: str) -> None:
        if kernel_name in self._refilling:
            return
        self._refilling.add(kernel_name)
        try:
            pool = self._pools[kernel_name]
            while not self._closing and len(pool) < self._pool_sizes.get(kernel_name, 0):
                try:
                    kernel = await self._start(kernel_name, pooled=True)
                except Exception as exc:  # a spec that cannot start: report, stop refilling
                    event(log, "pool.refill_failed", logging.ERROR, kernel_name=kernel_name, error=str(exc)[:200])
                    return
                pool.append(kernel._actor)
        finally:
            self._refilling.discard(kernel_name)

    async def adopt_kernel(
        self, kernel_id: str, kernel_name: str, adoption: Adoption, *, restart: RestartPolicy | None = None
    ) -> Kernel:
        """Take over a running kernel (a daemon restarting after a crash): it must answer a
        signed kernel_info; then it is supervised as if we had started it.

        Raises:
            KernelStartError: it does not answer.
        """
        return await self._start(kernel_name, kernel_id=kernel_id, restart=restart, adopt=adoption)

    async def _start(
        self,
        kernel_name: str,
        *,
        spec: KernelSpec | None = None,
        kernel_id: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        options: KernelOptions | None = None,
        restart: RestartPolicy | None = None,
        group: str = "",
        adopt: Adoption | None = None,
        pooled: bool = False,
    ) -> Kernel:
        if self._closing:
            raise RuntimeError("the supervisor is closing")
        spec = spec or get_kernel_spec(kernel_name)
        kid = kernel_id or str(uuid.uuid4())
        if kid in self._actors:
            raise ValueError(f"a kernel with id {kid} exists already")
        opts = options or self._options
        extra = dict(env or {})
        launch = KernelLaunch(
            kernel_id=kid,
            spec=spec,
            files=RuntimeConnectionFiles(self._connection_dir),
            env=extra,
            cwd=cwd,
            options=opts,
            adopt=adopt,
            provisioner_factory=self._provisioner_factory(spec, extra) if opts.preload else LocalProvisioner,
            ticker=self._ticker,
        )
        try:
            actor: KernelActor = await self._nursery.start(run_kernel, launch, self._ctx, self._ports, self._publish)
        finally:
            self._preloads.kick()  # warm what this start asked for, now that it no longer competes for CPU
        if not pooled:
            self._actors[kid] = actor
        if self._restarter is not None:
            self._restarter.post(Supervise(kid, actor.mailbox, restart or self._default_policy, group))
        return Kernel(actor)

    def _provisioner_factory(self, spec: KernelSpec, extra: dict[str, str]) -> Callable[[], Provisioner]:
        def factory() -> Provisioner:  # called at each launch (restarts too): a preload may be ready by then
            argv = spec.launch_argv("{connection_file}")
            return self._preloads.provisioner(argv, extra, spec.launch_env(os.environ, extra))

        return factory

    async def preload(self, kernel_name: str = "python3") -> bool:
        """Warm a preloaded interpreter for this kernelspec now, so even the first start is a
        fork (the daemon does this for its default kernel). Kernels otherwise preload on
        first use: the first start is exec'd, later ones are forked.

        Returns:
            Whether starts of this kernelspec are now forked (False for kernelspecs that are
            not ipykernel's standard launcher line, or when preloading is off or failed).

        Raises:
            NoSuchKernel: no such kernelspec.
        """
        spec = get_kernel_spec(kernel_name)
        argv, env = spec.launch_argv("{connection_file}"), spec.launch_env(os.environ)
        if not (self._options.preload and preloadable(argv)):
            return False
        settled = self._preloads.warm(argv[0], env)
        if settled is not None:
            await settled.wait()
        return self._preloads.is_ready(argv[0], env)

    def kernels(self) -> list[Kernel]:
        """Every kernel this supervisor holds (any state but stopped)."""
        return [Kernel(a) for a in self._actors.values()]

    def get(self, kernel_id: str) -> Kernel:
        """The kernel with this id.

        Raises:
            NoSuchKernel: no such kernel.
        """
        try:
            return Kernel(self._actors[kernel_id])
        except KeyError:
            raise NoSuchKernel(kernel_id=kernel_id) from None

    def events(self, buffer: int = 1000) -> trio.MemoryReceiveChannel[KernelEvent]:
        """Subscribe to every kernel event from now on.

        Example:
            >>> async with sup.events() as events:                    # doctest: +SKIP
            ...     async for ev in events: print(ev)
        """
        return self._bus.subscribe(buffer)

    async def shutdown_all(self) -> None:
        """Shut every kernel down (warm pools included), concurrently."""
        pooled = [Kernel(a) for pool in self._pools.values() for a in pool]
        async with trio.open_nursery() as n:
            for kernel in self.kernels() + pooled:
                n.start_soon(_quiet_shutdown, kernel)

    async def aclose(self) -> None:
        self._closing = True
        with trio.CancelScope(shield=True):
            await self.shutdown_all()
            event(log, "supervisor.closed")


async def _quiet_shutdown(kernel: Kernel) -> None:
    try:
        await kernel.shutdown()
    except Exception as exc:  # a kernel that is already gone is fine
        event(log, "kernel.shutdown_error", logging.WARNING, kernel_id=kernel.id, error=type(exc).__name__)


@asynccontextmanager
async def open_supervisor(
    *,
    options: KernelOptions | None = None,
    connection_dir: str | Path | None = None,
    restart: RestartPolicy | None = None,
) -> AsyncIterator[Supervisor]:
    """Run a supervisor for the duration of the block; on exit every kernel is shut down
    (even after an exception) and the zmq context is closed.

    Errors from the block propagate unchanged (not wrapped in an ExceptionGroup).

    Example:
        >>> async with open_supervisor() as sup:                  # doctest: +SKIP
        ...     kernel = await sup.start_kernel("python3")
    """
    try:
        async with trio.open_nursery() as nursery:
            sup = Supervisor(nursery, options or KernelOptions(), Path(connection_dir) if connection_dir else None)
            if restart is not None:
                sup._default_policy = restart
            await sup._start_services()
            try:
                yield sup
            finally:
                await sup.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None
    finally:
        sup._ctx.destroy(linger=0)

