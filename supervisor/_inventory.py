# The inventory: every kernel on this machine, who owns it, whether it lives.
#
# Sources: connection files in Jupyter's runtime dir (and dirs given), running Jupyter
# servers (their jpserver-*.json, asked for /api/kernels and /api/sessions with their
# token; one that does not answer is reported, not fatal), and a running jupervisor
# daemon's state (its connection files live in its runtime dir). Each kernel is probed
# concurrently with a short deadline: a heartbeat ping, and a signed kernel_info round
# trip where the key is known. Processes are found without assuming one kernel
# implementation: the connection file on a command line, else the process listening on
# the kernel's shell port; then its parent chain.
from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import psutil
import trio
import zmq

from ._connect import connect
from ._paths import jupervisor_runtime_dir, jupyter_runtime_dir
from .actors import JupervisorError, new_context
from .protocol import ConnectionInfo, ConnectionInfoError


@attrs.define
class KernelRow:
    kernel_id: str
    kernel_name: str = ""
    owner: str = "unknown"
    notebook: str = ""
    pid: int | None = None
    ppid: int | None = None
    state: str = "unknown"
    cpu_percent: float | None = None
    rss: int | None = None
    uptime_s: float | None = None
    connection_file: str = ""
    server: str = ""
    parents: list[int] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class ServerRow:
    url: str
    pid: int | None
    reachable: bool
    error: str = ""
    sessions: list[dict[str, Any]] = attrs.field(factory=list)
    kernels: list[dict[str, Any]] = attrs.field(factory=list)


@attrs.define
class Inventory:
    kernels: list[KernelRow]
    servers: list[ServerRow]

    def to_dict(self) -> dict[str, Any]:
        return {"kernels": [k.to_dict() for k in self.kernels],
                "servers": [attrs.asdict(s, filter=lambda a, v: a.name != "kernels") for s in self.servers]}


def _connection_files(dirs: Iterable[Path]) -> list[Path]:
    seen: dict[str, Path] = {}
    for d in dirs:
        for p in glob.glob(str(d / "kernel-*.json")) + glob.glob(str(d / "**" / "kernel-*.json"), recursive=True):
            seen.setdefault(os.path.realpath(p), Path(p))
    return list(seen.values())


async def _probe_heartbeat(ctx: zmq.Context, info: ConnectionInfo, timeout: float) -> bool:
    from .actors import SocketOwner

    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    owner = SocketOwner(sock)
    try:
        sock.connect(info.endpoint("hb"))
        owner.send([b"ping"])
        with trio.move_on_after(timeout):
            while True:
                if owner.drain():
                    return True
                await owner.wait(timeout)
        return False
    finally:
        owner.close()


async def _probe_kernel_info(info: ConnectionInfo, timeout: float) -> dict[str, Any] | None:
    try:
        with trio.move_on_after(timeout):
            async with connect(info, connect_timeout_s=0) as kernel:
                return await kernel.kernel_info(timeout=timeout)
    except (JupervisorError, OSError):
        return None
    return None


