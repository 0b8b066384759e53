# Typed kernel events: every state change of a supervised kernel is one of these,
# published on the supervisor's event bus (and logged as a structured line).
from __future__ import annotations

from typing import TypeAlias

import attrs


@attrs.frozen(kw_only=True)
class KernelStarting:
    kernel_id: str
    kernel_name: str
    attempt: int = 0


@attrs.frozen(kw_only=True)
class KernelReady:
    kernel_id: str
    pid: int | None
    restarts: int = 0


@attrs.frozen(kw_only=True)
class KernelBusy:
    kernel_id: str


@attrs.frozen(kw_only=True)
class KernelIdle:
    kernel_id: str


@attrs.frozen(kw_only=True)
class KernelDiedEvent:
    """The process ended (``cause="exited"``) or the kernel was judged dead (frozen, hung)."""

    kernel_id: str
    cause: str
    exit_code: int | None = None
    signal: int | None = None
    detail: str = ""
    deliberate: bool = False


@attrs.frozen(kw_only=True)
class KernelRestarting:
    kernel_id: str
    cause: str
    attempt: int = 0
    delay_s: float = 0.0


@attrs.frozen(kw_only=True)
class KernelStopped:
    kernel_id: str


@attrs.frozen(kw_only=True)
class KernelFailed:
    kernel_id: str
    reason: str


@attrs.frozen(kw_only=True)
class HeartbeatStatus:
    """Liveness news from the heartbeat: ``beating``, ``missed`` (with the count), ``absent``."""

    kernel_id: str
    status: str
    in_a_row: int = 0


KernelEvent: TypeAlias = (
    KernelStarting
    | KernelReady
    | KernelBusy
    | KernelIdle
    | KernelDiedEvent
    | KernelRestarting
    | KernelStopped
    | KernelFailed
    | HeartbeatStatus
)
