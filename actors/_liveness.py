# The liveness monitor: one per kernel incarnation. It turns heartbeat news and
# control-channel probes into verdicts:
#   - process exit is authoritative (the kernel actor sees it; not handled here);
#   - `heartbeat_misses` misses in a row from a kernel that has beaten before mean the
#     kernel is frozen or unreachable (SIGSTOP, swap thrash, a dead host): Kill it;
#   - a kernel_info probe on control that times out while the heartbeat answers and no
#     iopub traffic flows means it is hung (a deadlock holding the GIL): Kill it;
#   - a busy kernel whose iopub keeps flowing is healthy, whatever the probe says.
# Probes run while the kernel is busy (that is when a caller can hang on it).
# Capabilities are detected, never assumed: a kernel that never beats within the start
# grace period, or never answers kernel_info on control while idle, is judged by its
# process alone for that signal. Each verdict is published and posted to the kernel
# actor once per incarnation.
from __future__ import annotations

import logging
from collections.abc import Callable

import attrs
import trio

from ..protocol import kernel_info_request
from ._errors import KernelDied, RequestTimeout
from ._events import HeartbeatStatus, KernelEvent
from ._heartbeat import Beat, HeartbeatEvent, Missed
from ._log import event
from ._mailbox import Mailbox
from ._request import ChannelSet, call

log = logging.getLogger("jupervisor.liveness")


@attrs.frozen(kw_only=True)
class LivenessConfig:
    """Thresholds for liveness verdicts (see the module comment)."""

    heartbeat_misses: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    start_grace_s: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))
    probe_interval_s: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    probe_timeout_s: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    probes: bool = True


@attrs.frozen
class Verdict:
    """Posted to the kernel actor: the kernel is judged dead for `cause`."""

    cause: str  # "heartbeat_lost" or "hung"
    detail: str


@attrs.define(eq=False)
class Liveness:
    """What the monitor knows about one incarnation (read-only for others)."""

    heartbeat_capable: bool | None = None
    control_capable: bool | None = None
    misses_in_a_row: int = 0
    misses_total: int = 0
    beats: int = 0  # echoes reported: the first, and each first one after misses
    probes_ok: int = 0
    probes_timed_out: int = 0
    verdict: Verdict | None = None


async def run_liveness(
    cfg: LivenessConfig,
    channels: ChannelSet,
    heartbeats: trio.MemoryReceiveChannel[HeartbeatEvent],
    kernel: Mailbox,
    publish: Callable[[KernelEvent], None],
    busy: Callable[[], bool] = lambda: True,
    *,
    task_status: trio.TaskStatus[Liveness] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Watch one incarnation until cancelled. After the first (capability) probe, the
    control channel is probed only while `busy()` says requests are running: an idle
    kernel costs one heartbeat per interval and nothing more."""
    state = Liveness()
    kid = channels.kernel_id

    def judge(cause: str, detail: str) -> None:
        if state.verdict is None:
            state.verdict = Verdict(cause, detail)
            event(log, "kernel.liveness_verdict", logging.WARNING, kernel_id=kid, cause=cause, detail=detail)
            kernel.try_post(state.verdict)

    async def watch_heartbeat() -> None:
        with trio.move_on_after(cfg.start_grace_s) as grace:
            async for ev in heartbeats:
                if isinstance(ev, Beat):
                    state.heartbeat_capable = True
                    state.beats += 1
                    break
        if grace.cancelled_caught:
            state.heartbeat_capable = False
            publish(HeartbeatStatus(kernel_id=kid, status="absent"))
            event(log, "kernel.heartbeat_absent", logging.WARNING, kernel_id=kid, grace_s=cfg.start_grace_s)
            async for ev in heartbeats:  # keep draining; the process alone tells liveness
                state.misses_total += isinstance(ev, Missed)
            return
        async for ev in heartbeats:
            if isinstance(ev, Beat):
                if state.misses_in_a_row:
                    publish(HeartbeatStatus(kernel_id=kid, status="beating"))
                state.misses_in_a_row = 0
                state.beats += 1
            elif isinstance(ev, Missed):
                state.misses_in_a_row = ev.in_a_row
                state.misses_total += 1
                publish(HeartbeatStatus(kernel_id=kid, status="missed", in_a_row=ev.in_a_row))
                if ev.in_a_row >= cfg.heartbeat_misses:
                    judge("heartbeat_lost", f"{ev.in_a_row} heartbeats missed in a row")

    async def probe_control() -> None:
        first = True
        while True:
            if not first and not busy():
                await trio.sleep(cfg.probe_interval_s)
                continue
            first = False
            iopub_before = channels.iopub.stats.received
            try:
                await call(channels, kernel_info_request("control"), timeout=cfg.probe_timeout_s, wait_for_idle=False)
            except RequestTimeout:
                if state.control_capable is None:
                    state.control_capable = False  # never answered: judge by process and heartbeat only
                    event(log, "kernel.control_probe_unsupported", kernel_id=kid)
                    return
                state.probes_timed_out += 1
                flowing = channels.iopub.stats.received != iopub_before
                if state.heartbeat_capable and state.misses_in_a_row == 0 and not flowing:
                    judge("hung", f"control did not answer kernel_info within {cfg.probe_timeout_s:g}s")
            except KernelDied:
                return
            else:
                state.control_capable = True
                state.probes_ok += 1
            await trio.sleep(cfg.probe_interval_s)

    async with trio.open_nursery() as n:
        n.start_soon(watch_heartbeat)
        if cfg.probes:
            n.start_soon(probe_control)
        task_status.started(state)
