"""jupervisor: a trio supervisor and client for Jupyter kernels.

The public API: `open_supervisor` owns kernels; `Kernel` is a supervised kernel;
`connect` drives a kernel someone else started.

Names are loaded on first use (PEP 562), so ``import jupervisor.protocol`` stays free of
trio and zmq: the protocol layer is sans-io and must be importable on its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ErrorInfo": "._client",
    "ExecuteResult": "._client",
    "KernelClient": "._client",
    "connect": "._connect",
    "Kernel": "._handle",
    "NoSuchKernelSpec": "._kernelspecs",
    "find_kernel_specs": "._kernelspecs",
    "get_kernel_spec": "._kernelspecs",
    "OutputCollector": "._outputs",
    "JobOptions": "._jobs",
    "JobResult": "._jobs",
    "CellExecutionError": "._jobs",
    "CellTimeoutError": "._jobs",
    "KernelDiedInCell": "._jobs",
    "run_notebook": "._jobs",
    "run_notebooks": "._jobs",
    "Supervisor": "._supervisor",
    "open_supervisor": "._supervisor",
    "ExecuteTimeout": ".actors",
    "JupervisorError": ".actors",
    "KernelDied": ".actors",
    "KernelDiedEvent": ".actors",
    "KernelFailed": ".actors",
    "KernelReady": ".actors",
    "KernelRestarting": ".actors",
    "KernelStopped": ".actors",
    "KernelNotRunning": ".actors",
    "KernelOptions": ".actors",
    "KernelStartError": ".actors",
    "NoSuchKernel": ".actors",
    "Backoff": ".actors",
    "LivenessConfig": ".actors",
    "OnExhausted": ".actors",
    "RequestTimeout": ".actors",
    "RestartPolicy": ".actors",
    "RestartType": ".actors",
    "Strategy": ".actors",
    "KernelSpec": ".protocol",
    "KernelState": ".protocol",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupervisor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from ._client import ErrorInfo as ErrorInfo
    from ._client import ExecuteResult as ExecuteResult
    from ._client import KernelClient as KernelClient
    from ._connect import connect as connect
    from ._handle import Kernel as Kernel
    from ._kernelspecs import NoSuchKernelSpec as NoSuchKernelSpec
    from ._kernelspecs import find_kernel_specs as find_kernel_specs
    from ._kernelspecs import get_kernel_spec as get_kernel_spec
    from ._jobs import CellExecutionError as CellExecutionError
    from ._jobs import CellTimeoutError as CellTimeoutError
    from ._jobs import JobOptions as JobOptions
    from ._jobs import JobResult as JobResult
    from ._jobs import KernelDiedInCell as KernelDiedInCell
    from ._jobs import run_notebook as run_notebook
    from ._jobs import run_notebooks as run_notebooks
    from ._outputs import OutputCollector as OutputCollector
    from ._supervisor import Supervisor as Supervisor
    from ._supervisor import open_supervisor as open_supervisor
    from .actors import ExecuteTimeout as ExecuteTimeout
    from .actors import JupervisorError as JupervisorError
    from .actors import KernelDied as KernelDied
    from .actors import KernelDiedEvent as KernelDiedEvent
    from .actors import KernelFailed as KernelFailed
    from .actors import KernelReady as KernelReady
    from .actors import KernelRestarting as KernelRestarting
    from .actors import KernelStopped as KernelStopped
    from .actors import KernelNotRunning as KernelNotRunning
    from .actors import KernelOptions as KernelOptions
    from .actors import KernelStartError as KernelStartError
    from .actors import NoSuchKernel as NoSuchKernel
    from .actors import Backoff as Backoff
    from .actors import LivenessConfig as LivenessConfig
    from .actors import OnExhausted as OnExhausted
    from .actors import RequestTimeout as RequestTimeout
    from .actors import RestartPolicy as RestartPolicy
    from .actors import RestartType as RestartType
    from .actors import Strategy as Strategy
    from .protocol import KernelSpec as KernelSpec
    from .protocol import KernelState as KernelState
