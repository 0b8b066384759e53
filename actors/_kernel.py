# The kernel actor: owns one kernel's process (through a provisioner), its connection
# file and, per incarnation, its channel and heartbeat actors. What it is started with
# (options, the launch request, an adoption) is in _launch.py.
#
# Rules kept here:
# - Every state change goes through protocol.next_state and is published as a typed
#   event (and logged). The state is read-only for everyone else.
# - Lifecycle operations (start, restart, interrupt, shutdown) are commands in the
#   inbox and run one at a time; a Shutdown cancels a start or restart in progress.
# - Process exit is noticed at once (the provisioner's wait), and every caller waiting
#   on the kernel is released with KernelDied (cause, exit code or signal).
# - The actor never restarts a kernel on its own: it reports deaths and heartbeat news
#   on the event bus; a restarter (or the user) posts Restart, Kill or GiveUp.
# - On the way out, whatever happened, the process group is killed, sockets closed
#   and the connection file removed.
from __future__ import annotations

import logging
import math
import os
import secrets
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import attrs
import trio
import zmq

from ..protocol import (
    ConnectionInfo,
    KernelState,
    LifecycleEvent,
    Message,
    Session,
    interrupt_request,
    kernel_info_request,
    next_state,
    shutdown_request,
)
from ._channel import FailWatchers, Incoming, Subscribe, start_channels
from ._errors import KernelDied, KernelNotRunning, KernelStartError, RequestTimeout, unwrap_group
from ._events import (
    HeartbeatStatus,
    KernelBusy,
    KernelDiedEvent,
    KernelEvent,
    KernelFailed,
    KernelIdle,
    KernelReady,
    KernelRestarting,
    KernelStarting,
    KernelStopped,
)
from ._heartbeat import HeartbeatConfig, HeartbeatEvent, run_heartbeat
from ._launch import Adoption, KernelLaunch
from ._liveness import Liveness, Verdict, run_liveness
from ._log import event
from ._mailbox import Mailbox, Promise, open_mailbox
from ._ports import PortAllocator
from ._process import AdoptedProcess, ExitStatus, Provisioner
from ._request import ChannelSet, call

log = logging.getLogger("jupervisor.kernel")


# ---- commands ----------------------------------------------------------------------
@attrs.frozen
class Interrupt:
    done: Promise = attrs.field(eq=False)


@attrs.frozen
class Restart:
    """Restart the kernel (graceful if it is alive). `cause` is "requested" or a policy cause."""

    done: Promise | None = attrs.field(default=None, eq=False)
    cause: str = "requested"
    attempt: int = 0
    delay_s: float = 0.0


@attrs.frozen
class Shutdown:
    done: Promise = attrs.field(eq=False)


@attrs.frozen
class Kill:
    """The kernel was judged dead (frozen, hung): kill it; its death carries this cause."""

    cause: str
    detail: str = ""


@attrs.frozen
class GiveUp:
    """The restart policy gave up: the kernel becomes failed."""

    reason: str


@attrs.frozen
class ProcessExited:
    incarnation: int
    status: ExitStatus


KernelCommand: TypeAlias = Interrupt | Restart | Shutdown | Kill | GiveUp
_InboxItem: TypeAlias = KernelCommand | ProcessExited | Incoming | Verdict


_CONTROL_REQUESTS = frozenset(
    {"kernel_info_request", "shutdown_request", "interrupt_request", "debug_request", "usage_request"}
)


class _StartExited(Exception):
    def __init__(self, status: ExitStatus) -> None:
        self.status = status


