# Preloaded interpreters: ipykernel kernels forked from a process that has imported
# ipykernel already (see _preload_server.py), instead of exec'ing a fresh python that
# spends ~0.4 s importing it. One preload actor per (python, environment); a kernel is
# forked from it only when its kernelspec is ipykernel's standard one
# (`PY -m ipykernel_launcher -f {connection_file}`) and its environment equals the
# actor's except for per-kernel variables (JPY_*, KERNEL_*), which the child sets after
# the fork. Anything else is exec'd by LocalProvisioner as before, and so is the first
# start that finds no preload: the preload warms once that start is over (PreloadPool.kick).
#
# A forked kernel is not our child: its exit code comes from the preload server, and a
# pidfd notices its exit even if the server itself died.
from __future__ import annotations

import collections
import json
import logging
import os
import select
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import trio

from ._errors import unwrap_group
from ._log import event
from ._mailbox import Promise
from ._process import ExitStatus, LocalProvisioner, Provisioner, _StderrTail, pump_stderr, signal_group

log = logging.getLogger("jupervisor.preload")

SERVER = str(Path(__file__).with_name("_preload_server.py"))
VOLATILE = ("JPY_", "KERNEL_")  # per-kernel variables, set in the child after the fork


class PreloadError(Exception):
    """The preload server is gone or refused a request (the caller falls back to exec)."""


def preloadable(argv: Sequence[str]) -> bool:
    """Whether a kernelspec argv is ipykernel's standard launcher line."""
    return len(argv) == 5 and list(argv[1:4]) == ["-m", "ipykernel_launcher", "-f"]


def env_key(env: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    """The part of a kernel's environment a preloaded interpreter must have been started with."""
    return frozenset((k, v) for k, v in env.items() if not k.startswith(VOLATILE))


@attrs.define(eq=False)
class Preload:
    """Handle on one preload actor: a running server that forks kernels on request."""

    python: str
    key: frozenset[tuple[str, str]]
    pid: int
    _sock: socket.socket
    _pending: collections.deque[Promise[int]] = attrs.field(factory=collections.deque)
    _exits: dict[int, Promise[int]] = attrs.field(factory=dict)
    _sending: trio.Lock = attrs.field(factory=trio.Lock)
    alive: bool = True

    async def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None, fds: list[int]) -> tuple[int, Promise[int]]:
        """Fork a kernel; returns its pid and a promise of its return code.

        Raises:
            PreloadError: the server is gone or could not fork.
        """
        if not self.alive:
            raise PreloadError("the preload server is gone")
        payload = json.dumps({"argv": list(argv), "env": dict(env), "cwd": cwd}).encode()
        reply: Promise[int] = Promise()
        async with self._sending:  # requests go out (and replies come back) in order
            while True:
                try:
                    socket.send_fds(self._sock, [payload], fds)
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(self._sock)
                except OSError as exc:
                    raise PreloadError(f"cannot reach the preload server: {exc}") from None
            self._pending.append(reply)
        pid = await reply.wait()
        exited: Promise[int] = Promise()
        self._exits[pid] = exited
        return pid, exited

    def _dispatch(self, msg: dict) -> None:
        if "exited" in msg:
            promise = self._exits.pop(msg["exited"], None)
            if promise is not None:
                promise.resolve(msg["returncode"])
        elif "pid" in msg and self._pending:
            self._pending.popleft().resolve(msg["pid"])
        elif "error" in msg and self._pending:
            self._pending.popleft().fail(PreloadError(msg["error"]))

    def _lost(self) -> None:
        self.alive = False
        for promise in [*self._pending, *self._exits.values()]:
            promise.fail(PreloadError("the preload server is gone"))
        self._pending.clear()
        self._exits.clear()


