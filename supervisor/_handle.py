# The handle users hold for a kernel we supervise: the request API of KernelClient plus
# lifecycle operations, each posted as a command to the kernel actor's mailbox. The
# handle keeps no state of its own; it reads the actor's published attributes.
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

from ._client import KernelClient
from .actors import ChannelSet, Interrupt, KernelActor, KernelNotRunning, Promise, Restart, Shutdown
from .protocol import ConnectionInfo, KernelState

_WAITING = (KernelState.STARTING, KernelState.RESTARTING)


@attrs.define(eq=False, init=False)
class Kernel(KernelClient):
    """A supervised kernel.

    Example:
        >>> kernel = await sup.start_kernel("python3")           # doctest: +SKIP
        >>> (await kernel.execute("2 + 3")).result
        '5'
    """

    _actor: KernelActor

    def __init__(self, actor: KernelActor) -> None:
        self.__attrs_init__(actor.kernel_id, self._channels, actor)

    # ---- read-only views -----------------------------------------------------------
    @property
    def state(self) -> KernelState:
        return self._actor.state

    @property
    def kernel_name(self) -> str:
        return self._actor.kernel_name

    @property
    def pid(self) -> int | None:
        return self._actor.pid

    @property
    def connection_file(self) -> Path | None:
        return self._actor.connection_file

    @property
    def connection_info(self) -> ConnectionInfo | None:
        return self._actor.info

    @property
    def restarts(self) -> int:
        return self._actor.restarts

    @property
    def info(self) -> Mapping[str, Any]:
        """The kernel_info_reply content the kernel gave when it became ready."""
        return self._actor.kernel_info

    @property
    def failure(self) -> str:
        """Why the kernel failed (state ``failed``), else ``""``."""
        return self._actor.failure

    def __repr__(self) -> str:
        return f"<Kernel {self.id} {self.kernel_name} {self.state} pid={self.pid}>"

    async def _channels(self) -> ChannelSet:
        actor = self._actor
        while True:
            if actor.state in (KernelState.IDLE, KernelState.BUSY) and actor.channels is not None:
                return actor.channels
            if actor.state in _WAITING or actor.restart_pending:
                await actor.wait_changed()
                continue
            raise KernelNotRunning(kernel_id=self.id, state=str(actor.state))

    async def wait_for_state(self, *states: KernelState) -> KernelState:
        """Wait until the kernel is in one of `states` (bound it with trio.fail_after)."""
        while self._actor.state not in states:
            await self._actor.wait_changed()
        return self._actor.state

    # ---- lifecycle -----------------------------------------------------------------
    async def _command(self, make: type, **kwargs: Any) -> Any:
        done: Promise = Promise()
        if not self._actor.mailbox.try_post(make(done=done, **kwargs)):
            raise KernelNotRunning(kernel_id=self.id, state=str(self.state))
        with trio.CancelScope(shield=make is Shutdown):
            return await done.wait()

    async def interrupt(self) -> None:
        """Interrupt the running code (SIGINT to the process group, or interrupt_request on
        control, as the kernelspec's interrupt_mode says). Returns when it was delivered.

        Raises:
            KernelNotRunning: the kernel is not running.
        """
        await self._command(Interrupt)

    async def restart(self) -> None:
        """Restart the kernel (graceful shutdown, then a new process with the same id and,
        where possible, the same ports). Returns when the new process answers.

        Raises:
            KernelStartError: the new process did not start.
        """
        await self._command(Restart)

    async def shutdown(self) -> None:
        """Shut the kernel down: shutdown_request, then SIGTERM, then SIGKILL, each bounded.
        Afterwards no process, socket or connection file of it is left. Never restarted."""
        await self._command(Shutdown)