def _json_args_index() -> dict[str, psutil.Process]:
    """realpath of every *.json argument on a command line -> that process (one scan)."""
    index: dict[str, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        for arg in proc.info.get("cmdline") or []:
            if arg.endswith(".json"):
                index.setdefault(os.path.realpath(arg), proc)
    return index


def _find_process(cf: Path, info: ConnectionInfo, index: dict[str, psutil.Process]) -> psutil.Process | None:
    proc = index.get(os.path.realpath(cf))
    if proc is not None:
        return proc
    if info.transport == "tcp":
        try:
            for c in psutil.net_connections("tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == info.shell_port and c.pid:
                    return psutil.Process(c.pid)
        except (psutil.AccessDenied, OSError):
            pass
    return None


def _servers(runtime: Path) -> list[tuple[dict[str, Any], Path]]:
    out = []
    for p in sorted(runtime.glob("jpserver-*.json")) + sorted(runtime.glob("nbserver-*.json")):
        try:
            out.append((json.loads(p.read_text()), p))
        except (OSError, ValueError):
            continue
    return out


async def _ask_server(info: dict[str, Any], timeout: float) -> ServerRow:
    import httpx

    url = info.get("url", "").rstrip("/")
    row = ServerRow(url=url, pid=info.get("pid"), reachable=False)
    if info.get("pid") and not psutil.pid_exists(info["pid"]):
        row.error = "its process is gone"
        return row
    headers = {"Authorization": f"token {info.get('token', '')}"}
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout) as c:
            kernels = await c.get("/api/kernels")
            sessions = await c.get("/api/sessions")
        row.kernels, row.sessions = kernels.json(), sessions.json()
        row.reachable = kernels.status_code == 200
        if not row.reachable:
            row.error = f"HTTP {kernels.status_code}"
    except Exception as exc:  # a server that does not answer is reported, not fatal
        row.error = type(exc).__name__
    return row


async def take_inventory(dirs: Iterable[str | Path] = (), *, timeout: float = 0.5) -> Inventory:
    """Find and probe every kernel; all probes run concurrently within about `timeout`."""
    runtime = Path(jupyter_runtime_dir())
    search = [runtime, *(Path(d) for d in dirs), jupervisor_runtime_dir() / "kernels"]
    files = _connection_files(d for d in search if d.is_dir())
    server_infos = _servers(runtime)
    servers: list[ServerRow] = []
    rows: list[KernelRow] = []
    ctx = new_context()
    index = _json_args_index()
    try:
        async with trio.open_nursery() as n:
            for info, _ in server_infos:
                async def ask(info: dict[str, Any] = info) -> None:
                    servers.append(await _ask_server(info, timeout * 4))

                n.start_soon(ask)
            for cf in files:
                n.start_soon(_probe_file, ctx, cf, timeout, rows, index)
    finally:
        ctx.destroy(linger=0)
    _attach_owners(rows, servers)
    rows.sort(key=lambda r: (r.owner, r.kernel_id))
    return Inventory(rows, servers)


async def _probe_file(
    ctx: zmq.Context, cf: Path, timeout: float, rows: list[KernelRow], index: dict[str, psutil.Process]
) -> None:
    kid = cf.stem.removeprefix("kernel-")
    row = KernelRow(kernel_id=kid, connection_file=str(cf))
    rows.append(row)
    try:
        info = ConnectionInfo.from_json(cf.read_bytes(), source=str(cf))
    except (OSError, ConnectionInfoError):
        row.state = "unreadable"
        return
    row.kernel_name = info.kernel_name
    proc = _find_process(cf, info, index)
    beating = False
    reply = None
    async with trio.open_nursery() as n:
        async def hb() -> None:
            nonlocal beating
            beating = await _probe_heartbeat(ctx, info, timeout)

        async def ki() -> None:
            nonlocal reply
            if info.key:
                reply = await _probe_kernel_info(info, timeout)

        n.start_soon(hb)
        n.start_soon(ki)
    if proc is not None:
        try:
            with proc.oneshot():
                row.pid, row.ppid = proc.pid, proc.ppid()
                row.cpu_percent = proc.cpu_percent(interval=None)
                row.rss = proc.memory_info().rss
                row.uptime_s = round(time.time() - proc.create_time(), 1)
                row.parents = [p.pid for p in proc.parents()]
        except psutil.Error:
            proc = None
    if reply is not None:
        row.state = "idle"
    elif beating:
        row.state = "busy" if info.key else "alive"
    elif proc is not None:
        row.state = "unreachable"
    else:
        row.state = "dead"


def _attach_owners(rows: list[KernelRow], servers: list[ServerRow]) -> None:
    by_kernel: dict[str, tuple[ServerRow, str]] = {}
    for s in servers:
        paths = {sess.get("kernel", {}).get("id"): sess.get("path", "") for sess in s.sessions}
        for k in s.kernels:
            by_kernel[k["id"]] = (s, paths.get(k["id"], ""))
            if not any(r.kernel_id == k["id"] for r in rows):  # a server kernel whose file we cannot see
                rows.append(KernelRow(kernel_id=k["id"], kernel_name=k.get("name", ""),
                                      state=k.get("execution_state", "unknown")))
    server_pids = {s.pid: s for s in servers if s.pid}
    for r in rows:
        if r.kernel_id in by_kernel:
            s, path = by_kernel[r.kernel_id]
            r.owner, r.server, r.notebook = "server", s.url, path
            continue
        for pid in r.parents:
            if pid in server_pids:
                r.owner, r.server = "server", server_pids[pid].url
                break
            try:
                cmd = " ".join(psutil.Process(pid).cmdline())
            except psutil.Error:
                continue
            if "jupervisor" in cmd or "_preload_server.py" in cmd:  # the latter: a forked kernel's parent
                r.owner = "jupervisor"
                break
            if "console" in cmd:
                r.owner = "console"
                break


def mermaid(inv: Inventory) -> str:
    """The inventory as a Mermaid flowchart: servers, sessions, kernels, processes, parent links."""
    lines = ["flowchart LR"]

    def node(nid: str, label: str) -> None:
        lines.append(f'    {nid}["{label.replace(chr(34), chr(39))}"]')

    for i, s in enumerate(inv.servers):
        node(f"server{i}", f"server {s.url} pid {s.pid}" + ("" if s.reachable else f" ({s.error})"))
        for j, sess in enumerate(s.sessions):
            sid = f"s{i}_{j}"
            node(sid, f"session {sess.get('path', '')}")
            lines.append(f"    server{i} --> {sid}")
            kid = sess.get("kernel", {}).get("id")
            if kid:
                lines.append(f"    {sid} --> k_{_safe(kid)}")
    procs: set[int] = set()
    for r in inv.kernels:
        node(f"k_{_safe(r.kernel_id)}", f"kernel {r.kernel_id[:8]} {r.kernel_name} {r.state}")
        if r.pid:
            node(f"p{r.pid}", f"pid {r.pid}")
            procs.add(r.pid)
            lines.append(f"    k_{_safe(r.kernel_id)} --> p{r.pid}")
            child = r.pid
            for parent in r.parents[:3]:
                if parent not in procs:
                    try:
                        name = psutil.Process(parent).name()
                    except psutil.Error:
                        name = "?"
                    node(f"p{parent}", f"pid {parent} {name}")
                    procs.add(parent)
                lines.append(f"    p{parent} -. parent of .-> p{child}")
                child = parent
    return "\n".join(dict.fromkeys(lines))


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in s)


def prune(inv: Inventory) -> list[str]:
    """Delete the connection files of dead kernels (no process, silent heartbeat) only."""
    removed = []
    for r in inv.kernels:
        if r.state == "dead" and r.pid is None and r.connection_file:
            try:
                os.unlink(r.connection_file)
                removed.append(r.connection_file)
            except OSError:
                pass
    return removed


__all__ = ["Inventory", "KernelRow", "ServerRow", "mermaid", "prune", "take_inventory"]