async def run_kernel(
    launch: KernelLaunch,
    ctx: zmq.Context,
    ports: PortAllocator,
    publish: Callable[[KernelEvent], None],
    *,
    task_status: trio.TaskStatus[KernelActor] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Start a kernel and supervise it until it is shut down.

    `task_status.started` is called once the kernel answered kernel_info and iopub is
    live; a failed start raises KernelStartError to the starter instead.
    """
    start_error: KernelStartError | None = None
    async with trio.open_nursery() as nursery:
        actor = KernelActor(launch=launch, ctx=ctx, ports=ports, publish=publish, nursery=nursery)
        try:
            try:
                if launch.adopt is not None:
                    await actor.adopt(launch.adopt)
                else:
                    await actor.bring_up()
            except KernelStartError as exc:
                start_error = exc  # raised below, outside the nursery, so it is not wrapped in a group
            else:
                task_status.started(actor)
                await actor.loop()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await actor.release()
            nursery.cancel_scope.cancel()
    if start_error is not None:
        raise start_error


@attrs.define(eq=False)
class KernelActor:
    """One supervised kernel. Others read its attributes and post commands to `mailbox`."""

    launch: KernelLaunch
    ctx: zmq.Context
    ports: PortAllocator
    publish: Callable[[KernelEvent], None]
    nursery: trio.Nursery
    state: KernelState = KernelState.STARTING
    session: Session = attrs.field(factory=Session)
    info: ConnectionInfo | None = None
    connection_file: Path | None = None
    provisioner: Provisioner | None = None
    channels: ChannelSet | None = None
    kernel_info: Mapping[str, Any] = attrs.field(factory=dict)
    incarnation: int = 0
    restarts: int = 0
    last_exit: ExitStatus | None = None
    liveness: Liveness | None = None
    failure: str = ""
    restart_pending: bool = False
    _stopped: bool = False
    _inc_scope: trio.CancelScope | None = None
    _inc_nursery: trio.Nursery | None = None
    _hb_receive: trio.MemoryReceiveChannel[HeartbeatEvent] | None = None
    _op_scope: trio.CancelScope | None = None
    _death_cause: tuple[str, str] | None = None
    _changed: trio.Event = attrs.field(factory=trio.Event)
    mailbox: Mailbox[KernelCommand] = attrs.field(init=False)
    _inbox: trio.MemoryReceiveChannel[_InboxItem] = attrs.field(init=False)
    _raw_send: trio.MemorySendChannel[Any] = attrs.field(init=False)
    _ops: trio.MemorySendChannel[Callable[[], Any]] = attrs.field(init=False)
    _ops_recv: trio.MemoryReceiveChannel[Callable[[], Any]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.mailbox, self._inbox = open_mailbox()
        self._raw_send = self.mailbox._send
        self._ops, self._ops_recv = trio.open_memory_channel(math.inf)

    # ---- read-only views -----------------------------------------------------------
    @property
    def kernel_id(self) -> str:
        return self.launch.kernel_id

    @property
    def kernel_name(self) -> str:
        return self.launch.spec.name

    @property
    def pid(self) -> int | None:
        return self.provisioner.pid if self.provisioner is not None else None

    async def wait_changed(self) -> None:
        """Wait for the next state change."""
        await self._changed.wait()

    # ---- state ---------------------------------------------------------------------
    def _step(self, ev: LifecycleEvent) -> KernelState:
        old = self.state
        self.state = next_state(old, ev)
        if self.state != old:
            self._changed.set()
            self._changed = trio.Event()
        return self.state

    def _emit(self, ev: KernelEvent) -> None:
        level = logging.DEBUG if isinstance(ev, (KernelBusy, KernelIdle, HeartbeatStatus)) else logging.INFO
        if log.isEnabledFor(level):  # busy/idle are frequent: build the line only when it is shown
            fields = {k: v for k, v in attrs.asdict(ev).items() if k != "kernel_id" and v not in (None, "", 0, False)}
            name = "kernel." + type(ev).__name__.removeprefix("Kernel").removesuffix("Event").lower()
            event(log, name, level, kernel_id=self.kernel_id, **fields)
        self.publish(ev)

    # ---- main loop -----------------------------------------------------------------
    async def loop(self) -> None:
        """Handle inbox items until the kernel is shut down."""
        self.nursery.start_soon(self._run_ops)
        async for item in self._inbox:
            match item:
                case Incoming(message=m) if m.msg_type == "status":
                    self._on_status(m)
                case ProcessExited(incarnation=n, status=st):
                    if n == self.incarnation and self.state in (KernelState.IDLE, KernelState.BUSY):
                        self._on_death(st)
                case Verdict(cause=cause, detail=detail):
                    self._kill(cause, detail)
                case Shutdown(done=done):
                    if self._op_scope is not None:
                        self._op_scope.cancel()
                    self._ops.send_nowait(lambda done=done: self._shutdown(done))
                case Restart() as cmd:
                    self.restart_pending = True
                    self._ops.send_nowait(lambda cmd=cmd: self._restart(cmd))
                case Interrupt(done=done):
                    self._ops.send_nowait(lambda done=done: self._interrupt(done))
                case Kill(cause=cause, detail=detail):
                    self._kill(cause, detail)
                case GiveUp(reason=reason):
                    if self.state in (KernelState.DEAD, KernelState.RESTARTING, KernelState.STARTING):
                        self.failure = reason
                        self._step(LifecycleEvent.GIVE_UP)
                        self._emit(KernelFailed(kernel_id=self.kernel_id, reason=reason))
            if self.state is KernelState.DEAD and self._stopped:
                return

    async def _run_ops(self) -> None:
        async for op in self._ops_recv:
            with trio.CancelScope() as scope:
                self._op_scope = scope
                await op()
            self._op_scope = None

    def _kill(self, cause: str, detail: str) -> None:
        """Judged dead: release every waiting caller now, then SIGKILL the process group
        (which also ends a stopped process); the exit is then reported with `cause`."""
        if self.state not in (KernelState.IDLE, KernelState.BUSY) or self.provisioner is None:
            return
        self._death_cause = (cause, detail)
        self._fail_waiters(KernelDied(kernel_id=self.kernel_id, cause=cause, detail=detail))
        self.nursery.start_soon(self.provisioner.kill)

    def _on_status(self, message: Message) -> None:
        """Track busy/idle from iopub status. Statuses caused by control-channel requests
        (liveness probes, interrupts, debug) say nothing about the shell, so they are skipped."""
        if self.state not in (KernelState.IDLE, KernelState.BUSY):
            return
        if message.parent_header.get("msg_type") in _CONTROL_REQUESTS:
            return
        execution_state = message.content.get("execution_state")
        if execution_state == "busy" and self.state is KernelState.IDLE:
            self._step(LifecycleEvent.BUSY)
            self._emit(KernelBusy(kernel_id=self.kernel_id))
        elif execution_state == "idle" and self.state is KernelState.BUSY:
            self._step(LifecycleEvent.IDLE)
            self._emit(KernelIdle(kernel_id=self.kernel_id))

    def _on_death(self, status: ExitStatus) -> None:
        cause, detail = self._death_cause or ("exited", status.describe())
        self._death_cause = None
        self.last_exit = status
        err = KernelDied(
            kernel_id=self.kernel_id, cause=cause, exit_code=status.code, signal=status.signal, detail=detail
        )
        self._teardown(err)
        self._step(LifecycleEvent.EXITED)
        self._emit(
            KernelDiedEvent(
                kernel_id=self.kernel_id, cause=cause, exit_code=status.code, signal=status.signal, detail=detail
            )
        )

    def _fail_waiters(self, err: BaseException) -> None:
        """Release every caller waiting on this incarnation with `err`."""
        if self.channels is not None:
            for name in ("iopub", "shell", "control", "stdin"):
                self.channels.get(name).mailbox.try_post(FailWatchers(err))

    def _teardown(self, err: BaseException) -> None:
        """Release every waiting caller with `err` and end the incarnation's actors."""
        self._fail_waiters(err)
        if self._inc_scope is not None:
            self._inc_scope.cancel()
        self._inc_scope = self._inc_nursery = self._hb_receive = None
        self.channels = None

    # ---- start ---------------------------------------------------------------------
    async def adopt(self, adoption: Adoption) -> None:
        """Take over a running kernel: it must answer kernel_info (signed with its key).

        Raises:
            KernelStartError: it does not answer (it is then left to the caller to clean up).
        """
        self.info, self.connection_file = adoption.info, adoption.connection_file
        prov = AdoptedProcess(adoption.pid)
        self.provisioner = prov
        self.incarnation += 1
        self._inc_nursery, self.channels, self._hb_receive = await self.nursery.start(
            self._run_incarnation, self.incarnation, prov
        )
        self._inc_scope = self._inc_nursery.cancel_scope
        try:
            with trio.fail_after(min(self.launch.options.start_timeout_s, 10)):
                await self._wait_ready(prov, self.channels)
        except (trio.TooSlowError, _StartExited):
            self._teardown(KernelDied(kernel_id=self.kernel_id, cause="adoption_failed"))
            raise KernelStartError(kernel_name=self.kernel_name, reason="the kernel to adopt does not answer") from None
        await self._after_ready(prov)

    async def bring_up(self) -> None:
        """Launch a process and wait until it answers. Raises KernelStartError."""
        opts = self.launch.options
        self._emit(KernelStarting(kernel_id=self.kernel_id, kernel_name=self.kernel_name, attempt=self.restarts))
        for attempt in range(opts.start_retries):
            fresh_ports = self.info is None or attempt > 0
            self._prepare_connection(fresh_ports)
            try:
                await self._launch_once()
                return
            except _StartExited as exc:
                st = exc.status
                await self._discard_incarnation()
                if "Address already in use" in st.stderr_tail and attempt + 1 < opts.start_retries:
                    event(log, "kernel.port_conflict", logging.WARNING, kernel_id=self.kernel_id, attempt=attempt)
                    continue
                raise KernelStartError(
                    kernel_name=self.kernel_name,
                    reason=f"the kernel exited during start-up ({st.describe()})",
                    exit_code=st.code,
                    signal=st.signal,
                    stderr_tail=st.stderr_tail,
                ) from None
            except trio.TooSlowError:
                tail = self.provisioner.stderr_tail() if self.provisioner else ""
                await self._discard_incarnation()
                raise KernelStartError(
                    kernel_name=self.kernel_name,
                    reason=f"no kernel_info_reply within {opts.start_timeout_s:g}s",
                    stderr_tail=tail,
                ) from None
            except BaseException:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self._discard_incarnation()
                raise

    def _prepare_connection(self, fresh_ports: bool) -> None:
        opts = self.launch.options
        if fresh_ports or self.info is None:
            old = self.info
            if opts.transport == "tcp":
                if old is not None:
                    self.ports.release([old.port(c) for c in ("shell", "iopub", "stdin", "control", "hb")])
                p = self.ports.allocate(5)
            else:
                p = [1, 2, 3, 4, 5]
            key = old.key if old is not None else secrets.token_hex(32).encode()
            ip = opts.ip if opts.transport == "tcp" else str(self._ipc_base())
            self.info = ConnectionInfo(
                transport=opts.transport,
                ip=ip,
                shell_port=p[0],
                iopub_port=p[1],
                stdin_port=p[2],
                control_port=p[3],
                hb_port=p[4],
                key=key,
                kernel_name=self.kernel_name,
            )
        self.connection_file = self.launch.files.write(self.kernel_id, self.info)

    def _ipc_base(self) -> Path:
        return self.launch.files.directory / f"kernel-{self.kernel_id}-ipc"

    async def _launch_once(self) -> None:
        assert self.info is not None and self.connection_file is not None
        spec = self.launch.spec
        argv = spec.launch_argv(str(self.connection_file))
        extra = dict(self.launch.env)
        if self.launch.options.parent_watch:
            extra["JPY_PARENT_PID"] = str(os.getpid())
        env = spec.launch_env(os.environ, extra)
        prov = self.launch.provisioner_factory()
        try:
            await prov.launch(argv, env, self.launch.cwd)
        except OSError as exc:
            raise KernelStartError(
                kernel_name=self.kernel_name, reason=f"cannot run {argv[0]!r}: {exc.strerror or exc}"
            ) from None
        self.provisioner = prov
        self.incarnation += 1
        self._inc_nursery, self.channels, self._hb_receive = await self.nursery.start(
            self._run_incarnation, self.incarnation, prov
        )
        self._inc_scope = self._inc_nursery.cancel_scope
        with trio.fail_after(self.launch.options.start_timeout_s):
            await self._wait_ready(prov, self.channels)
        await self._after_ready(prov)

    async def _after_ready(self, prov: Provisioner) -> None:
        start_heartbeat, hb_receive = self._hb_receive
        start_heartbeat()  # only now: its first ping meets a kernel that listens
        self.liveness = await self._inc_nursery.start(
            run_liveness, self.launch.options.liveness, self.channels, hb_receive, self.mailbox, self.publish,
            lambda: self.state is KernelState.BUSY,
        )
        self._step(LifecycleEvent.READY)
        self._emit(KernelReady(kernel_id=self.kernel_id, pid=prov.pid, restarts=self.restarts))

    async def _run_incarnation(
        self, number: int, prov: Provisioner, *, task_status: trio.TaskStatus[tuple[trio.Nursery, ChannelSet, Any]]
    ) -> None:
        assert self.info is not None
        info = self.info
        identity = self.session.session_id.encode()
        async with trio.open_nursery() as n:
            if hasattr(prov, "pump_stderr"):
                n.start_soon(prov.pump_stderr, self.kernel_id)
            n.start_soon(self._watch_exit, number, prov)
            handles = await start_channels(
                n, self.ctx, info, identity=identity, kernel_id=self.kernel_id,
                iopub_busy_poll_s=self.launch.options.iopub_busy_poll_s,
            )
            handles["iopub"].mailbox.post(Subscribe(self._raw_send, frozenset({"status"})))
            hb = HeartbeatConfig(
                kernel_id=self.kernel_id, endpoint=info.endpoint("hb"), interval_s=self.launch.options.heartbeat_interval_s,
                ticker=self.launch.ticker,
            )
            hb_send, hb_receive = trio.open_memory_channel[HeartbeatEvent](64)
            started_hb = lambda: n.start_soon(run_heartbeat, hb, self.ctx, hb_send)  # noqa: E731
            task_status.started((n, ChannelSet(self.kernel_id, self.session, **handles), (started_hb, hb_receive)))

    async def _watch_exit(self, number: int, prov: Provisioner) -> None:
        status = await prov.wait()
        try:
            self._raw_send.send_nowait(ProcessExited(number, status))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _wait_ready(self, prov: Provisioner, channels: ChannelSet) -> None:
        seen_send, seen = trio.open_memory_channel[Any](math.inf)
        channels.iopub.mailbox.post(Subscribe(seen_send))
        try:
            await self._handshake(prov, channels, seen_send, seen)
        except BaseExceptionGroup as group:
            raise unwrap_group(group) from None

    async def _handshake(self, prov: Provisioner, channels: ChannelSet, seen_send: Any, seen: Any) -> None:
        async with seen_send, seen, trio.open_nursery() as n:

            async def exited() -> None:
                raise _StartExited(await prov.wait())

            n.start_soon(exited)
            reply = None
            wait_s = 1.0
            while True:
                try:
                    answer = await call(channels, kernel_info_request(), wait_for_idle=False, timeout=wait_s)
                except RequestTimeout:
                    wait_s = min(wait_s * 2, 8.0)  # a lost or dropped reply: ask again, as wait_for_ready does
                    continue
                reply = answer.reply
                with trio.move_on_after(0.5):
                    await seen.receive()
                    break
            self.kernel_info = dict(reply.content) if reply is not None else {}
            await channels.stdin.connected.wait()
            n.cancel_scope.cancel()

    async def _discard_incarnation(self) -> None:
        prov = self.provisioner
        self._teardown(KernelDied(kernel_id=self.kernel_id, cause="start_failed"))
        if prov is not None:
            await prov.cleanup()

    # ---- operations ----------------------------------------------------------------
    async def _interrupt(self, done: Promise) -> None:
        try:
            if self.state not in (KernelState.IDLE, KernelState.BUSY) or self.provisioner is None:
                raise KernelNotRunning(kernel_id=self.kernel_id, state=str(self.state))
            if self.launch.spec.interrupt_mode == "message":
                assert self.channels is not None
                await call(self.channels, interrupt_request(), wait_for_idle=False, timeout=10)
            else:
                await self.provisioner.send_signal(signal.SIGINT)
            done.resolve()
        except Exception as exc:
            done.fail(exc)

    async def _restart(self, cmd: Restart) -> None:
        try:
            if self._stopped or self.state is KernelState.STOPPING:
                raise KernelNotRunning(kernel_id=self.kernel_id, state=str(self.state))
            alive = self.state in (KernelState.IDLE, KernelState.BUSY, KernelState.STARTING)
            self._step(LifecycleEvent.RESTART)
            self._emit(
                KernelRestarting(kernel_id=self.kernel_id, cause=cmd.cause, attempt=cmd.attempt, delay_s=cmd.delay_s)
            )
            if alive:
                await self._stop_process(restart=True)
            self._teardown(KernelDied(kernel_id=self.kernel_id, cause="restarting", detail=cmd.cause))
            if self.provisioner is not None:
                await self.provisioner.cleanup()
            await trio.sleep(cmd.delay_s)  # the backoff; a Shutdown cancels it
            self.restarts += 1
            self._step(LifecycleEvent.SPAWNED)
            try:
                await self.bring_up()
            except KernelStartError as exc:
                self._step(LifecycleEvent.EXITED)
                self._emit(
                    KernelDiedEvent(
                        kernel_id=self.kernel_id, cause="start_failed", exit_code=exc.exit_code, signal=exc.signal,
                        detail=exc.reason,
                    )
                )
                raise
            if cmd.done is not None:
                cmd.done.resolve()
        except Exception as exc:
            if cmd.done is not None:
                cmd.done.fail(exc)
        finally:
            self.restart_pending = False
            self._changed.set()
            self._changed = trio.Event()

    async def _shutdown(self, done: Promise) -> None:
        with trio.CancelScope(shield=True):
            try:
                if self.state is not KernelState.STOPPING:
                    self._step(LifecycleEvent.SHUTDOWN)
                if self.provisioner is not None and self.provisioner.poll() is None:
                    await self._stop_process(restart=False)
                self._teardown(KernelDied(kernel_id=self.kernel_id, cause="shutdown"))
                await self.release()
                self._stopped = True
                self._step(LifecycleEvent.STOPPED)
                self._emit(KernelStopped(kernel_id=self.kernel_id))
                self._raw_send.send_nowait(None)  # wake the loop so it sees the end
                done.resolve()
            except Exception as exc:
                done.fail(exc)

    async def _stop_process(self, *, restart: bool) -> None:
        """The shutdown ladder: shutdown_request, then SIGTERM, then SIGKILL, each bounded."""
        prov = self.provisioner
        assert prov is not None
        opts = self.launch.options
        channels = self.channels
        if channels is not None:
            with trio.move_on_after(opts.shutdown_request_timeout_s):
                async with trio.open_nursery() as n:

                    async def ask() -> None:
                        try:
                            await call(channels, shutdown_request(restart=restart), wait_for_idle=False)
                        except (KernelDied, RequestTimeout):
                            pass

                    n.start_soon(ask)
                    await prov.wait()
                    n.cancel_scope.cancel()
        for step, wait_s in ((prov.terminate, opts.terminate_timeout_s), (prov.kill, opts.kill_timeout_s)):
            if prov.poll() is not None:
                break
            event(log, "kernel.escalate", logging.WARNING, kernel_id=self.kernel_id, step=step.__name__)
            await step()
            with trio.move_on_after(wait_s):
                await prov.wait()

    async def release(self) -> None:
        """Kill anything left of the process group, close sockets, remove the connection file."""
        self._teardown(KernelDied(kernel_id=self.kernel_id, cause="shutdown"))
        if self.provisioner is not None:
            await self.provisioner.cleanup()
        if self.connection_file is not None:
            self.launch.files.remove(self.connection_file)
        if self.info is not None and self.info.transport == "tcp":
            self.ports.release([self.info.port(c) for c in ("shell", "iopub", "stdin", "control", "hb")])
        elif self.info is not None:
            for c in ("shell", "iopub", "stdin", "control", "hb"):
                try:
                    os.unlink(f"{self.info.ip}-{self.info.port(c)}")
                except OSError:
                    pass