async def run_preload(python: str, env: Mapping[str, str], on_ready: Callable[[Preload], None]) -> None:
    """The preload actor: start the server, hand `on_ready` its handle, relay its news until cancelled.

    Raises:
        PreloadError: the server did not come up (no ipykernel in that python, say).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    try:
        proc = await trio.lowlevel.open_process(
            [python, SERVER, str(theirs.fileno())], env=dict(env), pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        ours.close()
        raise PreloadError(f"cannot run {python!r}: {exc}") from None
    finally:
        theirs.close()
    handle: Preload | None = None
    tail: collections.deque[str] = collections.deque(maxlen=20)
    try:
        async with trio.open_nursery() as n:
            pumped = trio.Event()

            async def pump() -> None:  # read always: a full pipe would block the server
                await pump_stderr(proc.stderr, tail, "preload")
                pumped.set()

            n.start_soon(pump)
            with trio.move_on_after(60):
                hello = await _receive(ours)
            if not hello or "ready" not in hello or hello.get("threads") != 1:
                with trio.move_on_after(1):
                    await pumped.wait()  # its last words
                said = "\n".join(tail)[-2000:] or repr(hello)
                raise PreloadError(f"the preload server did not start: {said}")
            handle = Preload(python, env_key(env), proc.pid, ours)
            event(log, "preload.ready", pid=proc.pid, python=python)
            on_ready(handle)
            while (msg := await _receive(ours)) is not None:
                handle._dispatch(msg)
            n.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None
    finally:
        if handle is not None:
            handle._lost()
        # EOF: the server exits; the kernels it forked exit when they see it gone (it is the
        # parent they watch), unless they were started without a parent watch
        ours.close()
        if handle is None and proc.returncode is None:
            proc.kill()  # still importing (it reads EOF only once ready) and has no kernels yet
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()


async def _receive(sock: socket.socket) -> dict | None:
    while True:
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        except OSError:
            return None
        return json.loads(data) if data else None


@attrs.define(eq=False)
class PreloadPool:
    """The supervisor's preload actors, started on first use in its nursery.

    One per (python, environment), at most `limit`: each lives until the supervisor
    closes, since the kernels it forked watch it as their parent.
    """

    nursery: trio.Nursery
    limit: int = 2
    _ready: dict[tuple[str, frozenset[tuple[str, str]]], Preload] = attrs.field(factory=dict)
    _settled: dict[tuple[str, frozenset[tuple[str, str]]], trio.Event] = attrs.field(factory=dict)
    _deferred: dict[tuple[str, frozenset[tuple[str, str]]], dict[str, str]] = attrs.field(factory=dict)

    def provisioner(self, argv: Sequence[str], extra: Mapping[str, str], env: Mapping[str, str]) -> Provisioner:
        """A provisioner for this launch: forked from a ready preload, else exec'd (warming one up).

        Args:
            argv: The kernel's command line.
            extra: The variables this launch adds (only JPY_*/KERNEL_* ones allow a fork).
            env: The kernel's whole environment.
        """
        if not preloadable(argv) or any(not k.startswith(VOLATILE) for k in extra):
            return LocalProvisioner()
        slot = (argv[0], env_key(env))
        ready = self._ready.get(slot)
        if ready is not None and ready.alive:
            return PreloadedProcess(preload=ready)
        # warm once this start is over (`kick`): on two cores the server's imports would
        # slow down the very kernel being exec'd now
        self._deferred[slot] = dict(env)
        return LocalProvisioner()

    def kick(self) -> None:
        """Warm the preloads that launches asked for (called when a start has finished)."""
        deferred, self._deferred = self._deferred, {}
        for (python, _), env in deferred.items():
            self.warm(python, env)

    def warm(self, python: str, env: Mapping[str, str]) -> trio.Event | None:
        """Start a preload actor for `python` and `env` in the background (once; within the limit).

        Returns:
            An event set once it is ready or has failed; None past the limit.
        """
        slot = (python, env_key(env))
        if slot not in self._settled:
            if len(self._settled) >= self.limit:
                return None
            self._settled[slot] = trio.Event()
            self.nursery.start_soon(self._run, slot, dict(env))
        return self._settled[slot]

    def is_ready(self, python: str, env: Mapping[str, str]) -> bool:
        ready = self._ready.get((python, env_key(env)))
        return ready is not None and ready.alive

    async def _run(self, slot: tuple[str, frozenset[tuple[str, str]]], env: dict[str, str]) -> None:
        def on_ready(handle: Preload) -> None:
            self._ready[slot] = handle
            self._settled[slot].set()

        try:
            await run_preload(slot[0], env, on_ready)
            # the server went away after it was ready (killed, say): the next launch warms a new one
            event(log, "preload.lost", logging.WARNING, python=slot[0])
            del self._settled[slot]
        except PreloadError as exc:  # it never came up: do not try again
            event(log, "preload.unavailable", logging.INFO, python=slot[0], reason=str(exc))
            self._settled[slot].set()
        finally:
            if self._ready.get(slot) is not None and not self._ready[slot].alive:
                del self._ready[slot]


@attrs.define(eq=False)
class PreloadedProcess(_StderrTail):
    """A kernel forked by a preload server: in its own session, stderr piped to us."""

    preload: Preload = attrs.field(kw_only=True)
    _pid: int | None = attrs.field(default=None, init=False)
    _pidfd: int | None = attrs.field(default=None, init=False)
    _pidfd_waited: bool = attrs.field(default=False, init=False)
    _exited: Promise[int] | None = attrs.field(default=None, init=False)
    _stderr: trio.lowlevel.FdStream | None = attrs.field(default=None, init=False)

    @property
    def pid(self) -> int | None:
        return self._pid

    async def launch(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> None:
        """Fork the kernel from the preload server.

        Raises:
            OSError: the server is gone or could not fork (the caller may retry; the next
                launch is exec'd).
        """
        read_end, write_end = os.pipe()
        try:
            # cwd None means ours now, as with exec (not the server's, fixed when it started)
            self._pid, self._exited = await self.preload.spawn(argv, env, cwd or os.getcwd(), [1, write_end])
        except PreloadError as exc:
            os.close(read_end)
            raise OSError(str(exc)) from None
        finally:
            os.close(write_end)
        self._stderr = trio.lowlevel.FdStream(read_end)
        try:
            self._pidfd = os.pidfd_open(self._pid)
        except OSError:
            self._pidfd = None
        event(log, "process.launched", pid=self._pid, argv0=argv[0], preloaded=True)

    def _stderr_stream(self) -> trio.abc.ReceiveStream | None:
        return self._stderr

    def poll(self) -> int | None:
        if self._status is not None:
            return -self._status.signal if self._status.signal else (self._status.code or 0)
        if self._exited is not None and self._exited.done:
            return 0
        if self._pidfd is not None:
            return 0 if select.select([self._pidfd], [], [], 0)[0] else None
        return None

    async def wait(self) -> ExitStatus:
        """Wait for the kernel to end (no polling): the server's report, or the pidfd if the
        server died. Several tasks may wait at once."""
        assert self._exited is not None
        if self._status is None:
            rc: int | None = None
            try:
                if self._pidfd is not None:
                    # trio allows one waiter per fd: the first waits on the pidfd, others on a dup
                    first = not self._pidfd_waited
                    fd = self._pidfd if first else os.dup(self._pidfd)
                    self._pidfd_waited = True
                    try:
                        await trio.lowlevel.wait_readable(fd)
                    except trio.ClosedResourceError:
                        pass  # cleanup closed it: the process is gone
                    finally:
                        if first:
                            self._pidfd_waited = False
                        else:
                            os.close(fd)
                    with trio.move_on_after(1):
                        rc = await self._exited.wait()
                else:
                    rc = await self._exited.wait()
            except PreloadError:
                rc = None
            status = await self._ended(rc)
            if self._status is None:  # another waiter may have finished first
                self._status = status
        return self._status

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group (it called setsid after the fork)."""
        if self._pid is not None and self.poll() is None:
            signal_group(self._pid, signum)
        await trio.lowlevel.checkpoint()

    async def cleanup(self, restart: bool = False) -> None:
        """Kill anything left of the process group and wait (bounded) for the exit."""
        if self._pid is None:
            return
        signal_group(self._pid, signal.SIGKILL)
        with trio.move_on_after(5):
            await self.wait()
        if self._pidfd is not None:
            trio.lowlevel.notify_closing(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


