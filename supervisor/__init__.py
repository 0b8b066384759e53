"""jupervisor: a trio supervisor and client for Jupyter kernels.

The public API: `open_supervisor` owns kernels; `Kernel` is a supervised kernel;
`connect` drives a kernel someone else started.
"""

from ._client import ErrorInfo as ErrorInfo
from ._client import ExecuteResult as ExecuteResult
from ._client import KernelClient as KernelClient
from ._connect import connect as connect
from ._handle import Kernel as Kernel
from ._kernelspecs import NoSuchKernelSpec as NoSuchKernelSpec
from ._kernelspecs import find_kernel_specs as find_kernel_specs
from ._kernelspecs import get_kernel_spec as get_kernel_spec
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

__version__ = "0.1.0"
