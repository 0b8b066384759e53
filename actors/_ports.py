# Port allocation for local tcp kernels. Picking a free port means binding port 0 and
# closing it, so another process can take it before the kernel binds it (the classic
# race). We narrow it: ports handed to kernels we still supervise are never handed out
# again, and the kernel actor retries a start that failed with EADDRINUSE on fresh ports.
from __future__ import annotations

import socket

import attrs


@attrs.define
class PortAllocator:
    """Hands out free tcp ports, never one currently held by one of our kernels."""

    ip: str = "127.0.0.1"
    _held: set[int] = attrs.field(factory=set, init=False)

    def allocate(self, n: int = 5) -> list[int]:
        """Return `n` distinct free ports and hold them until `release`."""
        ports: list[int] = []
        socks = []
        try:
            while len(ports) < n:
                s = socket.socket(socket.AF_INET6 if ":" in self.ip else socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((self.ip, 0))
                port = s.getsockname()[1]
                if port not in self._held and port not in ports:
                    ports.append(port)
        finally:
            for s in socks:
                s.close()
        self._held.update(ports)
        return ports

    def release(self, ports: list[int]) -> None:
        self._held.difference_update(ports)
