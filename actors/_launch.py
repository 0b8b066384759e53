# What a kernel is started with: where its connection file goes, its timing and
# transport options, and the launch request the kernel actor carries out (or the running
# kernel it adopts instead). Values only; the actor is in _kernel.py.
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import attrs

from ..protocol import ConnectionInfo, KernelSpec
from ._heartbeat import Ticker
from ._liveness import LivenessConfig
from ._process import LocalProvisioner, Provisioner


class ConnectionFiles(Protocol):
    """Where connection files are written (0600, atomically) and removed."""

    @property
    def directory(self) -> Path: ...

    def write(self, kernel_id: str, info: ConnectionInfo) -> Path: ...

    def remove(self, path: Path) -> None: ...


@attrs.frozen(kw_only=True)
class KernelOptions:
    """Per-kernel timing and transport settings.

    Attributes:
        start_timeout_s: Seconds for a start until the kernel answers kernel_info.
        shutdown_request_timeout_s: The shutdown ladder: seconds after shutdown_request,
            then after SIGTERM (`terminate_timeout_s`), then after SIGKILL (`kill_timeout_s`).
        heartbeat_interval_s: Seconds between heartbeat pings (all kernels share the grid).
        liveness: How heartbeat misses and control probes are judged.
        transport: "tcp" or "ipc".
        ip: Where a tcp kernel binds (loopback by default).
        start_retries: Start attempts when a kernel dies of a port conflict.
        parent_watch: Set JPY_PARENT_PID, so kernels exit when the supervisor dies (the
            daemon turns it off to re-adopt kernels after a crash).
        preload: Fork kernels of ipykernel's standard kernelspec from a preloaded
            interpreter instead of exec'ing each (actors/_preload.py).
        iopub_busy_poll_s: While iopub output streams in, the channel keeps polling this
            long after each message before it sleeps (0: off). On a VM this makes a
            kernel's own output loop up to ~1.7x faster (bench/consumers.py), for at most
            this much client CPU per burst.
    """

    start_timeout_s: float = 60.0
    shutdown_request_timeout_s: float = 3.0
    terminate_timeout_s: float = 2.0
    kill_timeout_s: float = 2.0
    heartbeat_interval_s: float = 1.0
    liveness: LivenessConfig = LivenessConfig()
    transport: str = "tcp"
    ip: str = "127.0.0.1"
    start_retries: int = 3
    parent_watch: bool = True
    preload: bool = True
    iopub_busy_poll_s: float = 0.001


@attrs.frozen(kw_only=True)
class Adoption:
    """A running kernel to take over (after a daemon restart) instead of starting one."""

    pid: int
    info: ConnectionInfo
    connection_file: Path


@attrs.frozen(kw_only=True)
class KernelLaunch:
    """Everything needed to start one kernel."""

    kernel_id: str
    spec: KernelSpec
    files: ConnectionFiles
    env: Mapping[str, str] = attrs.field(factory=dict)
    cwd: str | None = None
    options: KernelOptions = KernelOptions()
    provisioner_factory: Callable[[], Provisioner] = LocalProvisioner
    group: str = ""
    adopt: Adoption | None = None
    ticker: Ticker | None = attrs.field(default=None, eq=False)  # the supervisor's shared heartbeat timer
