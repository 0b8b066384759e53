# The daemon's HTTP and WebSocket API: jupyter_server's kernel REST API and kernel
# websocket as its gateway client uses them, as an ASGI app served by hypercorn's trio
# worker. Every request needs the token (`Authorization: token ...` or `?token=`);
# without a valid one it gets 401/403 and learns nothing else.
#
# A websocket connection bridges one client to a kernel's channel actors: frames from the
# client are sent on their channel; iopub goes to every connection; shell, control and
# stdin messages go to the connection whose session asked. Restarts show as status
# messages `restarting` then `starting`, and the bridge follows the kernel's new channels.
from __future__ import annotations

import collections
import datetime as dt
import hmac
import json
import logging
import math
import mimetypes
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import attrs
import trio

from ._kernelspecs import NoSuchKernelSpec, find_kernel_specs, get_kernel_spec
from ._supervisor import Supervisor
from .actors import (
    Incoming,
    JupervisorError,
    KernelRestarting,
    KernelStarting,
    NoSuchKernel,
    Send,
    Subscribe,
    event,
)
from .protocol import V1_PROTOCOL, KernelState, Message, Session, decode_json, decode_v1, encode_json, encode_v1

log = logging.getLogger("jupervisor.gateway")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
SendFn = Callable[[dict[str, Any]], Awaitable[None]]

_STATE = {KernelState.STARTING: "starting", KernelState.IDLE: "idle", KernelState.BUSY: "busy",
          KernelState.RESTARTING: "restarting", KernelState.STOPPING: "dead", KernelState.DEAD: "dead",
          KernelState.FAILED: "dead"}


@attrs.define(eq=False)
class _Recorder:
    messages: collections.deque[Message]
    dropped: int = 0
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)


