# Kernel processes behind a provisioner interface shaped like jupyter_client's
# KernelProvisionerBase (launch, poll, wait, send_signal, terminate, kill, cleanup), so
# a remote provisioner can plug in later. LocalProvisioner starts the kernelspec argv in
# its own session (so its own process group), never through a shell; exit is noticed
# at once through trio's process wait (a pidfd on Linux, no polling loop); the tail of
# stderr is kept for error reports; signals go to the whole process group so
# grandchildren are covered.
from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs
import trio

from ._log import event

log = logging.getLogger("jupervisor.process")


@attrs.frozen
class ExitStatus:
    """How a kernel process ended.

    Attributes:
        code: The exit code, or None if a signal ended it.
        signal: The signal number that ended it, or None.
        stderr_tail: The last lines the process wrote to stderr.
    """

    code: int | None
    signal: int | None
    stderr_tail: str = ""

    @classmethod
    def from_returncode(cls, returncode: int, stderr_tail: str = "") -> ExitStatus:
        if returncode < 0:
            return cls(None, -returncode, stderr_tail)
        return cls(returncode, None, stderr_tail)

    @property
    def abnormal(self) -> bool:
        """A signal, or a nonzero exit code."""
        return self.signal is not None or self.code not in (0, None)

    def describe(self) -> str:
        """``exit code 3`` or ``signal SIGKILL``."""
        if self.signal is not None:
            try:
                return f"signal {signal.Signals(self.signal).name}"
            except ValueError:
                return f"signal {self.signal}"
        return f"exit code {self.code}"


class Provisioner(Protocol):
    """Launches and controls one kernel process (one incarnation)."""

    @property
    def pid(self) -> int | None: ...

    async def launch(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> None: ...

    def poll(self) -> int | None: ...

    async def wait(self) -> ExitStatus: ...

    async def send_signal(self, signum: int) -> None: ...

    async def terminate(self) -> None: ...

    async def kill(self) -> None: ...

    async def cleanup(self, restart: bool = False) -> None: ...

    def stderr_tail(self) -> str: ...


class _Signals:
    """terminate and kill, for provisioners whose send_signal reaches the process group."""

    async def send_signal(self, signum: int) -> None:
        raise NotImplementedError

    async def terminate(self) -> None:
        await self.send_signal(signal.SIGTERM)

    async def kill(self) -> None:
        await self.send_signal(signal.SIGKILL)


async def pump_stderr(stream: trio.abc.ReceiveStream | None, tail: collections.deque[str], kernel_id: str) -> None:
    """Read a kernel's stderr until EOF into `tail` (lines are logged at debug level)."""
    if stream is None:
        return
    pending = b""
    async with stream:
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace")
                tail.append(text)
                event(log, "process.stderr", logging.DEBUG, kernel_id=kernel_id, line=text)
    if pending:
        tail.append(pending.decode("utf-8", "replace"))


def signal_group(pid: int, signum: int) -> bool:
    """Signal the process group led by `pid`, else the process; False if neither exists."""
    for target in (os.killpg, os.kill):
        try:
            target(pid, signum)
            return True
        except (ProcessLookupError, PermissionError):
            continue
    return False


@attrs.define(eq=False)
class _StderrTail(_Signals):
    """The last `tail_lines` lines a kernel wrote to stderr, for error reports."""

    tail_lines: int = 40
    _tail: collections.deque[str] = attrs.field(init=False)
    _status: ExitStatus | None = attrs.field(default=None, init=False)
    _stderr_done: trio.Event = attrs.field(factory=trio.Event, init=False)

    def __attrs_post_init__(self) -> None:
        self._tail = collections.deque(maxlen=self.tail_lines)

    def stderr_tail(self) -> str:
        return "\n".join(self._tail)

    def _stderr_stream(self) -> trio.abc.ReceiveStream | None:
        raise NotImplementedError

    async def pump_stderr(self, kernel_id: str = "") -> None:
        """Read stderr until EOF, keeping the tail; lines are logged at debug level. The
        owner runs it in a nursery after `launch`, so stderr never fills its pipe."""
        await pump_stderr(self._stderr_stream(), self._tail, kernel_id)
        self._stderr_done.set()

    async def _ended(self, returncode: int | None) -> ExitStatus:
        """How the process ended, once the pump has read what it wrote before dying (0.2 s at most)."""
        with trio.move_on_after(0.2):
            await self._stderr_done.wait()
        tail = self.stderr_tail()
        return ExitStatus(None, None, tail) if returncode is None else ExitStatus.from_returncode(returncode, tail)


@attrs.define(eq=False)
class LocalProvisioner(_StderrTail):
    """Runs a kernel as a local child process in its own process group.

    The owner must run `pump_stderr` in a nursery after `launch` so stderr never fills
    its pipe.
    """

    _proc: trio.Process | None = attrs.field(default=None, init=False)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def launch(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> None:
        """Start the process.

        Raises:
            OSError: the executable does not exist or cannot be run (FileNotFoundError, PermissionError).
        """
        self._proc = await trio.lowlevel.open_process(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        event(log, "process.launched", pid=self._proc.pid, argv0=argv[0])

    def _stderr_stream(self) -> trio.abc.ReceiveStream | None:
        return self._proc.stderr if self._proc is not None else None

    def poll(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    async def wait(self) -> ExitStatus:
        """Wait for the process to end (no polling) and return how it ended."""
        assert self._proc is not None
        if self._status is None:
            self._status = await self._ended(await self._proc.wait())
        return self._status

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel's whole process group (the kernel and its children)."""
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            if self._proc.returncode is None:
                try:
                    self._proc.send_signal(signum)
                except ProcessLookupError:
                    pass
        await trio.lowlevel.checkpoint()

    async def cleanup(self, restart: bool = False) -> None:
        """Kill any process of the group left behind and reap the kernel."""
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._proc.returncode is None:
            self._proc.kill()
            with trio.move_on_after(5):
                await self._proc.wait()


@attrs.define(eq=False)
class AdoptedProcess(_Signals):
    """A kernel process we did not start (re-adopted after a daemon restart): exit is
    noticed at once through a pidfd (no polling); its exit code is not ours to read."""

    adopted_pid: int
    _status: ExitStatus | None = attrs.field(default=None, init=False)

    @property
    def pid(self) -> int | None:
        return self.adopted_pid

    async def launch(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> None:
        raise OSError("an adopted kernel cannot be launched again")

    def poll(self) -> int | None:
        if self._status is not None:
            return 0
        try:
            os.kill(self.adopted_pid, 0)
        except ProcessLookupError:
            return 0
        except PermissionError:
            return None
        return None

    async def wait(self) -> ExitStatus:
        if self._status is None:
            try:
                fd = os.pidfd_open(self.adopted_pid)
            except ProcessLookupError:
                fd = None
            if fd is not None:
                try:
                    await trio.lowlevel.wait_readable(fd)
                finally:
                    os.close(fd)
            self._status = ExitStatus(None, None, "")
        return self._status

    async def send_signal(self, signum: int) -> None:
        signal_group(self.adopted_pid, signum)
        await trio.lowlevel.checkpoint()

    async def cleanup(self, restart: bool = False) -> None:
        if self.poll() is None:
            await self.kill()
            with trio.move_on_after(5):
                await self.wait()

    def stderr_tail(self) -> str:
        return ""
