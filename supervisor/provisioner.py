"""A jupyter_client kernel provisioner named ``jupervisor``.

For people who keep their Jupyter server, nbclient, papermill or jupyter console and want
jupervisor's process handling underneath: kernels are launched, signalled, polled and
cleaned up by jupervisor's process actor (own process group, signals to the whole group,
exit noticed at once without polling, exit cause and the tail of stderr logged). This is
the only module that imports jupyter_client; install it with ``pip install
jupervisor[jupyter]``.

Switch it on for one kernelspec (kernel.json)::

    "metadata": {"kernel_provisioner": {"provisioner_name": "jupervisor"}}

or for every kernel: ``export JUPYTER_DEFAULT_PROVISIONER_NAME=jupervisor``.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from ._portal import Portal
from .actors import LocalProvisioner as ProcessActor
from .actors import event

log = logging.getLogger("jupervisor.provisioner")


class JupervisorProvisioner(LocalProvisioner):  # type: ignore[misc]
    """jupyter_client's provisioner API over jupervisor's process handling."""

    _portal: Portal | None = None
    _proc: ProcessActor | None = None
    _exit_code: int | None = None

    @property
    def has_process(self) -> bool:
        return self._proc is not None and self._proc.pid is not None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        """Launch `cmd` in its own process group (never through a shell)."""
        env = kwargs.get("env") or dict(os.environ)
        cwd = kwargs.get("cwd")
        if self._portal is None:
            self._portal = Portal()
        proc = ProcessActor()
        await self._portal.acall(proc.launch, cmd, env, cwd)
        self._portal.run_sync(lambda: self._portal._nursery.start_soon(proc.pump_stderr, self.kernel_id or ""))
        self._proc, self._exit_code = proc, None
        self.pid = self.pgid = proc.pid
        self.process = None  # jupyter_client's Popen is not used
        self.cwd = cwd
        return self.connection_info

    async def poll(self) -> int | None:
        if self._proc is None:
            return 0 if self._exit_code is not None else None
        return self._portal.run_sync(self._proc.poll)

    async def wait(self) -> int | None:
        """Wait for the exit (no polling loop); logs how it ended."""
        if self._proc is None:
            return self._exit_code
        status = await self._portal.acall(self._proc.wait)
        self._exit_code = status.code if status.code is not None else -(status.signal or 0)
        fields = {"kernel_id": self.kernel_id or "", "how": status.describe()}
        if status.abnormal and status.stderr_tail:
            fields["stderr_tail"] = status.stderr_tail[-500:]
        event(log, "provisioner.kernel_exited", logging.WARNING if status.abnormal else logging.INFO, **fields)
        return self._exit_code

    async def send_signal(self, signum: int) -> None:
        if self._proc is not None:
            await self._portal.acall(self._proc.send_signal, signum)

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        """Kill what is left of the process group, reap it, release ports and files."""
        if self._proc is not None:
            await self._portal.acall(self._proc.cleanup)
            self._proc = None
        await super().cleanup(restart=restart)
        if not restart and self._portal is not None:
            self._portal.close()
            self._portal = None
