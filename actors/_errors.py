# The domain errors of the actor layer; re-exported by the public API.
from __future__ import annotations

import attrs


class JupervisorError(Exception):
    """Base of every error jupervisor raises on purpose."""


@attrs.define(kw_only=True, auto_exc=True)
class NoSuchKernel(JupervisorError, KeyError):
    """No kernel with this id is known."""

    kernel_id: str

    def __str__(self) -> str:
        return f"no such kernel: {self.kernel_id}"


@attrs.define(kw_only=True, auto_exc=True)
class KernelStartError(JupervisorError, RuntimeError):
    """A kernel could not be started.

    Attributes:
        kernel_name: The kernelspec name.
        reason: What went wrong.
        exit_code: The kernel's exit code, if it exited.
        signal: The signal that ended it, if any.
        stderr_tail: The last lines it wrote to stderr.
    """

    kernel_name: str
    reason: str
    exit_code: int | None = None
    signal: int | None = None
    stderr_tail: str = ""

    def __str__(self) -> str:
        text = f"kernel {self.kernel_name!r} failed to start: {self.reason}"
        if self.stderr_tail:
            text += "\n--- stderr (tail) ---\n" + self.stderr_tail
        return text


@attrs.define(kw_only=True, auto_exc=True)
class KernelDied(JupervisorError, RuntimeError):
    """The kernel died (or was judged dead) while a caller waited on it.

    Attributes:
        kernel_id: The kernel.
        cause: ``exited``, ``heartbeat_lost``, ``hung``, ``shutdown`` ...
        exit_code: The exit code, if it exited.
        signal: The signal that ended it, if any.
        detail: A human description.
    """

    kernel_id: str
    cause: str
    exit_code: int | None = None
    signal: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        return f"kernel {self.kernel_id} died ({self.cause}{': ' + self.detail if self.detail else ''})"


@attrs.define(kw_only=True, auto_exc=True)
class KernelNotRunning(JupervisorError, RuntimeError):
    """The kernel is not in a state that takes requests (failed, dead, stopped)."""

    kernel_id: str
    state: str

    def __str__(self) -> str:
        return f"kernel {self.kernel_id} is not running (state {self.state})"


@attrs.define(kw_only=True, auto_exc=True)
class RequestTimeout(JupervisorError, TimeoutError):
    """A request got no complete answer in time."""

    kernel_id: str
    msg_type: str
    timeout_s: float

    def __str__(self) -> str:
        return f"{self.msg_type} to kernel {self.kernel_id} got no answer within {self.timeout_s:g}s"


class ExecuteTimeout(RequestTimeout):
    """An execute_request did not finish in time."""


@attrs.define(kw_only=True, auto_exc=True)
class StdinNotAvailable(JupervisorError, RuntimeError):
    """The kernel asked for input but the caller gave no stdin handler."""

    kernel_id: str
    prompt: str

    def __str__(self) -> str:
        return f"kernel {self.kernel_id} asked for input ({self.prompt!r}) but no stdin handler was given"


def unwrap_group(error: BaseException) -> BaseException:
    """The lone exception inside (nested) single-member exception groups, else `error` itself."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
