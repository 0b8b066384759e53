"""A jupyter_client-compatible surface, backed by jupervisor's actors and supervision.

Code written against jupyter_client migrates by changing its import line::

    from jupervisor.compat import KernelManager          # was: from jupyter_client import KernelManager

Kernels started here get jupervisor's restart policies, heartbeat and hang detection,
process-group signalling and the shutdown ladder. Deliberate differences from
jupyter_client: replies are never discarded because another caller waits (every message
stays in its channel's queue until someone takes it); a kernel that dies is restarted by
the supervision policy, not by a 3-second poll; ``restart_kernel(newports=True)`` is
accepted but ports are kept when possible (connected clients reconnect on their own).
"""

from __future__ import annotations

import asyncio
import functools
import glob
import json
import os
import signal as _signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._compat_client import AsyncKernelClient, BlockingKernelClient, KernelClient
from ._files import write_private_file
from ._kernelspecs import (
    NoSuchKernelSpec,
    find_kernel_specs,
    get_kernel_spec,
    install_kernel_spec,
    remove_kernel_spec,
)
from ._paths import jupyter_runtime_dir
from ._portal import Portal
from ._supervisor import open_supervisor
from .actors import NoSuchKernel as _NoSuchKernel
from .protocol import KernelSpec as _Spec

NoSuchKernel = _NoSuchKernel


class DuplicateKernelError(Exception):
    """A kernel with that id exists already (jupyter_client's name)."""


class KernelSpec:
    """jupyter_client's KernelSpec shape."""

    def __init__(self, spec: _Spec) -> None:
        self._spec = spec
        self.argv = list(spec.argv)
        self.display_name = spec.display_name
        self.language = spec.language
        self.env = dict(spec.env)
        self.interrupt_mode = spec.interrupt_mode
        self.metadata = dict(spec.metadata)
        self.resource_dir = spec.resource_dir

    def to_dict(self) -> dict[str, Any]:
        return self._spec.to_dict()

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class KernelSpecManager:
    """Finds kernelspecs where Jupyter looks."""

    def find_kernel_specs(self) -> dict[str, str]:
        return find_kernel_specs()

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        try:
            return KernelSpec(get_kernel_spec(kernel_name))
        except NoSuchKernelSpec as exc:
            raise NoSuchKernel(kernel_id=kernel_name) from exc

    def get_all_specs(self) -> dict[str, dict[str, Any]]:
        return {n: {"resource_dir": d, "spec": get_kernel_spec(n).to_dict()} for n, d in find_kernel_specs().items()}

    def install_kernel_spec(self, source_dir: str, kernel_name: str | None = None, user: bool = False,
                            replace: bool | None = None, prefix: str | None = None) -> str:
        return str(install_kernel_spec(source_dir, name=kernel_name, user=user, prefix=prefix))

    def remove_kernel_spec(self, name: str) -> str:
        return str(remove_kernel_spec(name))


class _Host:
    """A portal thread running one jupervisor supervisor (shared by a MultiKernelManager)."""

    def __init__(self) -> None:
        self.portal = Portal()
        self.sup, self._exit = self.portal.enter(open_supervisor)

    def close(self) -> None:
        try:
            self._exit()
        finally:
            self.portal.close()


