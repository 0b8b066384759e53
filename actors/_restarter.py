# The restarter actor: one per supervisor. It turns kernel deaths (process exits,
# heartbeat-lost and hung verdicts, failed restarts) into decisions of each kernel's
# restart policy and posts them to the kernel actors. Decisions are made one at a time
# from its inbox, so there are no re-entrant restart loops; the backoff delay runs inside
# the kernel actor's restart operation, where a deliberate Shutdown cancels it. A kernel
# that was shut down on purpose never produces a death event, so it is never restarted.
from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeAlias

import attrs
import trio

from ._events import KernelDiedEvent, KernelEvent, KernelFailed, KernelReady, KernelStopped
from ._kernel import GiveUp as GiveUpCommand
from ._kernel import Restart as RestartCommand
from ._log import event
from ._mailbox import Mailbox, open_mailbox
from ._policy import (
    Cause,
    Escalate,
    Exited,
    GiveUp,
    HeartbeatLost,
    Hung,
    Ignore,
    Restart,
    RestartHistory,
    RestartPolicy,
    StartFailed,
    Strategy,
    decide,
)

log = logging.getLogger("jupervisor.restarter")


@attrs.frozen
class Supervise:
    """Apply `policy` to this kernel from now on."""

    kernel_id: str
    kernel: Mailbox = attrs.field(eq=False, repr=False)
    policy: RestartPolicy
    group: str = ""


@attrs.frozen(kw_only=True)
class Escalated:
    """A group's restart intensity was exhausted with on_exhausted=escalate: every kernel
    of the group was failed; the supervisor's owner is told through this event."""

    group: str
    kernel_id: str
    reason: str


RestarterInput: TypeAlias = Supervise | KernelEvent


@attrs.define
class _Supervised:
    kernel: Mailbox
    policy: RestartPolicy
    group: str
    history: RestartHistory = RestartHistory()


def cause_of(ev: KernelDiedEvent) -> Cause:
    """The policy's view of a death event."""
    if ev.cause == "heartbeat_lost":
        return HeartbeatLost()
    if ev.cause == "hung":
        return Hung(ev.detail)
    if ev.cause == "start_failed":
        return StartFailed(ev.detail)
    return Exited(ev.exit_code, ev.signal)


async def run_restarter(
    publish: Callable[[object], None],
    *,
    rng: Callable[[], float] = random.random,
    task_status: trio.TaskStatus[Mailbox[RestarterInput]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the restarter until cancelled. Post Supervise commands and every kernel event."""
    mailbox, inbox = open_mailbox()
    kernels: dict[str, _Supervised] = {}
    task_status.started(mailbox)
    async for item in inbox:
        match item:
            case Supervise(kernel_id=kid, kernel=box, policy=policy, group=group):
                kernels[kid] = _Supervised(box, policy, group)
            case KernelReady(kernel_id=kid) if kid in kernels:
                kernels[kid].history = kernels[kid].history.record_healthy(trio.current_time())
            case KernelStopped(kernel_id=kid):
                kernels.pop(kid, None)
            case KernelDiedEvent(deliberate=False) as ev if ev.kernel_id in kernels:
                _on_death(ev, kernels, publish, rng)


def _on_death(
    ev: KernelDiedEvent, kernels: dict[str, _Supervised], publish: Callable[[object], None], rng: Callable[[], float]
) -> None:
    kid = ev.kernel_id
    sup = kernels[kid]
    now = trio.current_time()
    decision = decide(sup.policy, sup.history, cause_of(ev), now, rng())
    fields = {"kernel_id": kid, "cause": ev.cause, "decision": type(decision).__name__}
    match decision:
        case Restart(delay_s=delay, attempt=attempt, scope=scope):
            sup.history = sup.history.record_restart(now)
            event(log, "kernel.restart_decided", **fields, attempt=attempt, delay_s=round(delay, 3))
            sup.kernel.try_post(RestartCommand(cause=ev.cause, attempt=attempt, delay_s=delay))
            if scope is Strategy.ONE_FOR_ALL:
                for other_id, other in kernels.items():
                    if other_id != kid and other.group == sup.group:
                        other.kernel.try_post(RestartCommand(cause=f"group member {kid} died", attempt=attempt))
        case GiveUp(reason=reason):
            event(log, "kernel.restart_exhausted", logging.ERROR, **fields, reason=reason)
            sup.kernel.try_post(GiveUpCommand(reason))
        case Escalate(reason=reason):
            event(log, "kernel.restart_escalated", logging.ERROR, **fields, reason=reason, group=sup.group)
            for other in kernels.values():
                if other is sup or (sup.group and other.group == sup.group):
                    other.kernel.try_post(GiveUpCommand(f"escalated from {kid}: {reason}"))
            publish(Escalated(group=sup.group, kernel_id=kid, reason=reason))
        case Ignore(reason=reason):
            event(log, "kernel.restart_skipped", **fields, reason=reason)


__all__ = ["Escalated", "KernelFailed", "Supervise", "cause_of", "run_restarter"]
