# systemd's notify protocol spoken directly (no libsystemd): datagrams of KEY=VALUE lines
# to $NOTIFY_SOCKET (a path, or an abstract socket when it starts with "@"), and the
# watchdog period from $WATCHDOG_USEC (for us if $WATCHDOG_PID is unset or ours). Socket
# activation: $LISTEN_FDS sockets start at fd 3 when $LISTEN_PID is ours.
from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    """Sends sd_notify messages; does nothing when not run by systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        e = os.environ if env is None else env
        addr = e.get("NOTIFY_SOCKET", "")
        self._addr = "\0" + addr[1:] if addr.startswith("@") else addr
        self._sock: socket.socket | None = None
        if self._addr:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        usec = e.get("WATCHDOG_USEC")
        pid = e.get("WATCHDOG_PID")
        mine = pid is None or pid == str(os.getpid())
        self.watchdog_s: float | None = int(usec) / 1e6 if usec and usec.isdigit() and mine else None

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: str | int) -> None:
        """Send e.g. ``notify(READY=1, STATUS="3 kernels")``."""
        if self._sock is None:
            return
        data = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            self._sock.sendto(data, self._addr)
        except OSError:
            pass  # systemd went away; nothing to tell

    def reloading(self) -> None:
        self.notify(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def listen_fds(env: Mapping[str, str] | None = None) -> list[socket.socket]:
    """Sockets passed by systemd socket activation (empty when there are none)."""
    e = os.environ if env is None else env
    if e.get("LISTEN_PID") != str(os.getpid()):
        return []
    n = int(e.get("LISTEN_FDS", "0") or 0)
    return [socket.socket(fileno=3 + i) for i in range(n)]