class KernelManager:
    """jupyter_client's KernelManager API: one supervised kernel."""

    client_class = BlockingKernelClient

    def __init__(self, kernel_name: str = "python3", kernel_id: str | None = None, _host: _Host | None = None,
                 **kwargs: Any) -> None:
        self.kernel_name = kernel_name
        self.kernel_id = kernel_id
        self._host = _host
        self._owns_host = _host is None
        self._kernel: Any = None
        self.connection_file = kwargs.get("connection_file", "")

    # ---- lifecycle -----------------------------------------------------------------
    @property
    def has_kernel(self) -> bool:
        return self._kernel is not None

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(get_kernel_spec(self.kernel_name))

    def start_kernel(self, **kw: Any) -> None:
        """Start the kernel (``env``, ``cwd`` and ``kernel_id`` are honoured)."""
        if self._host is None:
            self._host = _Host()
        env = {k: v for k, v in (kw.get("env") or {}).items() if os.environ.get(k) != v}
        self.kernel_id = kw.get("kernel_id") or self.kernel_id or str(uuid.uuid4())
        self._kernel = self._host.portal.call(
            self._host.sup.start_kernel, self.kernel_name, kernel_id=self.kernel_id, env=env, cwd=kw.get("cwd")
        )
        self.connection_file = str(self._kernel.connection_file)

    def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """Shut the kernel down (the ladder: request, SIGTERM, SIGKILL); never restarted."""
        if self._kernel is not None:
            self._host.portal.call(self._kernel.shutdown)
            self._kernel = None
        if self._owns_host and self._host is not None:
            self._host.close()
            self._host = None

    def restart_kernel(self, now: bool = False, newports: bool = False, **kw: Any) -> None:
        self._require()
        self._host.portal.call(self._kernel.restart)

    def interrupt_kernel(self) -> None:
        self._require()
        self._host.portal.call(self._kernel.interrupt)

    def signal_kernel(self, signum: int) -> None:
        self._require()
        pid = self._kernel.pid
        if pid:
            os.killpg(pid, signum)

    def is_alive(self) -> bool:
        return self._kernel is not None and self._kernel.state.value in ("idle", "busy", "starting", "restarting")

    def cleanup_resources(self, restart: bool = False) -> None:
        """Connection files and sockets are cleaned up by the kernel actor itself."""

    def _require(self) -> None:
        if self._kernel is None:
            raise RuntimeError("Cannot do this: no kernel is running")

    # ---- connection -----------------------------------------------------------------
    def get_connection_info(self, session: bool = False) -> dict[str, Any]:
        self._require()
        info = self._kernel.connection_info
        d = info.to_dict()
        d["key"] = info.key
        return d

    @property
    def ready(self) -> Any:
        fut: Any = asyncio.Future() if _loop_running() else None
        if fut is not None:
            fut.set_result(None)
        return fut

    def client(self, **kwargs: Any) -> BlockingKernelClient:
        """A client connected to this kernel (call start_channels on it, as usual)."""
        self._require()
        return self.client_class(connection_file=self.connection_file, **kwargs)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _async_version(cls: type, client_class: type | None = None) -> type:
    """Build the asyncio class: the same methods, awaited on a worker thread."""
    names = [n for n in ("start_kernel", "shutdown_kernel", "restart_kernel", "interrupt_kernel", "shutdown_all",
                         "is_alive") if hasattr(cls, n)]

    def make(name: str) -> Any:
        sync = getattr(cls, name)

        @functools.wraps(sync)
        async def method(self: Any, *a: Any, **k: Any) -> Any:
            return await asyncio.to_thread(sync, self, *a, **k)

        return method

    ns: dict[str, Any] = {n: make(n) for n in names}
    if client_class is not None:
        ns["client_class"] = client_class
    return type("Async" + cls.__name__, (cls,), ns)


AsyncKernelManager = _async_version(KernelManager, AsyncKernelClient)


class MultiKernelManager:
    """jupyter_client's MultiKernelManager API: many supervised kernels, one supervisor."""

    kernel_manager_class = KernelManager

    def __init__(self, default_kernel_name: str = "python3", **kwargs: Any) -> None:
        self.default_kernel_name = default_kernel_name
        self._host: _Host | None = None
        self._kernels: dict[str, KernelManager] = {}

    def start_kernel(self, kernel_name: str | None = None, kernel_id: str | None = None, **kwargs: Any) -> str:
        if kernel_id is not None and kernel_id in self._kernels:
            raise DuplicateKernelError(f"Kernel already exists: {kernel_id}")
        if self._host is None:
            self._host = _Host()
        km = self.kernel_manager_class(kernel_name or self.default_kernel_name, kernel_id=kernel_id, _host=self._host)
        km.start_kernel(**kwargs)
        self._kernels[km.kernel_id] = km
        return km.kernel_id

    def get_kernel(self, kernel_id: str) -> KernelManager:
        try:
            return self._kernels[kernel_id]
        except KeyError:
            raise NoSuchKernel(kernel_id=kernel_id) from None

    def list_kernel_ids(self) -> list[str]:
        return list(self._kernels)

    def __len__(self) -> int:
        return len(self._kernels)

    def __contains__(self, kernel_id: object) -> bool:
        return kernel_id in self._kernels

    def shutdown_kernel(self, kernel_id: str, now: bool = False, restart: bool = False) -> None:
        self.get_kernel(kernel_id).shutdown_kernel(now=now)
        del self._kernels[kernel_id]

    def shutdown_all(self, now: bool = False) -> None:
        if self._host is not None:
            self._host.portal.call(self._host.sup.shutdown_all)
            self._kernels.clear()
            self._host.close()
            self._host = None

    def restart_kernel(self, kernel_id: str, now: bool = False) -> None:
        self.get_kernel(kernel_id).restart_kernel(now=now)

    def interrupt_kernel(self, kernel_id: str) -> None:
        self.get_kernel(kernel_id).interrupt_kernel()

    def is_alive(self, kernel_id: str) -> bool:
        return self.get_kernel(kernel_id).is_alive()

    def get_connection_info(self, kernel_id: str) -> dict[str, Any]:
        return self.get_kernel(kernel_id).get_connection_info()