def iso_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@attrs.define(eq=False)
class Gateway:
    """The ASGI app. One per daemon; `sup` owns the kernels."""

    sup: Supervisor
    token: str = attrs.field(repr=False)
    base_url: str = "/"
    max_kernels: int = 0
    max_per_spec: Any = attrs.field(factory=dict)
    policy_for: Callable[[str], Any] | None = None
    activity: dict[str, str] = attrs.field(factory=dict)
    connections: dict[str, int] = attrs.field(factory=dict)
    nursery: trio.Nursery | None = None
    replay_size: int = 1000
    replay_keep_s: float = 300.0
    _recorders: dict[tuple[str, str], _Recorder] = attrs.field(factory=dict)

    def _route(self, path: str) -> str:
        base = "/" + self.base_url.strip("/")
        if base != "/" and path.startswith(base):
            path = path[len(base):] or "/"
        return path

    def _authorized(self, scope: Scope) -> bool | None:
        """True if the token matches, False if a wrong one came, None if none came."""
        given = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                kind, _, tok = value.decode("latin-1").partition(" ")
                if kind.lower() in ("token", "bearer"):
                    given = tok.strip()
        if given is None:
            q = parse_qs(scope.get("query_string", b"").decode())
            given = q.get("token", [None])[0]
        if given is None:
            return None
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: SendFn) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = self._route(unquote(scope["path"]))
        ok = self._authorized(scope)
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, path, ok)
            return
        if not ok:
            await _respond(send, 401 if ok is None else 403, {"message": "Forbidden"})
            return
        try:
            status, body, ctype = await self._http(scope["method"], path, await _body(receive))
        except HTTPError as exc:
            status, body, ctype = exc.status, {"message": exc.message}, None
        await _respond(send, status, body, ctype)

    # ---- REST ----------------------------------------------------------------------
    def model(self, kid: str) -> dict[str, Any]:
        k = self.sup.get(kid)
        return {
            "id": kid,
            "name": k.kernel_name,
            "last_activity": self.activity.get(kid) or iso_now(),
            "execution_state": _STATE.get(k.state, str(k.state)),
            "connections": self.connections.get(kid, 0),
        }

    async def _http(self, method: str, path: str, body: bytes) -> tuple[int, Any, str | None]:
        if path in ("/api", "/api/"):
            warm = {name: self.sup.warm_kernels(name) for name in self.sup.warm_pool_names()}
            return 200, {"version": "2.0.0", "jupervisor": {"warm_pools": warm}}, None
        if path == "/api/kernelspecs":
            specs = {}
            for name in find_kernel_specs():
                try:
                    specs[name] = _spec_model(name)
                except ValueError as exc:
                    event(log, "gateway.bad_kernelspec", logging.WARNING, name=name, error=str(exc))
            return 200, {"default": "python3", "kernelspecs": specs}, None
        m = re.fullmatch(r"/api/kernelspecs/([^/]+)", path)
        if m and method == "GET":
            try:
                return 200, _spec_model(m.group(1)), None
            except NoSuchKernelSpec:
                raise HTTPError(404, f"no kernelspec {m.group(1)}") from None
        m = re.fullmatch(r"/kernelspecs/([^/]+)/([^/]+)", path)
        if m and method == "GET":
            try:
                rdir = Path(get_kernel_spec(m.group(1)).resource_dir)
            except NoSuchKernelSpec:
                raise HTTPError(404, "no such kernelspec") from None
            f = (rdir / m.group(2)).resolve()
            if f.parent != rdir.resolve() or not f.is_file():
                raise HTTPError(404, "no such resource")
            return 200, f.read_bytes(), mimetypes.guess_type(f.name)[0] or "application/octet-stream"
        if path == "/api/kernels":
            if method == "GET":
                return 200, [self.model(k.id) for k in self.sup.kernels()], None
            if method == "POST":
                return 201, await self._start(body), None
        m = re.fullmatch(r"/api/kernels/([^/]+)(/interrupt|/restart)?", path)
        if m:
            kid, action = m.group(1), m.group(2)
            try:
                kernel = self.sup.get(kid)
            except NoSuchKernel:
                raise HTTPError(404, f"Kernel does not exist: {kid}") from None
            try:
                if action is None and method == "GET":
                    return 200, self.model(kid), None
                if action is None and method == "DELETE":
                    await kernel.shutdown()
                    self.activity.pop(kid, None)
                    return 204, None, None
                if action == "/interrupt" and method == "POST":
                    await kernel.interrupt()
                    return 204, None, None
                if action == "/restart" and method == "POST":
                    await kernel.restart()
                    return 200, self.model(kid), None
            except JupervisorError as exc:
                raise HTTPError(500, str(exc).splitlines()[0]) from None
        raise HTTPError(404 if method in ("GET", "POST", "DELETE") else 405, "Not found")

    async def _start(self, body: bytes) -> dict[str, Any]:
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            raise HTTPError(400, "the body is not JSON") from None
        if not isinstance(req, dict):
            raise HTTPError(400, "the body must be a JSON object")
        if self.max_kernels and len(self.sup.kernels()) >= self.max_kernels:
            raise HTTPError(403, f"kernel limit reached ({self.max_kernels})")
        name = req.get("name") or "python3"
        limit = self.max_per_spec.get(name, 0)
        if limit and sum(k.kernel_name == name for k in self.sup.kernels()) >= limit:
            raise HTTPError(403, f"kernel limit for {name} reached ({limit})")
        env = {k: str(v) for k, v in (req.get("env") or {}).items() if k.startswith("KERNEL_")}
        cwd = env.get("KERNEL_WORKING_DIR")
        if cwd and not Path(cwd).is_dir():
            cwd = None
        try:
            policy = self.policy_for(name) if self.policy_for else None
            kernel = await self.sup.start_kernel(name, env=env or None, cwd=cwd, restart=policy)
        except NoSuchKernelSpec:
            raise HTTPError(404, f"no kernelspec {name}") from None
        except JupervisorError as exc:
            raise HTTPError(500, str(exc).splitlines()[0]) from None
        self.activity[kernel.id] = iso_now()
        event(log, "gateway.kernel_started", kernel_id=kernel.id, name=name)
        return self.model(kernel.id)

    async def cull(self, idle_s: float, *, busy: bool, connected: bool) -> list[str]:
        """Shut down kernels without activity for `idle_s` (sparing busy or connected ones
        unless allowed); returns the ids culled."""
        now = dt.datetime.now(dt.timezone.utc)
        culled = []
        for k in self.sup.kernels():
            last = dt.datetime.strptime(self.activity.get(k.id) or iso_now(), "%Y-%m-%dT%H:%M:%S.%fZ")
            quiet = (now - last.replace(tzinfo=dt.timezone.utc)).total_seconds()
            if quiet < idle_s or (k.state is KernelState.BUSY and not busy):
                continue
            if self.connections.get(k.id, 0) and not connected:
                continue
            event(log, "gateway.cull", kernel_id=k.id, idle_s=round(quiet, 1))
            try:
                await k.shutdown()
                culled.append(k.id)
            except JupervisorError:
                pass
        return culled

    def note_event(self, ev: Any) -> None:
        kid = getattr(ev, "kernel_id", None)
        if kid:
            self.activity[kid] = iso_now()

    # ---- websocket -------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: SendFn, path: str, ok: bool | None) -> None:
        m = re.fullmatch(r"/api/kernels/([^/]+)/channels", path)
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        if not ok:
            await send({"type": "websocket.close", "code": 4001 if ok is None else 4003})
            return
        try:
            kernel = self.sup.get(m.group(1)) if m else None
        except NoSuchKernel:
            kernel = None
        if kernel is None:
            await send({"type": "websocket.close", "code": 4004})
            return
        v1 = V1_PROTOCOL in scope.get("subprotocols", [])
        await send({"type": "websocket.accept", **({"subprotocol": V1_PROTOCOL} if v1 else {})})
        kid = kernel.id
        session_id = parse_qs(scope.get("query_string", b"").decode()).get("session_id", [None])[0]
        recorder = self._recorders.pop((kid, session_id), None) if session_id else None
        self.connections[kid] = self.connections.get(kid, 0) + 1
        sessions: set[str] = set()
        sender = _ws_sender(send, v1)
        try:
            async with trio.open_nursery() as n:
                if recorder is None:
                    n.start_soon(self._to_client, kernel, sender, sessions)
                else:
                    await self._replay_then_follow(n, kernel, recorder, sender, sessions)
                await self._from_client(kernel, receive, sessions)
                n.cancel_scope.cancel()
        finally:
            self.connections[kid] -= 1
            if session_id and self.nursery is not None:
                rec = _Recorder(collections.deque(maxlen=self.replay_size))
                self._recorders[(kid, session_id)] = rec
                self.nursery.start_soon(self._record, kernel, (kid, session_id), rec)

    async def _replay_then_follow(self, n: trio.Nursery, kernel: Any, rec: _Recorder, sender: Any,
                                  sessions: set[str]) -> None:
        """A client came back: follow live first, then stop the recorder, send what it kept
        (in order, with its drop count logged), then the live messages not already sent."""
        live: list[tuple[str, Message]] = []
        replayed: set[str] = set()
        replay_done = trio.Event()

        async def queue_until_replayed(channel: str, msg: Message) -> None:
            if not replay_done.is_set():
                live.append((channel, msg))
            elif msg.msg_id not in replayed:
                await sender(channel, msg)

        ready = trio.Event()
        n.start_soon(self._to_client, kernel, queue_until_replayed, sessions, ready)
        await ready.wait()
        rec.scope.cancel()
        await rec.done.wait()
        for msg in rec.messages:
            replayed.add(msg.msg_id)
            await sender("iopub", msg)
        if rec.dropped:
            event(log, "gateway.replay_dropped", logging.WARNING, kernel_id=kernel.id, dropped=rec.dropped)
        replay_done.set()
        for channel, msg in live:
            if msg.msg_id not in replayed:
                await sender(channel, msg)

    async def _record(self, kernel: Any, key: tuple[str, str], rec: _Recorder) -> None:
        """Keep the iopub messages a disconnected client misses (bounded; drops counted)."""

        async def keep(channel: str, msg: Message) -> None:
            if channel == "iopub":
                if len(rec.messages) == rec.messages.maxlen:
                    rec.dropped += 1
                rec.messages.append(msg)

        try:
            with rec.scope, trio.move_on_after(self.replay_keep_s):
                await self._to_client(kernel, keep, set())
        finally:
            rec.done.set()
            if self._recorders.get(key) is rec:
                del self._recorders[key]

    async def _from_client(self, kernel: Any, receive: Receive, sessions: set[str]) -> None:
        while True:
            frame = await receive()
            if frame["type"] == "websocket.disconnect":
                return
            try:
                if frame.get("bytes") is not None and frame.get("text") is None:
                    channel, msg = decode_v1(frame["bytes"])
                else:
                    channel, msg = decode_json(frame["text"])
                if channel not in ("shell", "control", "stdin"):
                    raise ValueError(f"no channel {channel!r}")
            except (ValueError, KeyError, TypeError) as exc:
                event(log, "gateway.bad_frame", logging.WARNING, kernel_id=kernel.id, error=str(exc)[:200])
                continue
            sessions.add(msg.header.session)
            try:
                channels = await kernel._channels()
            except JupervisorError:
                continue
            channels.get(channel).mailbox.post(Send(msg))
            self.activity[kernel.id] = iso_now()

    async def _to_client(
        self, kernel: Any, send: Callable[[str, Message], Awaitable[None]], sessions: set[str],
        ready: trio.Event | None = None,
    ) -> None:
        """Forward the kernel's messages; follow its channels across restarts."""
        status_session = Session()
        async with self.sup.events() as events:
            while True:
                try:
                    channels = await kernel._channels()
                except JupervisorError:
                    return
                inbox_send, inbox = trio.open_memory_channel[Any](math.inf)
                for name in ("iopub", "shell", "control", "stdin"):
                    channels.get(name).mailbox.post(Subscribe(inbox_send))
                if ready is not None:
                    ready.set()
                async with trio.open_nursery() as n:

                    async def watch_events() -> None:
                        async for ev in events:
                            if getattr(ev, "kernel_id", None) != kernel.id:
                                continue
                            if isinstance(ev, (KernelRestarting, KernelStarting)):
                                state = "restarting" if isinstance(ev, KernelRestarting) else "starting"
                                msg = status_session.message("status", {"execution_state": state})
                                await send("iopub", msg)
                                if isinstance(ev, KernelRestarting):
                                    n.cancel_scope.cancel()  # re-subscribe to the new incarnation
                                    return

                    n.start_soon(watch_events)
                    async for item in inbox:
                        if not isinstance(item, Incoming):
                            continue
                        m = item.message
                        if item.channel != "iopub" and m.parent_header.get("session") not in sessions:
                            continue
                        await send(item.channel, m)


def _spec_model(name: str) -> dict[str, Any]:
    spec = get_kernel_spec(name)
    resources = {}
    if spec.resource_dir and Path(spec.resource_dir).is_dir():
        for f in Path(spec.resource_dir).iterdir():
            if f.is_file() and f.name != "kernel.json":
                resources[f.stem] = f"/kernelspecs/{name}/{f.name}"
    return {"name": name, "spec": spec.to_dict(), "resources": resources}


def _ws_sender(send: SendFn, v1: bool) -> Callable[[str, Message], Awaitable[None]]:
    async def send_message(channel: str, msg: Message) -> None:
        if v1:
            await send({"type": "websocket.send", "bytes": encode_v1(channel, msg)})
        else:
            await send({"type": "websocket.send", "text": encode_json(channel, msg)})

    return send_message


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(chunks)


async def _respond(send: SendFn, status: int, body: Any, ctype: str | None = None) -> None:
    if isinstance(body, bytes):
        data, ctype = body, ctype or "application/octet-stream"
    elif body is None:
        data, ctype = b"", "application/json"
    else:
        data, ctype = json.dumps(body).encode(), "application/json"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
