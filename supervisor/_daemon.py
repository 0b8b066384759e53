# `jupervisor daemon`: the supervision tree behind the HTTP/WebSocket API, as a systemd
# service. READY=1 is sent only once the supervisor runs and the API listens; STATUS=
# summaries follow; SIGHUP re-reads the settings (RELOADING=1 ... READY=1) without
# touching running kernels; SIGTERM/SIGINT send STOPPING=1 and shut kernels down; the
# root supervisor's own loop sends WATCHDOG=1 at half of WATCHDOG_USEC, so a wedged
# supervisor is restarted by systemd. The token is written 0600 to the runtime dir and
# never logged.
from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import attrs
import psutil
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from ._files import ensure_private_dir, remove_quietly, write_private_file
from ._gateway import Gateway
from ._paths import jupervisor_runtime_dir, jupervisor_state_dir
from ._registry import Registry
from ._sdnotify import Notifier, listen_fds
from ._settings import Settings, load_settings
from ._supervisor import Supervisor, open_supervisor
from .actors import AdoptedProcess, JupervisorError, KernelFailed, KernelReady, KernelStopped, NoSuchKernel, event
from .protocol import KernelState

log = logging.getLogger("jupervisor.daemon")


@attrs.define(eq=False)
class DaemonState:
    """What a running daemon exposes to its starter (tests, embedding)."""

    urls: list[str]
    token_file: Path
    gateway: Gateway
    settings: Settings


def setup_logging(level: str) -> None:
    """Structured lines on stderr; with journald's priority prefixes under systemd."""
    journald = bool(os.environ.get("JOURNAL_STREAM"))
    prio = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    class Fmt(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            text = record.getMessage()
            return f"<{prio.get(record.levelno, 6)}>{text}" if journald else f"{record.levelname.lower()} {text}"

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Fmt())
    root = logging.getLogger("jupervisor")
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    root.propagate = False


