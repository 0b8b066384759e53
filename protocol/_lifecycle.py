# The kernel lifecycle as one transition table. The kernel actor feeds it events;
# an event not allowed in the current state raises IllegalTransition and the state is
# left as it was. Every state change of a kernel goes through `next_state`.
from __future__ import annotations

import enum
from collections.abc import Mapping

from ._errors import IllegalTransition


class KernelState(str, enum.Enum):
    """States of a supervised kernel."""

    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    DEAD = "dead"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class LifecycleEvent(str, enum.Enum):
    """What can happen to a kernel."""

    READY = "ready"  # the first kernel_info_reply arrived
    BUSY = "busy"  # iopub status busy
    IDLE = "idle"  # iopub status idle
    EXITED = "exited"  # the process ended (or the kernel was judged dead: frozen, hung)
    RESTART = "restart"  # a restart begins (asked for, or decided by the policy)
    SPAWNED = "spawned"  # a new process was launched during a restart
    GIVE_UP = "give_up"  # the policy gave up: the kernel is failed
    SHUTDOWN = "shutdown"  # a deliberate shutdown begins
    STOPPED = "stopped"  # the deliberate shutdown finished

    def __str__(self) -> str:
        return self.value


S, E = KernelState, LifecycleEvent

TRANSITIONS: Mapping[tuple[KernelState, LifecycleEvent], KernelState] = {
    (S.STARTING, E.READY): S.IDLE,
    (S.STARTING, E.BUSY): S.STARTING,
    (S.STARTING, E.IDLE): S.STARTING,
    (S.STARTING, E.EXITED): S.DEAD,
    (S.STARTING, E.RESTART): S.RESTARTING,
    (S.STARTING, E.SHUTDOWN): S.STOPPING,
    (S.STARTING, E.GIVE_UP): S.FAILED,
    (S.IDLE, E.BUSY): S.BUSY,
    (S.IDLE, E.IDLE): S.IDLE,
    (S.IDLE, E.EXITED): S.DEAD,
    (S.IDLE, E.RESTART): S.RESTARTING,
    (S.IDLE, E.SHUTDOWN): S.STOPPING,
    (S.BUSY, E.BUSY): S.BUSY,
    (S.BUSY, E.IDLE): S.IDLE,
    (S.BUSY, E.EXITED): S.DEAD,
    (S.BUSY, E.RESTART): S.RESTARTING,
    (S.BUSY, E.SHUTDOWN): S.STOPPING,
    (S.RESTARTING, E.SPAWNED): S.STARTING,
    (S.RESTARTING, E.EXITED): S.RESTARTING,
    (S.RESTARTING, E.BUSY): S.RESTARTING,
    (S.RESTARTING, E.IDLE): S.RESTARTING,
    (S.RESTARTING, E.GIVE_UP): S.FAILED,
    (S.RESTARTING, E.SHUTDOWN): S.STOPPING,
    (S.DEAD, E.RESTART): S.RESTARTING,
    (S.DEAD, E.GIVE_UP): S.FAILED,
    (S.DEAD, E.SHUTDOWN): S.STOPPING,
    (S.DEAD, E.EXITED): S.DEAD,
    (S.DEAD, E.BUSY): S.DEAD,
    (S.DEAD, E.IDLE): S.DEAD,
    (S.STOPPING, E.EXITED): S.STOPPING,
    (S.STOPPING, E.BUSY): S.STOPPING,
    (S.STOPPING, E.IDLE): S.STOPPING,
    (S.STOPPING, E.STOPPED): S.DEAD,
    (S.FAILED, E.SHUTDOWN): S.STOPPING,
    (S.FAILED, E.EXITED): S.FAILED,
    (S.FAILED, E.RESTART): S.RESTARTING,
}
"""(state, event) -> next state. Pairs not listed are illegal."""

del S, E


def next_state(state: KernelState, event: LifecycleEvent) -> KernelState:
    """Return the state after ``event``.

    Raises:
        IllegalTransition: the event is not allowed in ``state``.

    Example:
        >>> next_state(KernelState.IDLE, LifecycleEvent.BUSY)
        <KernelState.BUSY: 'busy'>
    """
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise IllegalTransition(state=str(state), event=str(event)) from None


def is_alive(state: KernelState) -> bool:
    """Whether a kernel in ``state`` can take requests (idle or busy)."""
    return state in (KernelState.IDLE, KernelState.BUSY)