AsyncMultiKernelManager = _async_version(MultiKernelManager)


# ---- module-level helpers ------------------------------------------------------------
def find_connection_file(filename: str = "kernel-*.json", path: str | list[str] | None = None,
                         profile: str | None = None) -> str:
    """The newest connection file matching `filename` in `path` (default: the runtime dir).

    Raises:
        OSError: none matches.
    """
    if os.path.isfile(filename):
        return os.path.abspath(filename)
    dirs = [path] if isinstance(path, str) else (path or [".", jupyter_runtime_dir()])
    pattern = filename if "*" in filename else f"*{filename}*"
    matches = [m for d in dirs for m in glob.glob(os.path.join(d, pattern))]
    if not matches:
        raise OSError(f"Could not find {filename!r} in {dirs!r}")
    return max(matches, key=os.path.getmtime)


def write_connection_file(fname: str | None = None, shell_port: int = 0, iopub_port: int = 0, stdin_port: int = 0,
                          hb_port: int = 0, control_port: int = 0, ip: str = "127.0.0.1", key: bytes = b"",
                          transport: str = "tcp", signature_scheme: str = "hmac-sha256",
                          kernel_name: str = "") -> tuple[str, dict[str, Any]]:
    """Write a connection file (0600, atomically); unset ports get free ones."""
    from .actors import PortAllocator

    ports = [shell_port, iopub_port, stdin_port, control_port, hb_port]
    free = iter(PortAllocator(ip).allocate(5)) if transport == "tcp" else iter(range(1, 6))
    ports = [p or next(free) for p in ports]
    if fname is None:
        fname = os.path.join(jupyter_runtime_dir(), f"kernel-{uuid.uuid4()}.json")
    cfg = dict(zip(("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"), ports))
    cfg.update(ip=ip, key=key.decode() if isinstance(key, bytes) else key, transport=transport,
               signature_scheme=signature_scheme, kernel_name=kernel_name)
    write_private_file(fname, json.dumps(cfg, indent=2))
    cfg["key"] = key if isinstance(key, bytes) else key.encode()
    return fname, cfg


def launch_kernel(cmd: list[str], stdin: Any = None, stdout: Any = None, stderr: Any = None, env: dict | None = None,
                  independent: bool = False, cwd: str | None = None, **kw: Any) -> subprocess.Popen:
    """Start a kernel command in its own session (no shell), as jupyter_client does."""
    return subprocess.Popen(cmd, stdin=stdin or subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                            start_new_session=True)


def start_new_kernel(startup_timeout: float = 60, kernel_name: str = "python3",
                     **kwargs: Any) -> tuple[KernelManager, BlockingKernelClient]:
    """Start a kernel and a connected, ready client."""
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel(**kwargs)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=startup_timeout)
    except RuntimeError:
        kc.stop_channels()
        km.shutdown_kernel()
        raise
    return km, kc


@contextmanager
def run_kernel(**kwargs: Any) -> Iterator[BlockingKernelClient]:
    """A context with a running kernel's client; the kernel is shut down afterwards."""
    km, kc = start_new_kernel(**kwargs)
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


__all__ = [
    "AsyncKernelClient", "AsyncKernelManager", "AsyncMultiKernelManager", "BlockingKernelClient",
    "DuplicateKernelError", "KernelClient", "KernelManager", "KernelSpec", "KernelSpecManager",
    "MultiKernelManager", "NoSuchKernel", "find_connection_file", "launch_kernel", "run_kernel",
    "start_new_kernel", "write_connection_file", "_signal", "sys", "Path",
]