async def run_daemon(
    config_path: str | Path | None, *, task_status: trio.TaskStatus[DaemonState] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run until SIGTERM/SIGINT. Raises SettingsError for a bad config file."""
    settings = load_settings(config_path) if config_path else Settings()
    d = settings.daemon
    state_dir = ensure_private_dir(d.state_dir or jupervisor_state_dir())
    runtime_dir = ensure_private_dir(d.runtime_dir or jupervisor_runtime_dir())
    token = d.token or secrets.token_urlsafe(32)
    token_file = write_private_file(runtime_dir / "token", token)
    notifier = Notifier()
    current = {"settings": settings}
    registry = Registry(state_dir / "kernels.json")
    options = attrs.evolve(settings.kernels, parent_watch=not d.adopt_kernels)
    async with open_supervisor(options=options, restart=settings.restart,
                               connection_dir=runtime_dir / "kernels") as sup:
        await _readopt(sup, registry, settings, adopt=d.adopt_kernels)
        for name, size in d.warm_pools.items():
            sup.set_warm_pool(name, size)
        gateway = Gateway(sup, token, base_url=d.base_url, max_kernels=d.max_kernels, max_per_spec=d.max_kernels_per_spec,
                          policy_for=lambda name: current["settings"].policy_for(name))
        config = Config()
        config.accesslog = None
        config.errorlog = logging.getLogger("jupervisor.http")
        fds = listen_fds()
        if fds:
            config.bind = [f"fd://{s.fileno()}" for s in fds]
        elif d.unix_socket:
            config.bind = [f"unix:{d.unix_socket}"]
        else:
            config.bind = [f"{d.bind}:{d.port}"]
        stop = trio.Event()
        async with trio.open_nursery() as n:
            gateway.nursery = n
            urls = await n.start(lambda task_status: serve(gateway, config, shutdown_trigger=stop.wait,
                                                          task_status=task_status))
            n.start_soon(_follow_events, sup, gateway, registry)
            if notifier.watchdog_s:
                n.start_soon(_watchdog, notifier, notifier.watchdog_s / 2)
            n.start_soon(_status, notifier, sup)
            n.start_soon(_preload, sup)
            if d.cull_idle_timeout_s > 0:
                n.start_soon(_cull, gateway, d)
            event(log, "daemon.ready", urls=",".join(urls), state_dir=str(state_dir), token_file=str(token_file))
            notifier.notify(READY=1, STATUS="ready: 0 kernels")
            task_status.started(DaemonState(urls, token_file, gateway, settings))
            with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        notifier.reloading()
                        try:
                            current["settings"] = load_settings(config_path) if config_path else Settings()
                            event(log, "daemon.reloaded", config=str(config_path))
                        except ValueError as exc:
                            event(log, "daemon.reload_failed", logging.ERROR, error=str(exc))
                        notifier.notify(READY=1)
                        continue
                    event(log, "daemon.stopping", signal=signal.Signals(signum).name)
                    notifier.notify(STOPPING=1)
                    break
            stop.set()
            if d.keep_kernels_on_stop:
                event(log, "daemon.keeping_kernels", count=len(sup.kernels()))
            else:
                await sup.shutdown_all()
            n.cancel_scope.cancel()
    notifier.close()


async def _follow_events(sup: Any, gateway: Gateway, registry: Registry) -> None:
    """Note activity; rewrite the registry (at most every 0.1 s) after kernels change.

    The save waits a moment because a new kernel is registered with the supervisor just
    after its ready event."""
    changed = trio.Event()

    async def saver() -> None:
        nonlocal changed
        while True:
            await changed.wait()
            changed = trio.Event()
            await trio.sleep(0.1)
            registry.save(sup.kernels())

    async with sup.events() as events, trio.open_nursery() as n:
        n.start_soon(saver)
        async for ev in events:
            gateway.note_event(ev)
            if isinstance(ev, (KernelReady, KernelStopped, KernelFailed)):
                changed.set()


async def _preload(sup: Supervisor) -> None:
    """Warm the preloaded interpreter for python3 so even the first start is a fork."""
    try:
        await sup.preload("python3")
    except NoSuchKernel:
        pass


async def _readopt(sup: Any, registry: Registry, settings: Settings, *, adopt: bool) -> None:
    """Re-adopt the kernels of the last run that still answer; clean up the rest."""
    entries = registry.load()
    adopted, cleaned = [], []

    async def one(entry: Any) -> None:
        if adopt:
            try:
                await sup.adopt_kernel(entry.kernel_id, entry.kernel_name, entry.adoption,
                                       restart=settings.policy_for(entry.kernel_name))
                adopted.append(entry.kernel_id)
                return
            except (JupervisorError, LookupError) as exc:
                event(log, "daemon.adopt_failed", logging.WARNING, kernel_id=entry.kernel_id, error=str(exc)[:200])
        if _is_that_kernel(entry.adoption.pid, str(entry.adoption.connection_file)):
            await AdoptedProcess(entry.adoption.pid).cleanup()  # alive but not answering: stop it
        remove_quietly(entry.adoption.connection_file)
        cleaned.append(entry.kernel_id)

    async with trio.open_nursery() as n:
        for entry in entries:
            n.start_soon(one, entry)
    registry.save(sup.kernels())
    if entries:
        event(log, "daemon.readopted", adopted=len(adopted), cleaned=len(cleaned))


async def _cull(gateway: Gateway, d: Any) -> None:
    while True:
        await trio.sleep(d.cull_interval_s)
        await gateway.cull(d.cull_idle_timeout_s, busy=d.cull_busy, connected=d.cull_connected)


async def _watchdog(notifier: Notifier, every_s: float) -> None:
    """WATCHDOG=1 from the supervisor's own loop: if trio wedges, pings stop."""
    while True:
        notifier.notify(WATCHDOG=1)
        await trio.sleep(every_s)


async def _status(notifier: Notifier, sup: object) -> None:
    last = ""
    while True:
        kernels = sup.kernels()  # type: ignore[attr-defined]
        busy = sum(k.state is KernelState.BUSY for k in kernels)
        failed = sum(k.state is KernelState.FAILED for k in kernels)
        text = f"{len(kernels)} kernels, {busy} busy, {failed} failed"
        if text != last:
            notifier.notify(STATUS=text)
            last = text
        await trio.sleep(1.0)


def _is_that_kernel(pid: int, connection_file: str) -> bool:
    """Whether `pid` is still the kernel of that connection file (not a reused pid)."""
    try:
        return connection_file in " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return False
